"""Turns handler actions into channel-ready Outgoing objects in the recipient's locale."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.conversation.incoming import Incoming
from bot.conversation.replies import (
    Action,
    AnswerCallback,
    EditText,
    Keyboard,
    OutButton,
    OutCallbackAnswer,
    OutDocument,
    OutEdit,
    Outgoing,
    OutKeyboard,
    OutMessage,
    OutPhoto,
    OutPoll,
    SendDocument,
    SendPhoto,
    SendQuizPoll,
    SendText,
)
from bot.rendering import Renderer

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
ALERT_LIMIT = 200


class ActionRenderer:
    def __init__(self, renderer: Renderer) -> None:
        self.templates = renderer

    def render(self, actions: Sequence[Action], incoming: Incoming, locale: str) -> list[Outgoing]:
        """Render every action; a press always gets exactly one callback answer (Telegram shows a spinner)."""
        out: list[Outgoing] = []
        for action in actions:
            out.extend(self._one(action, incoming, locale))
        if incoming.callback_id and not any(isinstance(o, OutCallbackAnswer) for o in out):
            out.insert(0, OutCallbackAnswer(incoming.callback_id))
        return out

    def _one(self, action: Action, inc: Incoming, locale: str) -> Iterable[Outgoing]:
        if isinstance(action, SendText):
            loc = action.locale or locale
            chat = action.chat_id if action.chat_id is not None else inc.chat_id
            text = self.templates.render(loc, action.template, action.context)
            return self._messages(chat, text, action, loc)
        if isinstance(action, EditText):
            message_id = action.message_id or inc.callback_message_id
            on_photo = action.caption if action.caption is not None else (
                inc.callback_on_photo and action.message_id in (None, inc.callback_message_id)
            )  # fmt: skip
            text = _clip(self.templates.render(locale, action.template, action.context), TEXT_LIMIT)
            if message_id is None:  # nothing to edit (e.g. a typed reply): send instead
                return [OutMessage(inc.chat_id, text, self.keyboard(action.buttons, locale))]
            if on_photo:
                text = _clip(text, CAPTION_LIMIT)
            return [OutEdit(inc.chat_id, message_id, text, self.keyboard(action.buttons, locale), caption=on_photo)]
        if isinstance(action, AnswerCallback):
            return self._answer(action, inc, locale)
        if isinstance(action, SendPhoto):
            loc = action.locale or locale
            caption = self._caption(action.caption_template, action.context, loc)
            chat = action.chat_id if action.chat_id is not None else inc.chat_id
            return [OutPhoto(chat, action.photo, caption, self.keyboard(action.buttons, loc))]
        if isinstance(action, SendDocument):
            caption = self._caption(action.caption_template, action.context, action.locale or locale)
            chat = action.chat_id if action.chat_id is not None else inc.chat_id
            return [OutDocument(chat, action.path, action.filename, caption)]
        if isinstance(action, SendQuizPoll):
            chat = action.chat_id if action.chat_id is not None else inc.chat_id
            return [
                OutPoll(
                    chat,
                    action.question,
                    action.options,
                    action.correct_option_ids,
                    action.explanation,
                    action.open_period,
                    action.tag,
                )
            ]
        raise TypeError(f"unknown action {action!r}")

    def _caption(self, template: str | None, context: dict[str, Any], locale: str) -> str | None:
        """A photo's or document's caption, clipped to Telegram's 1024 characters."""
        if not template:
            return None
        return _clip(self.templates.render(locale, template, context), CAPTION_LIMIT)

    def _messages(self, chat: int, text: str, action: SendText, locale: str) -> list[Outgoing]:
        parts = split_text(text, TEXT_LIMIT)
        inline = self.keyboard(action.buttons, locale)
        reply = self.keyboard(action.reply_keyboard, locale)
        messages: list[Outgoing] = [OutMessage(chat, part) for part in parts[:-1]]
        messages.append(OutMessage(chat, parts[-1], inline, reply, action.remove_reply_keyboard))
        return messages

    def _answer(self, action: AnswerCallback, inc: Incoming, locale: str) -> list[Outgoing]:
        if inc.callback_id is None:
            if action.template is None:
                return []
            # A refusal meant for a button press arrived as a message: say it as a message.
            return [OutMessage(inc.chat_id, self.templates.render(locale, action.template, action.context))]
        text = None
        if action.template:
            text = _clip(_plain(self.templates.render(locale, action.template, action.context)), ALERT_LIMIT)
        return [OutCallbackAnswer(inc.callback_id, text, action.alert)]

    def keyboard(self, rows: Keyboard, locale: str) -> OutKeyboard:
        """Render button labels in the locale."""
        return tuple(
            tuple(
                OutButton(self.templates.label(locale, b.label, b.label_context), b.data, b.url, b.request_location)
                for b in row
            )
            for row in rows
        )


def split_text(text: str, limit: int) -> list[str]:
    """Split a long message at line breaks (or hard, for a single huge line) into parts under ``limit``."""
    if not text:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            parts.append(current)
            current = ""
        current += line
    if current:
        parts.append(current)
    return [p.strip("\n") or p for p in parts]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(html: str) -> str:
    """Callback alerts are plain text: drop the few tags our templates use."""
    import re
    from html import unescape

    return unescape(re.sub(r"<[^>]+>", "", html))
