"""The update stream's takeover: a live worker's announcements stay its own however long they take; a dead
worker's are taken over once idle for the reclaim time (Redis)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from bot import workers
from bot.channels.broker import UpdateBroker

pytestmark = pytest.mark.redis

TOKEN = "123:broker-test"


class SlowWorker(workers.Worker):
    """A live worker whose handling takes ``seconds`` (a long transaction, or a queue for the sender's lock)."""

    def __init__(self, broker: UpdateBroker, seconds: float) -> None:
        super().__init__(cast(Any, None), cast(Any, None), broker, concurrency=4)
        self.seconds = seconds
        self.handled: list[int] = []

    async def handle_sender(self, user: int | None, row: int) -> None:
        await asyncio.sleep(self.seconds)
        self.handled.append(row)


async def test_slow_announcements_of_a_live_worker_are_not_taken_over(
    redis: tuple[Redis, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, prefix = redis
    monkeypatch.setattr(workers, "HEARTBEAT", 0.3)
    live = UpdateBroker(client, TOKEN, "live", prefix=prefix)
    other = UpdateBroker(client, TOKEN, "other", prefix=prefix)
    await live.ensure_group()
    await live.publish([(1, 10), (2, 11), (3, 12)])
    worker = SlowWorker(live, seconds=3.0)
    stop = asyncio.Event()
    beating = asyncio.create_task(worker.heartbeat_loop(stop))
    worker.start(await live.read(10, 100))
    taken_over = []
    for _ in range(12):  # 2.4 s, twice the reclaim time below
        await asyncio.sleep(0.2)
        taken_over += await other.reclaim(1000, 10)
    await worker.drain(5)
    stop.set()
    await beating
    assert taken_over == []
    assert sorted(worker.handled) == [1, 2, 3]
    assert await live.backlog() == 0  # handled and acknowledged by the live worker


async def test_announcements_of_a_dead_worker_are_taken_over_once_idle(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    dead = UpdateBroker(client, TOKEN, "dead", prefix=prefix)
    other = UpdateBroker(client, TOKEN, "other", prefix=prefix)
    await dead.ensure_group()
    await dead.publish([(1, 10), (2, 11)])
    assert len(await dead.read(10, 100)) == 2  # taken, then the process is killed: no heartbeat, no ack
    assert await other.reclaim(1000, 10) == []  # not idle long enough yet
    await asyncio.sleep(1.1)
    assert sorted(a.row for a in await other.reclaim(1000, 10)) == [1, 2]


class _Inbox:
    """Pending rows received at ``received`` (row id, sender), as the inbox's ``overlooked`` finds them."""

    def __init__(self, received: datetime, rows: list[tuple[int, int | None]]) -> None:
        self.received, self.rows = received, rows

    async def overlooked(self, received_before: datetime, now: datetime, limit: int) -> list[tuple[int, int | None]]:
        return self.rows[:limit] if self.received < received_before else []


class _Uow:
    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox

    async def __aenter__(self) -> _Uow:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_row_left_pending_behind_a_backlog_is_announced_again_once_per_stale_age(
    redis: tuple[Redis, str],
) -> None:
    client, prefix = redis
    broker = UpdateBroker(client, TOKEN, "leader", prefix=prefix)
    await broker.ensure_group()
    await broker.publish([(99, 1)])  # a backlog: one announcement nobody has read
    start = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    inbox = _Inbox(start, [(5, 77)])
    now = [start + workers.SWEEP_AGE + timedelta(seconds=1)]
    app = SimpleNamespace(uow=lambda: _Uow(inbox))
    worker = workers.Worker(cast(Any, app), cast(Any, None), broker, clock=lambda: now[0])

    assert await worker.sweep() == 0  # 21 s old, but the backlog may still hold its announcement
    now[0] = start + workers.STALE_AGE + timedelta(seconds=1)
    assert await worker.sweep() == 1
    assert await worker.sweep() == 0  # not again at once
    now[0] += workers.STALE_AGE
    assert await worker.sweep() == 1
    entries = await client.xrange(broker.stream)
    assert [(f[b"row"], f[b"user"]) for _, f in entries] == [(b"99", b"1"), (b"5", b"77"), (b"5", b"77")]


class StuckWorker(workers.Worker):
    """A live worker whose handling waits on something that never comes (a future nobody completes)."""

    def __init__(self, broker: UpdateBroker) -> None:
        super().__init__(cast(Any, None), cast(Any, None), broker, concurrency=4)
        self.never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handle_sender(self, user: int | None, row: int) -> None:
        await self._send_replies()

    async def _send_replies(self) -> None:
        await asyncio.shield(self.never)


async def test_stalled_handling_logs_where_it_waits_once(
    redis: tuple[Redis, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, prefix = redis
    broker = UpdateBroker(client, TOKEN, "stuck", prefix=prefix)
    await broker.ensure_group()
    await broker.publish([(7, 70)])
    worker = StuckWorker(broker)
    worker.start(await broker.read(10, 100))
    await asyncio.sleep(0.05)
    assert worker.report_stalls(older_than=10) == 0  # not yet
    with caplog.at_level("WARNING", logger="bot.workers"):
        assert worker.report_stalls(older_than=0.01) == 1
        assert worker.report_stalls(older_than=0.01) == 0  # once per announcement
    [line] = [r.getMessage() for r in caplog.records if "in hand for" in r.getMessage()]
    assert "row 7, sender 70" in line
    assert "handle_sender" in line and "_send_replies" in line and "Future" in line
    worker.never.set_result(None)
    await worker.drain(2)
