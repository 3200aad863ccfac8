"""Emulator state shared by the Bot API methods and the user-side actions (no HTTP here)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from itertools import count
from typing import Any

from bot.sandbox.clock import Clock, SystemClock
from bot.sandbox.errors import CHAT_NOT_FOUND, ApiError, SandboxError, bad_request, forbidden
from bot.sandbox.files import FileStore
from bot.sandbox.limits import FaultInjector, Faults, RateLimiter, RateLimits
from bot.sandbox.models import (
    CallbackState,
    CallRecord,
    Conversation,
    PollState,
    SimBot,
    SimChat,
    SimUser,
    StoredMessage,
)
from bot.sandbox.params import Params
from bot.sandbox.transcript import EventLog
from bot.sandbox.updates import UpdateQueue, WebhookPoster, WebhookState

DEFAULT_TOKEN = "100000001:SANDBOX-token-not-a-secret"
_TOKEN_RE = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{1,128}$")

Handler = Callable[["EmulatorCore", SimBot, Params], Awaitable[Any]]


class MethodTable:
    """Bot API method name (case-insensitive) -> handler."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.names: dict[str, str] = {}  # lower-case -> Telegram's spelling, for the request log

    def __call__(self, name: str) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine under name."""

        def register(handler: Handler) -> Handler:
            self.handlers[name.lower()] = handler
            self.names[name.lower()] = name
            return handler

        return register


class EmulatorCore:
    """Bots, users, chats, messages, files, polls and update queues; the Bot API and user actions share it."""

    def __init__(
        self,
        tokens: Iterable[str] | str = (DEFAULT_TOKEN,),
        *,
        clock: Clock | None = None,
        rate_limits: RateLimits | None = None,
        faults: Faults | None = None,
        time_scale: float = 1.0,
        group_privacy: bool = True,
        webhook_poster: WebhookPoster | None = None,
        webhook_retries: int = 3,
        webhook_backoff: float = 0.5,
        call_log_size: int = 100_000,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.time_scale = time_scale
        self.limiter = RateLimiter(self.clock, rate_limits, time_scale)
        self.faults = FaultInjector(faults)
        self.group_privacy = group_privacy
        self.webhook_poster = webhook_poster
        self.webhook_retries = webhook_retries
        self.webhook_backoff = webhook_backoff
        self.bots: dict[int, SimBot] = {}
        self.queues: dict[int, UpdateQueue] = {}
        self.webhooks: dict[int, WebhookState] = {}
        self.users: dict[int, SimUser] = {}
        self.groups: dict[int, SimChat] = {}
        self.conversations: dict[tuple[int, int], Conversation] = {}
        self.files = FileStore()
        self.polls: dict[str, PollState] = {}
        self.callbacks: dict[str, CallbackState] = {}
        self.blocked: set[tuple[int, int]] = set()  # (user_id, bot_id)
        self.started: set[tuple[int, int]] = set()  # (user_id, bot_id): the user has written to the bot
        self.events = EventLog()
        self.call_log: deque[CallRecord] = deque(maxlen=call_log_size)
        self._private: dict[int, SimChat] = {}
        self._by_token: dict[str, SimBot] = {}
        self._seq = count(1)
        self._call_seq = count(1)
        self._closing = asyncio.Event()
        for token in [tokens] if isinstance(tokens, str) else tokens:
            self.add_bot(token)

    # --- bots -----------------------------------------------------------------------------------------------
    def add_bot(self, token: str, *, username: str | None = None, first_name: str = "四城同创助手") -> SimBot:
        """Serve another bot token; its id is the part before the colon."""
        match = _TOKEN_RE.match(token)
        if match is None:
            raise ValueError(f"not a bot token: {token!r}")
        bot_id = int(match.group(1))
        if username is None:
            username = "sicheng_bot" if not self.bots else f"sicheng{len(self.bots) + 1}_bot"
        bot = SimBot(id=bot_id, token=token, first_name=first_name, username=username)
        self.bots[bot_id] = bot
        self._by_token[token] = bot
        self.queues[bot_id] = UpdateQueue()
        return bot

    @property
    def default_bot(self) -> SimBot:
        """The first bot; user actions address it unless told otherwise."""
        return next(iter(self.bots.values()))

    def bot_for_token(self, token: str) -> SimBot:
        """The bot owning token, or Telegram's 401."""
        bot = self._by_token.get(token)
        if bot is None:
            raise ApiError(401, "Unauthorized")
        return bot

    def bot(self, bot_id: int | None = None) -> SimBot:
        """A bot by id (the default bot for None)."""
        if bot_id is None:
            return self.default_bot
        if bot_id not in self.bots:
            raise SandboxError(f"no bot {bot_id}", 404)
        return self.bots[bot_id]

    # --- chats ----------------------------------------------------------------------------------------------
    def user(self, user_id: int) -> SimUser:
        """A simulated user by id."""
        if user_id not in self.users:
            raise SandboxError(f"no user {user_id}", 404)
        return self.users[user_id]

    def private_chat(self, user: SimUser) -> SimChat:
        """The private chat with user (its id is the user's id)."""
        chat = self._private.get(user.id)
        if chat is None:
            chat = self._private[user.id] = SimChat(id=user.id, type="private", user=user)
        return chat

    def chat(self, chat_id: int) -> SimChat:
        """A group or a user's private chat, by id."""
        if chat_id < 0:
            if chat_id not in self.groups:
                raise SandboxError(f"no chat {chat_id}", 404)
            return self.groups[chat_id]
        return self.private_chat(self.user(chat_id))

    def conversation(self, bot_id: int, chat: SimChat) -> Conversation:
        """The transcript of chat; private chats are separate per bot, as on Telegram."""
        key = (0 if chat.is_group else bot_id, chat.id)
        conv = self.conversations.get(key)
        if conv is None:
            conv = self.conversations[key] = Conversation(chat=chat, bot_id=key[0])
        return conv

    def chat_for_bot(self, bot: SimBot, chat_id: int | str, *, sending: bool) -> SimChat:
        """Resolve chat_id for a bot with Telegram's errors (chat not found, blocked, never started)."""
        if isinstance(chat_id, str):
            raise bad_request(CHAT_NOT_FOUND)  # no public @usernames in the sandbox
        if chat_id < 0:
            group = self.groups.get(chat_id)
            if group is None or bot.id not in group.bot_ids:
                raise bad_request(CHAT_NOT_FOUND)
            return group
        user = self.users.get(chat_id)
        if user is None:
            raise bad_request(CHAT_NOT_FOUND)
        if sending and (user.id, bot.id) in self.blocked:
            raise forbidden("bot was blocked by the user")
        if sending and (user.id, bot.id) not in self.started:
            raise forbidden("bot can't initiate conversation with a user")
        return self.private_chat(user)

    # --- messages -------------------------------------------------------------------------------------------
    def add_message(
        self,
        conv: Conversation,
        fields: dict[str, Any],
        *,
        sender: SimBot | SimUser,
        reply_to: StoredMessage | None = None,
        poll_id: str | None = None,
        reply_keyboard: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Append a message to a transcript and log it; returns the stored message."""
        message_id = conv.next_message_id
        conv.next_message_id += 1
        data: dict[str, Any] = {
            "message_id": message_id,
            "from": sender.to_api(),
            "chat": conv.chat.to_api(),
            "date": int(self.clock.time()),
        }
        if reply_to is not None:
            quoted = self.render(reply_to)
            quoted.pop("reply_to_message", None)  # Telegram nests only one level
            data["reply_to_message"] = quoted
        data.update(fields)
        bot_id = sender.id if isinstance(sender, SimBot) else conv.bot_id
        version = self.events.record("message", conv.chat.id, bot_id, message_id)
        stored = StoredMessage(
            data=data,
            version=version,
            sender_bot_id=sender.id if isinstance(sender, SimBot) else None,
            poll_id=poll_id,
            reply_keyboard=reply_keyboard,
        )
        conv.messages[message_id] = stored
        return stored

    def update_message(self, conv: Conversation, stored: StoredMessage, changes: dict[str, Any]) -> None:
        """Apply an edit copy-on-write (rendered copies already handed out stay unchanged) and log it."""
        stored.data = {**stored.data, **changes}
        stored.data = {key: value for key, value in stored.data.items() if value is not None}
        stored.version = self.events.record("edit", conv.chat.id, conv.bot_id, stored.message_id)

    def remove_message(self, conv: Conversation, stored: StoredMessage) -> None:
        """Delete a message from its transcript and log it."""
        del conv.messages[stored.message_id]
        version = self.events.record("delete", conv.chat.id, conv.bot_id, stored.message_id)
        conv.deleted.append((version, stored.message_id))

    def render(self, stored: StoredMessage) -> dict[str, Any]:
        """The message as Telegram would send it now (a fresh top-level dict; nested values are shared)."""
        data = dict(stored.data)
        if stored.poll_id is not None:
            data["poll"] = self.polls[stored.poll_id].to_api(self.clock.time())
        return data

    # --- updates --------------------------------------------------------------------------------------------
    def emit(self, bot_id: int, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update for a bot (long poll or webhook picks it up)."""
        return self.queues[bot_id].push(kind, payload)

    def bot_sees(self, bot: SimBot, chat: SimChat, message: dict[str, Any]) -> bool:
        """Group privacy mode: commands, replies to the bot and service messages only."""
        if not chat.is_group or not self.group_privacy:
            return True
        if "new_chat_members" in message or "left_chat_member" in message:
            return True
        replied = message.get("reply_to_message")
        if replied is not None and replied.get("from", {}).get("id") == bot.id:
            return True
        text = message.get("text") or message.get("caption") or ""
        if not text.startswith("/"):
            return False
        command = text.split(maxsplit=1)[0]
        return "@" not in command or command.split("@", 1)[1].lower() == bot.username.lower()

    def chat_instance(self, bot_id: int, chat_id: int) -> str:
        """A stable opaque id per (bot, chat), like Telegram's callback_query.chat_instance."""
        return str((chat_id * 1_000_003 + bot_id) & 0x7FFFFFFFFFFFFFFF)

    # --- bookkeeping ----------------------------------------------------------------------------------------
    def next_id(self) -> int:
        """A fresh number for poll and callback ids."""
        return next(self._seq)

    def record_call(self, bot_id: int, method: str, chat_id: Any, status: int, **extra: Any) -> CallRecord:
        """Append to the request log."""
        record = CallRecord(
            seq=next(self._call_seq),
            t=self.clock.monotonic(),
            bot_id=bot_id,
            method=method,
            chat_id=chat_id if isinstance(chat_id, int | str) else None,
            status=status,
            **extra,
        )
        self.call_log.append(record)
        return record

    async def hang(self, seconds: float) -> None:
        """Sleep for an injected timeout, but wake early on shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def close(self) -> None:
        """Stop webhook tasks and release every waiter."""
        self._closing.set()
        for hook in self.webhooks.values():
            if hook.task is not None:
                hook.task.cancel()
        for queue in self.queues.values():
            queue.close()
        self.events.close()
        closer = getattr(self.webhook_poster, "close", None)
        if closer is not None:
            await closer()
