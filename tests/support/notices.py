"""What the bot queued in the outbox, rendered for assertions: messages it sends on its own (to other people, to
the staff group, on a timer) are outbox rows, not replies to the update being handled.

Rows are read straight from the database and rendered like the dispatcher does (template in the recipient's
locale, button labels, callback data from the root router's codec), without clipping or splitting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.domain.wire import from_json
from bot.services.outbox import NOTICE
from storage.db import make_sessionmaker
from storage.messaging_models import OutboxRow
from tests.support.transcript import Message

if TYPE_CHECKING:
    from bot.app import App
    from tests.support.transcript import FakeChat


@dataclass(frozen=True)
class Queued:
    """One notice as its recipient would read it."""

    id: int
    chat_id: int
    template: str
    text: str
    buttons: tuple[tuple[tuple[str, str], ...], ...]  # rows of (label, callback data or a deep link's URL)
    locale: str
    photo: str | None = None
    ref: str | None = None
    edit: bool = False
    key: str | None = None

    def labels(self) -> list[str]:
        return [label for row in self.buttons for label, _ in row]

    def data(self, label: str) -> str:
        """Callback data of the button whose label contains ``label``."""
        for row in self.buttons:
            for text, data in row:
                if label in text:
                    return data
        raise AssertionError(f"no button {label!r} on {self.text!r} (buttons: {self.labels()})")


@dataclass
class Notices:
    """Reads the notices in the app's outbox; ``deliver`` hands a chat its messages the way Telegram shows them."""

    app: App
    _seen: int = 0  # the last row ``fresh`` returned
    _delivered: set[int] = field(default_factory=set)
    _messages: dict[tuple[str, int], int] = field(default_factory=dict)  # (ref, chat) → message id in a FakeChat

    async def all(self) -> list[Queued]:
        """Every notice queued so far, in order."""
        sessions = make_sessionmaker(self.app.engine)
        async with sessions() as session:
            query = select(OutboxRow).where(OutboxRow.kind == NOTICE).order_by(OutboxRow.id)
            return [self.render(r) for r in (await session.scalars(query)).all()]

    async def fresh(self) -> list[Queued]:
        """What was queued since the last call (everything at first)."""
        queued = [q for q in await self.all() if q.id > self._seen]
        if queued:
            self._seen = queued[-1].id
        return queued

    async def to(self, chat_id: int) -> list[Queued]:
        return [q for q in await self.all() if q.chat_id == chat_id]

    async def last(self, chat_id: int) -> Queued:
        queued = await self.to(chat_id)
        assert queued, f"nothing queued for {chat_id}"
        return queued[-1]

    async def find(self, chat_id: int, text: str) -> Queued:
        """The newest notice to ``chat_id`` containing ``text``."""
        queued = await self.to(chat_id)
        for q in reversed(queued):
            if text in q.text:
                return q
        raise AssertionError(f"nothing with {text!r} for {chat_id}: {[q.text for q in queued]}")

    async def versions(self, ref: str, chat_id: int) -> list[Queued]:
        """A named message (a report's card) as posted, then each edit."""
        return [q for q in await self.to(chat_id) if q.ref == ref]

    async def card(self, ref: str, chat_id: int) -> Queued:
        """A named message as it reads now (its newest version)."""
        versions = await self.versions(ref, chat_id)
        assert versions, f"no message {ref!r} in {chat_id}"
        return versions[-1]

    async def deliver(self, chat: FakeChat) -> list[str]:
        """Put what was queued for ``chat`` since the last delivery into its messages (an edit replaces the message
        it names), so that ``chat.press(label)`` finds the buttons. Returns the texts delivered."""
        texts = []
        for q in await self.to(chat.chat):
            if q.id in self._delivered:
                continue
            self._delivered.add(q.id)
            existing = self._messages.get((q.ref, q.chat_id)) if q.ref and q.edit else None
            mid = existing if existing is not None else next(chat._ids) + 10_000  # ordered like the replies
            buttons: list[list[tuple[str, str | None]]] = [[(t, d) for t, d in row] for row in q.buttons]
            chat.messages[mid] = Message(mid, q.chat_id, q.text, buttons)
            if q.ref:
                self._messages[(q.ref, q.chat_id)] = mid
            texts.append(q.text)
        return texts

    def render(self, row: OutboxRow) -> Queued:
        payload: dict[str, Any] = row.payload
        locale = payload.get("locale") or "zh_Hans"
        text = self.app.renderer.render(locale, payload["template"], from_json(payload.get("context") or {}))
        buttons = tuple(tuple(self._button(b, locale) for b in line) for line in payload.get("buttons") or [])
        return Queued(
            row.id, row.chat_id, payload["template"], text, buttons, locale, payload.get("photo"), row.ref,
            bool(payload.get("edit")), row.key,
        )  # fmt: skip

    def _button(self, b: dict[str, Any], locale: str) -> tuple[str, str]:
        label = self.app.renderer.label(locale, b["label"], from_json(b.get("label_context") or {}))
        if "start" in b:  # a deep link into a private chat with the bot
            return label, f"https://t.me/{self.app.core.settings.get('bot_username', '')}?start={b['start']}"
        return label, self.app.router.codec.encode(b["ns"], b["action"], *b.get("args", []))
