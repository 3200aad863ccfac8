"""What a chat looks like to a person: a versioned change log, and message views for the page and tests."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

FILES_URL = "/sandbox/api/files/"


@dataclass(frozen=True)
class SandboxEvent:
    """One visible change: a message added, edited or deleted, a callback answered, a member joined."""

    version: int
    kind: str  # "message", "edit", "delete", "callback_answer"
    chat_id: int
    bot_id: int
    message_id: int | None = None
    data: dict[str, Any] | None = None

    def to_view(self) -> dict[str, Any]:
        """Shape used by the user-side API."""
        view: dict[str, Any] = {
            "version": self.version,
            "kind": self.kind,
            "chat_id": self.chat_id,
            "bot_id": self.bot_id,
        }
        if self.message_id is not None:
            view["message_id"] = self.message_id
        if self.data is not None:
            view["data"] = self.data
        return view


class EventLog:
    """A monotonically increasing version counter with a bounded log, so a page can poll cheaply."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self.version = 0
        self.events: deque[SandboxEvent] = deque(maxlen=maxlen)
        self.closed = False
        self._wakeup = asyncio.Event()

    def record(
        self,
        kind: str,
        chat_id: int,
        bot_id: int,
        message_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        """Append an event and return its version."""
        self.version += 1
        self.events.append(SandboxEvent(self.version, kind, chat_id, bot_id, message_id, data))
        event, self._wakeup = self._wakeup, asyncio.Event()
        event.set()
        return self.version

    def since(self, after: int) -> list[SandboxEvent]:
        """Events newer than version `after` (older ones may have been evicted)."""
        return [event for event in self.events if event.version > after]

    async def wait(self, after: int, seconds: float) -> list[SandboxEvent]:
        """Long poll: events newer than `after`, waiting up to `seconds` for the first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.version <= after and not self.closed:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            event = self._wakeup
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return []
        return self.since(after)

    def close(self) -> None:
        """Release waiters on shutdown."""
        self.closed = True
        self._wakeup.set()


def message_view(
    message: dict[str, Any], version: int, from_bot: bool, reply_keyboard: dict[str, Any] | None
) -> dict[str, Any]:
    """A rendered message plus conveniences: keyboards, file URLs, edit flag."""
    view: dict[str, Any] = {
        "message_id": message["message_id"],
        "version": version,
        "from_bot": from_bot,
        "edited": "edit_date" in message,
        "text": message.get("text"),
        "caption": message.get("caption"),
        "message": message,
    }
    markup = message.get("reply_markup")
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        view["inline_keyboard"] = markup["inline_keyboard"]
    if reply_keyboard is not None:
        view["reply_keyboard"] = reply_keyboard
    if message.get("photo"):
        view["photo_url"] = FILES_URL + message["photo"][-1]["file_id"]
    if message.get("document"):
        view["document_url"] = FILES_URL + message["document"]["file_id"]
    if "poll" in message:
        view["poll"] = message["poll"]
    if "location" in message:
        view["location"] = message["location"]
    return view
