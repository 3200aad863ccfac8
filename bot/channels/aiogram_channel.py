"""aiogram 3 adapter: translate updates for the core, execute its actions, route every call through the gate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    Response,
    SendDocument,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    BotCommand,
    BotCommandScopeDefault,
    FSInputFile,
    Update,
)
from pydantic import BaseModel, ConfigDict

from bot.channels.aiogram_session import JsonSession
from bot.channels.base import ALLOWED_UPDATES, bot_commands, local_file, process, upload_file
from bot.channels.gate import Kind, SendGate, Verdict
from bot.conversation.core import Core
from bot.conversation.replies import (
    OutCallbackAnswer,
    OutDocument,
    OutEdit,
    OutKeyboard,
    OutMessage,
    OutPhoto,
    OutPoll,
)
from bot.rendering import Renderer

log = logging.getLogger(__name__)


def classify(error: BaseException) -> Verdict:
    """aiogram keeps Telegram's own description in ``message``; classify by type first."""
    if isinstance(error, TelegramRetryAfter):
        return Verdict(Kind.RETRY_AFTER, float(error.retry_after))
    if isinstance(error, TelegramForbiddenError):
        return Verdict(Kind.FORBIDDEN)
    if isinstance(error, TelegramBadRequest) and "message is not modified" in error.message.lower():
        return Verdict(Kind.NOT_MODIFIED)
    if isinstance(error, TelegramServerError | TelegramNetworkError):
        return Verdict(Kind.TRANSIENT)
    return Verdict(Kind.FATAL)


_RESPONSES: dict[type[Any], Any] = {}  # method class → its parametrised Response class, kept alive (see below)


class GateMiddleware(BaseRequestMiddleware):
    """Session middleware: every request of the bot, from any code path, passes the shared gate."""

    def __init__(self, gate: SendGate) -> None:
        self.gate = gate

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        if type(method) not in _RESPONSES:
            # aiogram parses each answer with Response[<the method's result type>]; pydantic keeps such a class only
            # weakly, so every garbage collection dropped it and the next call built it again — ~40 builds per
            # burst of 300 taps, about 1 ms of CPU per update (bench.handling). Keep each one alive.
            _RESPONSES[type(method)] = Response[method.__returning__]  # type: ignore[name-defined]
        chat_id = getattr(method, "chat_id", None)
        done: Response[Any] = Response(ok=True, result=True)  # "not modified" → the edit's success value
        return await self.gate.run(
            method.__api_method__,
            chat_id if isinstance(chat_id, int) else None,
            lambda: make_request(bot, method),
            classify,
            done,
            paid=getattr(method, "allow_paid_broadcast", None) is True,
        )


def make_bot(token: str, api_url: str, gate: SendGate, session: BaseSession | None = None) -> Bot:
    """A Bot pointed at any Bot API server, calling it with JSON bodies, with the gate installed on its session."""
    session = session or JsonSession(api=TelegramAPIServer.from_base(api_url))
    session.middleware(GateMiddleware(gate))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))


class Sent(BaseModel):
    """What the bot keeps of a message it sent or edited: its id. aiogram would build the whole Message for each
    send (chat, sender, text, every button of its keyboard: ~0.08 ms for a settings page, bench.handling) only for
    the id to be read; an edit's answer (the message, or true) is not read at all."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: int = 0


# The Bot API methods the sender calls for every reply, declared with the fields it sets and the keyboard as the
# Bot API's own JSON: aiogram's SendMessage validates each button into a model and dumps them all again per call
# (~0.1 ms for a settings page with its keyboard, docs/benchmarks.md). They are aiogram methods all the same: the
# session middleware (the gate), the session, response checks and errors are aiogram's. Answered with ``Sent``.
class _Text(TelegramMethod[Sent]):
    __returning__ = Sent
    __api_method__ = "sendMessage"

    chat_id: int
    text: str
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    allow_paid_broadcast: bool | None = None


class _EditText(TelegramMethod[Sent | bool]):
    __returning__ = Sent | bool
    __api_method__ = "editMessageText"

    chat_id: int
    message_id: int
    text: str
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None


class _EditCaption(TelegramMethod[Sent | bool]):
    __returning__ = Sent | bool
    __api_method__ = "editMessageCaption"

    chat_id: int
    message_id: int
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None


class _Answer(TelegramMethod[bool]):
    __returning__ = bool
    __api_method__ = "answerCallbackQuery"

    callback_query_id: str
    text: str | None = None
    show_alert: bool | None = None


# Uploads keep aiogram's own methods (files, multipart), answered with ``Sent`` too.
class _SendPhoto(SendPhoto):
    __returning__ = Sent  # type: ignore[assignment]


class _SendDocument(SendDocument):
    __returning__ = Sent  # type: ignore[assignment]


class AiogramSender:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def _sent(self, method: TelegramMethod[Any]) -> int:
        sent: Any = await self.bot(method)
        return int(sent.message_id)

    async def message(self, item: OutMessage) -> int:
        return await self._sent(
            _Text(
                chat_id=item.chat_id,
                text=item.text,
                parse_mode=item.parse_mode,
                reply_markup=_markup(item),
                allow_paid_broadcast=item.paid or None,
            )
        )

    async def edit(self, item: OutEdit) -> None:
        await self.bot(
            _EditText(
                chat_id=item.chat_id,
                message_id=item.message_id,
                text=item.text,
                parse_mode=item.parse_mode,
                reply_markup=_inline(item.inline_keyboard),
            )
        )

    async def edit_caption(self, item: OutEdit) -> None:
        await self.bot(
            _EditCaption(
                chat_id=item.chat_id,
                message_id=item.message_id,
                caption=item.text,
                parse_mode=item.parse_mode,
                reply_markup=_inline(item.inline_keyboard),
            )
        )

    async def answer(self, item: OutCallbackAnswer) -> None:
        await self.bot(_Answer(callback_query_id=item.callback_id, text=item.text, show_alert=item.alert or None))

    async def photo(self, item: OutPhoto) -> int:
        path = local_file(item.photo)
        return await self._sent(
            _SendPhoto(
                chat_id=item.chat_id,
                photo=FSInputFile(path) if path else item.photo,
                caption=item.caption,
                parse_mode=item.parse_mode if item.caption else None,
                reply_markup=_inline(item.inline_keyboard),
                allow_paid_broadcast=item.paid or None,
            )
        )

    async def document(self, item: OutDocument) -> int:
        return await self._sent(
            _SendDocument(
                chat_id=item.chat_id,
                document=FSInputFile(upload_file(item.document), filename=item.filename),
                caption=item.caption,
                parse_mode=item.parse_mode if item.caption else None,
            )
        )

    async def poll(self, item: OutPoll) -> tuple[str, int]:
        sent = await self.bot.send_poll(
            item.chat_id,
            item.question,
            options=list(item.options),
            type="quiz",
            is_anonymous=False,
            correct_option_ids=list(item.correct_option_ids),
            explanation=item.explanation,
            open_period=item.open_period,
        )
        assert sent.poll is not None
        return sent.poll.id, sent.message_id

    def classify(self, error: BaseException) -> Verdict:
        return classify(error)


def _inline(rows: OutKeyboard) -> dict[str, Any] | None:
    """An inline keyboard as the Bot API's JSON (a button has a callback or a link)."""
    if not rows:
        return None
    return {"inline_keyboard": [[_button(b.text, b.callback_data, b.url) for b in row] for row in rows]}


def _button(text: str, callback_data: str | None, url: str | None) -> dict[str, str]:
    button = {"text": text}
    if callback_data is not None:
        button["callback_data"] = callback_data
    if url is not None:
        button["url"] = url
    return button


def _markup(item: OutMessage) -> dict[str, Any] | None:
    if item.inline_keyboard:
        return _inline(item.inline_keyboard)
    if item.reply_keyboard:
        keyboard = [
            [{"text": b.text, "request_location": True} if b.request_location else {"text": b.text} for b in row]
            for row in item.reply_keyboard
        ]
        return {"keyboard": keyboard, "resize_keyboard": True, "one_time_keyboard": True}
    return {"remove_keyboard": True} if item.remove_reply_keyboard else None


class RawGetUpdates(TelegramMethod[list[dict[str, Any]]]):
    """getUpdates returning the updates as Telegram sent them: one that aiogram cannot parse must not stop the
    intake (it is stored, then set aside by the inbox worker), and the inbox keeps the JSON anyway."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


class AiogramChannel:
    """Long polling or a webhook (``set_webhook``). Routes everything to the core: no aiogram filters, no FSM."""

    def __init__(self, core: Core, renderer: Renderer, bot: Bot) -> None:
        self.core = core
        self.renderer = renderer
        self.bot = bot
        self.sender = AiogramSender(bot)
        # Our core keeps dialog state, so aiogram's FSM is off; handlers have no filters (no thread hop per update).
        self.dispatcher = Dispatcher(disable_fsm=True)
        for observer in (
            self.dispatcher.message,
            self.dispatcher.callback_query,
            self.dispatcher.poll_answer,
        ):
            observer.register(self._on_event)
        self.username = ""
        self.stopping = asyncio.Event()  # set to stop the bot (run_bot watches it)
        self.inbox: Any = None  # the inbox run_bot feeds (tests look at it)

    async def setup(self) -> None:
        """Learn our username (for deep links) and publish the command menu per language."""
        me = await self.bot.get_me()
        self.username = me.username or ""
        self.core.settings["bot_username"] = self.username
        for language, commands in bot_commands(self.core, self.renderer).items():
            await self.bot.set_my_commands(
                [BotCommand(command=c, description=d) for c, d in commands],
                scope=BotCommandScopeDefault(),
                language_code=language,
            )

    async def start(self) -> None:
        await self.setup()

    async def close(self) -> None:
        await self.bot.session.close()

    async def fetch_updates(self, offset: int | None, seconds: int) -> list[dict[str, Any]]:
        """One long poll; calling it with ``offset`` confirms every update before it to Telegram."""
        method = RawGetUpdates(offset=offset, timeout=seconds, allowed_updates=ALLOWED_UPDATES)
        return await self.bot(method, request_timeout=seconds + 15)

    async def set_webhook(
        self, url: str, *, secret_token: str, allowed_updates: Sequence[str], max_connections: int
    ) -> None:
        """Ask Telegram to post updates to ``url`` (instead of long polling); updates waiting there are kept."""
        await self.bot.set_webhook(
            url,
            secret_token=secret_token,
            allowed_updates=list(allowed_updates),
            max_connections=max_connections,
            drop_pending_updates=False,
        )

    async def delete_webhook(self) -> None:
        """Back to long polling; updates waiting at Telegram are kept."""
        await self.bot.delete_webhook(drop_pending_updates=False)

    async def feed(self, update: dict[str, Any]) -> None:
        """Process one raw update in-process (tests, webhook)."""
        await self.dispatcher.feed_raw_update(self.bot, update)

    async def stop(self) -> None:
        self.stopping.set()

    async def _on_event(self, _event: object, event_update: Update) -> None:
        raw = event_update.model_dump(mode="json", exclude_none=True, by_alias=True)
        await process(self.core, self.sender, raw, self.username)
