"""A fake channel for dialog-transcript tests: feeds Incoming to the real core and records what it sends."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from bot.conversation.core import Core
from bot.conversation.incoming import ChatType, Incoming, Location, Member
from bot.conversation.replies import OutCallbackAnswer, OutDocument, OutEdit, Outgoing, OutMessage, OutPhoto


@dataclass
class Message:
    message_id: int
    chat_id: int
    text: str
    buttons: list[list[tuple[str, str | None]]] = field(default_factory=list)
    document: OutDocument | None = None  # a file the bot sent (its caption is ``text``)


@dataclass
class FakeChat:
    """One simulated person talking to the core, keeping the chat as Telegram would show it."""

    core: Core
    user_id: int = 1001
    first_name: str = "小李"
    language_code: str | None = "zh-hans"
    chat_id: int | None = None
    chat_type: ChatType = ChatType.PRIVATE
    messages: dict[int, Message] = field(default_factory=dict)
    answers: list[OutCallbackAnswer] = field(default_factory=list)
    sent: list[Outgoing] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def chat(self) -> int:
        return self.chat_id if self.chat_id is not None else self.user_id

    async def send(self, text: str) -> list[str]:
        """Type a message (or command) and return the texts the bot replied with."""
        base = self._incoming()
        if text.startswith("/"):
            command, _, args = text[1:].partition(" ")
            incoming = replace(base, command=command.split("@")[0], args=args.strip(), text=text)
        else:
            incoming = replace(base, text=text)
        return await self._run(incoming)

    async def send_photo(
        self, file_id: str, *, as_file: bool = False, caption: str | None = None, size: int | None = None
    ) -> list[str]:
        """Send a photo (or an image as a file, which keeps its metadata) by Telegram file id; ``size`` is the
        file size Telegram reports with it."""
        media = {"document_file_id": file_id} if as_file else {"photo_file_ids": (file_id,)}
        incoming = replace(self._incoming(), text=caption, file_size=size, **media)  # type: ignore[arg-type]
        return await self._run(incoming)

    async def send_location(self, latitude: float, longitude: float) -> list[str]:
        """Share a location (the reply-keyboard "send my location" button)."""
        return await self._run(replace(self._incoming(), location=Location(latitude, longitude)))

    async def press(self, label: str, message_id: int | None = None) -> list[str]:
        """Press the button with this (rendered) label on the latest message that has it."""
        message, data = self._find_button(label, message_id)
        return await self.press_data(data, message.message_id)

    async def press_data(self, data: str, message_id: int | None = None, *, on_photo: bool = False) -> list[str]:
        """Press a button with raw callback data (forged or stale data included); ``on_photo``: under a photo."""
        mid = message_id or max(self.messages, default=0)
        incoming = replace(
            self._incoming(),
            callback_id=f"cb{next(self._ids)}",
            callback_data=data,
            callback_message_id=mid,
            callback_on_photo=on_photo,
            sent_at=None if mid is None else 1_765_000_000 + mid,  # the date of the message carrying the button
        )
        return await self._run(incoming)

    async def join_group(self, members: list[tuple[int, str]]) -> list[str]:
        incoming = replace(self._incoming(), new_members=tuple(Member(uid, name) for uid, name in members))
        return await self._run(incoming)

    def last(self) -> Message:
        return self.messages[max(self.messages)]

    def documents(self) -> list[OutDocument]:
        """Every file the bot sent in this chat, oldest first (``document`` is its local path, ``filename`` the
        name the person sees)."""
        return [item for item in self.sent if isinstance(item, OutDocument) and item.chat_id == self.chat]

    def labels(self, message: Message | None = None) -> list[str]:
        return [text for row in (message or self.last()).buttons for text, _ in row]

    async def _run(self, incoming: Incoming) -> list[str]:
        out = await self.core.handle(incoming)
        self.sent.extend(out)
        texts: list[str] = []
        for item in out:
            if isinstance(item, OutMessage):
                mid = next(self._ids) + 10_000
                self.messages[mid] = Message(mid, item.chat_id, item.text, _buttons(item.inline_keyboard))
                texts.append(item.text)
            elif isinstance(item, OutEdit):
                self.messages[item.message_id] = Message(
                    item.message_id, item.chat_id, item.text, _buttons(item.inline_keyboard)
                )
                texts.append(item.text)
            elif isinstance(item, OutPhoto):
                mid = next(self._ids) + 10_000
                self.messages[mid] = Message(mid, item.chat_id, item.caption or "", _buttons(item.inline_keyboard))
                texts.append(item.caption or "")
            elif isinstance(item, OutDocument):
                mid = next(self._ids) + 10_000
                self.messages[mid] = Message(mid, item.chat_id, item.caption or "", document=item)
                texts.append(item.caption or "")
            elif isinstance(item, OutCallbackAnswer):
                self.answers.append(item)
                if item.text:
                    texts.append(item.text)
        return texts

    def _incoming(self) -> Incoming:
        update_id = next(self._ids)
        return Incoming(
            update_id=update_id,
            message_id=update_id,  # a message of its own, as Telegram gives every message
            sent_at=1_765_000_000 + update_id,
            user_id=self.user_id,
            chat_id=self.chat,
            chat_type=self.chat_type,
            language_code=self.language_code,
            first_name=self.first_name,
            chat_title="示范社区居民群" if self.chat_type != ChatType.PRIVATE else None,
        )

    def _find_button(self, label: str, message_id: int | None) -> tuple[Message, str]:
        candidates = (
            [self.messages[message_id]] if message_id else sorted(self.messages.values(), key=lambda m: -m.message_id)
        )
        for message in candidates:
            for row in message.buttons:
                for text, data in row:
                    if label in text and data:
                        return message, data
        raise AssertionError(f"no button {label!r}; last message: {self.last()}")


def _buttons(keyboard: Any) -> list[list[tuple[str, str | None]]]:
    return [[(b.text, b.callback_data or b.url) for b in row] for row in keyboard]
