"""A simulated resident driving the sandbox emulator, for end-to-end tests over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.sandbox.emulator import Emulator

QUIET = 0.25  # seconds without any change: the bot has finished answering


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

    async def press(self, label: str) -> None:
        """Tap the newest inline button whose label contains ``label``."""
        message = self._message_with(label)
        version = self.emulator.events.version
        self.emulator.press_button(self.user_id, self.chat, message["message_id"], text=self._label(message, label))
        await self._settle(version)

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

    def _message_with(self, label: str) -> dict[str, Any]:
        for m in reversed(self.emulator.transcript(self.chat)["messages"]):
            if any(label in b["text"] for row in m.get("inline_keyboard", []) for b in row):
                return m
        raise AssertionError(f"no button {label!r} in {self.texts()[-3:]}")

    @staticmethod
    def _label(message: dict[str, Any], label: str) -> str:
        return next(b["text"] for row in message["inline_keyboard"] for b in row if label in b["text"])
