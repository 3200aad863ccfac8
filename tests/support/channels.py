"""Both channels in-process over the fake Bot API, and Telegram-shaped updates to feed them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.app import App
from bot.channels.aiogram_channel import AiogramChannel, make_bot
from bot.channels.gate import SendGate
from bot.channels.ptb_channel import PtbChannel, make_application
from tests.support.fake_api import FakeBotApi, RecordingRequest, RecordingSession

TOKEN = "4242:TEST-token_for-offline-tests"


@asynccontextmanager
async def running_channel(kind: str, app: App, api: FakeBotApi, gate: SendGate) -> AsyncIterator[Any]:
    """A channel of ``kind`` wired to ``app``'s core, set up (getMe, setMyCommands) and ready to feed."""
    if kind == "aiogram":
        bot = make_bot(TOKEN, "http://offline", gate, session=RecordingSession(api))
        channel: Any = AiogramChannel(app.core, app.renderer, bot)
        await channel.setup()
        yield channel
        return
    application = make_application(TOKEN, "http://offline", gate, request=RecordingRequest(api))
    channel = PtbChannel(app.core, app.renderer, application)
    async with application:
        await channel.setup()
        yield channel


class Updates:
    """Builds raw Bot API updates as Telegram sends them."""

    def __init__(self, user_id: int = 1001, first_name: str = "小李", language_code: str = "zh-hans") -> None:
        self.user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}
        self._ids = itertools.count(1)

    def text(self, text: str, chat: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": 1_780_000_000,
            "from": self.user,
            "chat": chat or {"id": self.user["id"], "type": "private", "first_name": self.user["first_name"]},
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return {"update_id": next(self._ids), "message": message}

    def press(self, data: str, message_id: int, chat_id: int | None = None) -> dict[str, Any]:
        chat = {"id": chat_id or self.user["id"], "type": "private", "first_name": self.user["first_name"]}
        message = {
            "message_id": message_id,
            "date": 1_780_000_000,
            "chat": chat,
            "text": "…",
            "from": {"id": 4242, "is_bot": True, "first_name": "四城同创"},
        }
        query = {
            "id": f"q{next(self._ids)}",
            "from": self.user,
            "chat_instance": "ci",
            "data": data,
            "message": message,
        }
        return {"update_id": next(self._ids), "callback_query": query}


def last_button(api: FakeBotApi, label: str) -> str:
    """Callback data of the newest bot message that has a button containing ``label``."""
    for call in reversed(api.sent("sendMessage", "editMessageText")):
        markup = call.params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if label in button["text"] and button.get("callback_data"):
                    return str(button["callback_data"])
    raise AssertionError(f"no button {label!r}")


def transcript(api: FakeBotApi) -> list[tuple[Any, ...]]:
    """What a user would see, channel-independent: method, chat, text (or caption), buttons, alerts."""
    rows: list[tuple[Any, ...]] = []
    for call in api.sent():
        p = call.params
        markup = p.get("reply_markup") or {}
        buttons = tuple(
            tuple((b["text"], b.get("callback_data") or b.get("url")) for b in row)
            for row in markup.get("inline_keyboard", [])
        )
        chat = int(p["chat_id"]) if p.get("chat_id") is not None else None
        text = p.get("text") if "text" in p else p.get("caption")
        rows.append((call.method.lower(), chat, text, buttons, bool(p.get("show_alert"))))
    return rows
