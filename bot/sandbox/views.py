"""Read-only views of the emulator for the web page and tests: transcripts, change events, the request log."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.sandbox.core import EmulatorCore
from bot.sandbox.limits import is_metered
from bot.sandbox.models import CallRecord, StoredMessage
from bot.sandbox.transcript import message_view


class EmulatorViews(EmulatorCore):
    """Transcripts and logs on top of the emulator state."""

    def view(self, stored: StoredMessage) -> dict[str, Any]:
        """One message as the transcript shows it."""
        return message_view(
            self.render(stored), stored.version, stored.sender_bot_id is not None, stored.reply_keyboard
        )

    def transcript(self, chat_id: int, *, after: int = 0, bot_id: int | None = None) -> dict[str, Any]:
        """Current messages of a chat in order (edits applied, deletions gone); only changes after `after`."""
        chat = self.chat(chat_id)
        conv = self.conversation(self.bot(bot_id).id, chat)
        return {
            "chat": chat.to_api(),
            "version": self.events.version,
            "messages": [self.view(m) for m in conv.messages.values() if m.version > after],
            "deleted": [message_id for version, message_id in conv.deleted if version > after],
            "reply_keyboard": conv.reply_keyboard,
        }

    async def wait_events(self, after: int = 0, *, wait: float = 0.0) -> dict[str, Any]:
        """Long poll for changes newer than version `after`, for up to `wait` seconds."""
        events = await self.events.wait(after, wait)
        return {"version": self.events.version, "events": [event.to_view() for event in events]}

    async def wait_bot_messages(
        self,
        chat_id: int,
        count: int = 1,
        *,
        after: int | None = None,
        within: float = 5.0,
        bot_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Wait until bots have posted `count` new messages in chat since version `after` (default: now)."""
        start = self.events.version if after is None else after
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            found = self._bot_messages_since(chat_id, start, bot_id)
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0 or self.events.closed:
                raise TimeoutError(f"chat {chat_id}: {len(found)} of {count} bot messages within {within}s")
            await self.events.wait(self.events.version, remaining)

    def _bot_messages_since(self, chat_id: int, after: int, bot_id: int | None) -> list[dict[str, Any]]:
        conv = self.conversation(self.bot(bot_id).id, self.chat(chat_id))
        new_ids = [
            e.message_id
            for e in self.events.since(after)
            if e.kind == "message"
            and e.chat_id == chat_id
            and e.message_id is not None
            and (conv.chat.is_group or e.bot_id == conv.bot_id)
        ]
        return [
            self.view(conv.messages[mid])
            for mid in new_ids
            if mid in conv.messages and conv.messages[mid].sender_bot_id is not None
        ]

    def calls(self, *, after: int = 0, method: str | None = None) -> list[CallRecord]:
        """Logged Bot API requests with seq > after, optionally of one method."""
        wanted = method.lower() if method else None
        return [r for r in self.call_log if r.seq > after and (wanted is None or r.method.lower() == wanted)]

    def flood_violations(self) -> list[CallRecord]:
        """Metered requests made inside an earlier 429 window of the same token (or same chat)."""
        windows = [r for r in self.call_log if r.status == 429 and r.until is not None]
        bad: list[CallRecord] = []
        for record in self.call_log:
            if not is_metered(record.method.lower()):
                continue
            for w in windows:
                same_scope = w.scope in ("bot", "fault") or w.chat_id == record.chat_id
                assert w.until is not None
                if record.seq > w.seq and record.bot_id == w.bot_id and same_scope and w.t <= record.t < w.until:
                    bad.append(record)
                    break
        return bad
