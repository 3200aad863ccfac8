"""Queueing notices and waiting for the outbox in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select

from bot.app import App
from bot.conversation.replies import Outgoing
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
    """Render every pending outbox row as the dispatcher would and mark it sent, without a channel (what would
    have gone out, in order). Polls are not reported back: tests call ``core.poll_sent`` with ids they choose."""
    from bot.runner import make_dispatcher

    dispatcher = make_dispatcher(app, sender=None)
    now = datetime.now(UTC)
    async with app.uow() as uow:
        items = await uow.outbox.claim("test", now, now, 10_000)
        await uow.commit()
    out: list[Outgoing] = []
    for item in sorted(items, key=lambda i: i.id):
        out.extend(await dispatcher.render(item))
        async with app.uow() as uow:
            await uow.outbox.finish(item.id, OutboxStatus.SENT, now)
            await uow.commit()
    return out
