"""A simulated resident driving the sandbox emulator, for end-to-end tests over HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.sandbox.emulator import Emulator

QUIET = 0.5  # seconds without any change: the bot has finished answering (generous for a loaded CI machine)


@dataclass
class SimResident:
    emulator: Emulator
    user_id: int
    chat_id: int | None = None

    @property
    def chat(self) -> int:
        return self.chat_id if self.chat_id is not None else self.user_id

    async def send(self, text: str) -> None:
        """Type a message and wait until the bot is done answering."""
        version = self.emulator.events.version
        self.emulator.send_text(self.user_id, text, chat_id=self.chat_id)
        await self._settle(version)

    async def press(self, label: str, *, chat_id: int | None = None) -> None:
        """Tap the newest inline button whose label contains ``label`` (in ``chat_id``, else this chat)."""
        chat = self.chat if chat_id is None else chat_id
        message = self._message_with(label, chat)
        version = self.emulator.events.version
        self.emulator.press_button(self.user_id, chat, message["message_id"], text=self._label(message, label))
        await self._settle(version)

    async def send_photo(self, data: bytes, *, filename: str = "photo.jpg", caption: str | None = None) -> None:
        """Upload a photo and wait until the bot is done answering."""
        version = self.emulator.events.version
        self.emulator.send_photo(self.user_id, data, filename=filename, caption=caption, chat_id=self.chat_id)
        await self._settle(version)

    async def send_location(self, latitude: float, longitude: float) -> None:
        """Share a location and wait until the bot is done answering."""
        version = self.emulator.events.version
        self.emulator.send_location(self.user_id, latitude, longitude, chat_id=self.chat_id)
        await self._settle(version)

    async def wait_for(
        self, text: str, *, chat_id: int | None = None, within: float = 5.0, document: bool = False
    ) -> dict[str, Any]:
        """The newest bot message containing ``text`` (in ``chat_id``, else this chat), waiting for it if needed;
        with ``document``, only a message carrying a file (sent after the text that announces it, it may lag)."""
        chat = self.chat if chat_id is None else chat_id
        deadline = asyncio.get_running_loop().time() + within
        while True:
            version = self.emulator.events.version
            for m in reversed(self.emulator.transcript(chat)["messages"]):
                if (
                    m["from_bot"]
                    and text in (m["text"] or m["caption"] or "")
                    and (m.get("document_url") or not document)
                ):
                    return dict(m)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no bot message with {text!r} in chat {chat} within {within}s")
            await self.emulator.wait_events(version, wait=remaining)

    def transcript(self) -> list[tuple[Any, ...]]:
        """What the person sees: sender, text, and inline keyboard labels with their data."""
        rows = []
        for m in self.emulator.transcript(self.chat)["messages"]:
            keyboard = tuple(
                tuple((b["text"], b.get("callback_data") or b.get("url")) for b in row)
                for row in m.get("inline_keyboard", [])
            )
            rows.append(("bot" if m["from_bot"] else "me", m["text"] or m["caption"], keyboard))
        return rows

    def texts(self) -> list[str]:
        return [row[1] or "" for row in self.transcript() if row[0] == "bot"]

    async def _settle(self, version: int) -> None:
        await self.emulator.wait_events(version, wait=5.0)  # the first change
        while True:
            seen = self.emulator.events.version
            changes = await self.emulator.wait_events(seen, wait=QUIET)
            if not changes["events"]:
                return

    def _message_with(self, label: str, chat: int | None = None) -> dict[str, Any]:
        for m in reversed(self.emulator.transcript(self.chat if chat is None else chat)["messages"]):
            if any(label in b["text"] for row in m.get("inline_keyboard", []) for b in row):
                return m
        raise AssertionError(f"no button {label!r} in {self.texts()[-3:]}")

    @staticmethod
    def _label(message: dict[str, Any], label: str) -> str:
        return next(b["text"] for row in message["inline_keyboard"] for b in row if label in b["text"])
