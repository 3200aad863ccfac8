"""Queueing notices and waiting for the outbox in tests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import select

from bot.app import App
from bot.channels.gate import Kind, Verdict
from bot.conversation.replies import OutCallbackAnswer, OutDocument, OutEdit, Outgoing, OutMessage, OutPhoto, OutPoll
from bot.domain.messaging import OutboxItem, OutboxStatus
from bot.domain.notices import Notice
from bot.services.outbox import queue_all
from storage.messaging_models import OutboxRow


async def queue_notices(app: App, notices: Iterable[Notice]) -> None:
    """Queue notices in their own transaction, as a use case would."""
    async with app.uow() as uow:
        await queue_all(uow, notices, datetime.now(UTC))
        await uow.commit()


async def outbox_rows(app: App) -> list[OutboxItem]:
    async with app.uow() as uow:
        ids = list((await uow.session.scalars(select(OutboxRow.id).order_by(OutboxRow.id))).all())
        return await uow.outbox.items(ids)


async def settled(app: App, seconds: float = 10.0) -> list[OutboxItem]:
    """Wait until no outbox row is pending; returns every row."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        rows = await outbox_rows(app)
        if all(r.status is not OutboxStatus.PENDING for r in rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"outbox still pending: {[(r.id, r.chat_id, r.kind) for r in rows if r.status is OutboxStatus.PENDING]}"
            )
        await asyncio.sleep(0.05)


async def drain(app: App) -> list[Outgoing]:
    """What would have gone out, in order, rendered and marked sent without a channel (see ``render_pending``)."""
    from bot.runner import make_dispatcher

    return await make_dispatcher(app, sender=None).render_pending()


class Blocked(Exception):
    """What a channel raises when Telegram answers 403 (the person blocked the bot)."""


class FakeTelegram:
    """A channel for the dispatcher: records every attempt per chat; chats in ``blocked`` answer 403."""

    def __init__(self, blocked: set[int] | None = None, log: list[OutMessage] | None = None) -> None:
        self.blocked = blocked or set()
        self.attempts: dict[int, int] = {}
        self.sent: list[Outgoing] = []
        self.log = log if log is not None else []  # messages in the order they reached Telegram (may be shared)
        self._ids = itertools.count(100)

    async def message(self, item: OutMessage) -> int:
        sent = self._send(item.chat_id, item)
        self.log.append(item)
        await asyncio.sleep(0)  # let the other process run between two sends
        return sent

    async def photo(self, item: OutPhoto) -> int:
        return self._send(item.chat_id, item)

    async def document(self, item: OutDocument) -> int:
        return self._send(item.chat_id, item)

    async def edit(self, item: OutEdit) -> None:
        self._send(item.chat_id, item)

    async def edit_caption(self, item: OutEdit) -> None:
        self._send(item.chat_id, item)

    async def answer(self, item: OutCallbackAnswer) -> None:
        self.sent.append(item)

    async def poll(self, item: OutPoll) -> tuple[str, int]:
        return f"poll-{item.chat_id}", self._send(item.chat_id, item)

    def classify(self, error: BaseException) -> Verdict:
        return Verdict(Kind.FORBIDDEN if isinstance(error, Blocked) else Kind.FATAL)

    def _send(self, chat_id: int, item: Outgoing) -> int:
        self.attempts[chat_id] = self.attempts.get(chat_id, 0) + 1
        if chat_id in self.blocked:
            raise Blocked("Forbidden: bot was blocked by the user")
        self.sent.append(item)
        return next(self._ids)


async def dispatch_all(app: App, telegram: FakeTelegram, clock: Callable[[], datetime] | None = None) -> None:
    """Send everything pending (due at ``clock()``, by default now) through a real dispatcher over ``telegram``."""
    from bot.runner import make_dispatcher

    dispatcher = make_dispatcher(app, telegram, clock) if clock else make_dispatcher(app, telegram)
    while await dispatcher.dispatch_once():
        pass
