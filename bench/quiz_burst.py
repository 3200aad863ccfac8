"""Quiz burst: 1,000 residents answer a group quiz poll, through the conversation core and over HTTP.

    python -m bench.quiz_burst [--residents 1000] [--seen] [--pg-url postgresql+asyncpg://user@host/db] [--no-http]

Every update goes through the durable inbox as in production (``bot.channels.inbox``): stored (intake's
transaction), then handled by the inbox worker in one transaction (row marked done, handler, replies queued in the
outbox), then its replies are sent. In-process the raw update JSON is handed to ``Inbox.take`` (what the long-polling
intake does with a getUpdates batch) and the real ``Inbox.run`` worker handles it; over HTTP the bot runs ``run_bot``.

(a) answers spread over 10 s: handling latency p50/p99 (update submitted → its handling transaction committed; one
    update per intake transaction, as getUpdates returns about one at 100 updates/s);
(b) all answers at once (well within one second): time to drain, and throughput against a bare echo handler fed the
    same updates in the same run (in-process: the same inbox over a core whose poll_answer handler does nothing;
    over HTTP: a bare aiogram bot with one poll_answer handler, polling the same emulator). In-process the burst is
    taken in batches of 100 (getUpdates' limit).
A tenth of the burst is delivered twice (as Telegram may; intake keeps a redelivered update once). Every run checks
the ledger: each correct answer of a registered resident credited exactly once, duplicates never.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.app import App, build_app
from bot.channels.inbox import Inbox
from bot.config import DatabaseSettings, Settings
from bot.conversation.core import Core
from bot.conversation.incoming import ChatType, Incoming
from bot.conversation.replies import Action, Outgoing, OutPoll
from bot.conversation.router import Router
from bot.domain.messaging import InboxItem
from bot.domain.roles import Role
from bot.runner import make_dispatcher
from storage.db import make_sessionmaker, upgrade_async
from storage.uow import SqlUnitOfWork

GROUP, ORGANISER, FIRST = -100_900_000_001, 900_000, 1_000_001
BATCH = 100  # getUpdates returns at most 100 updates
Update = dict[str, Any]
Handle = Callable[[Sequence[Update]], Awaitable[Any]]


async def seed(app: App, residents: int, *, seen: bool = False) -> list[int]:
    """Community ``demo``, a linked group, an organiser and ``residents`` registered residents (Telegram ids).

    ``seen``: they used the bot within the hour, so the core does not note their first visit (one write less).
    """
    now = datetime.now(UTC)
    community = await app.services.communities.add("demo", "基准社区", [("1", "1号楼"), ("2", "2号楼")])
    ids = [FIRST + n for n in range(residents)]
    async with SqlUnitOfWork(make_sessionmaker(app.engine)) as uow:
        for n, telegram_id in enumerate([ORGANISER, *ids]):
            resident = await uow.residents.add(telegram_id, "zh_Hans", now)
            building = community.buildings[n % 2].id
            await uow.residents.update(
                resident.id,
                consent_at=now,
                community_id=community.id,
                building_id=building,
                last_seen_at=now if seen else None,
            )
        await uow.commit()
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    await app.services.communities.link_group(GROUP, "demo", "基准群", "residents")
    return ids


def vote(update_id: int, user_id: int, poll_id: str, option: int) -> Update:
    """A poll_answer update as Telegram's getUpdates returns it (raw JSON, what the inbox stores)."""
    user = {"id": user_id, "is_bot": False, "first_name": "居民"}
    return {"update_id": update_id, "poll_answer": {"poll_id": poll_id, "user": user, "option_ids": [option]}}


class Feed:
    """The inbox of the running bot, fed in-process: ``take`` stores updates, the real worker (``Inbox.run``)
    handles them; ``handled(update_id)`` waits until that update's transaction has committed."""

    def __init__(self, app: App, core: Core) -> None:
        dispatcher = make_dispatcher(app, sender=None)  # poll answers have no replies to send
        self.inbox = Inbox(core, app.uow, app.transactions, dispatcher, lambda: datetime.now(UTC))
        self.done: dict[int, asyncio.Future[float]] = {}
        self.stop = asyncio.Event()
        handle = self.inbox.handle

        async def timed(item: InboxItem) -> None:
            await handle(item)
            self._future(item.update_id).set_result(time.perf_counter())

        self.inbox.handle = timed  # type: ignore[method-assign]

    def _future(self, update_id: int) -> asyncio.Future[float]:
        if update_id not in self.done:
            self.done[update_id] = asyncio.get_running_loop().create_future()
        return self.done[update_id]

    async def __aenter__(self) -> Feed:
        self.task = asyncio.create_task(self.inbox.run(self.stop))
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        await self.task  # leaves its idle wait within a second
        await self.inbox.drain(10)

    async def take(self, updates: Sequence[Update]) -> None:
        await self.inbox.take(updates)

    async def handled(self, update_id: int) -> float:
        return await self._future(update_id)


def choice(user_id: int, poll: OutPoll) -> int:
    """Even ids answer right, odd ids wrong: half the answers earn a point."""
    right = poll.correct_option_ids[0]
    return right if user_id % 2 == 0 else (right + 1) % len(poll.options)


async def paced(feed: Feed, items: Sequence[Update], seconds: float) -> tuple[list[float], float]:
    """Submit ``items`` evenly over ``seconds``, one intake transaction each (0: all at once, in batches of 100);
    per-update latency (submitted → handled) and the time until the last one was handled."""
    start = time.perf_counter()
    batches = [[u] for u in items] if seconds else [list(items[k : k + BATCH]) for k in range(0, len(items), BATCH)]

    async def one(k: int, batch: list[Update]) -> list[float]:
        await asyncio.sleep(max(0.0, start + k * seconds / len(batches) - time.perf_counter()))
        began = time.perf_counter()
        await feed.take(batch)
        return [await feed.handled(u["update_id"]) - began for u in batch]

    if seconds:
        latencies = [t for ts in await asyncio.gather(*(one(k, b) for k, b in enumerate(batches))) for t in ts]
    else:  # getUpdates batches arrive one after another; the worker handles while the next is stored
        latencies = []
        for batch in batches:
            await feed.take(batch)
        await asyncio.gather(*(feed.handled(i) for i in {u["update_id"] for u in items}))
    return latencies, time.perf_counter() - start


def percentiles(latencies: Sequence[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms"


async def drain(app: App) -> list[Outgoing]:
    """What would have gone out, in order, rendered and marked sent without a channel."""
    return await make_dispatcher(app, sender=None).render_pending()


async def finish_due_rounds(app: App, now: datetime) -> list[Outgoing]:
    """The periodic runner's group-quiz step, and what it queued in the outbox (rendered, in order)."""
    await app.services.quiz.group.due(now)
    return await drain(app)


async def start_quiz(app: App, count: int) -> OutPoll:
    command = Incoming(
        update_id=1,
        user_id=ORGANISER,
        chat_id=GROUP,
        chat_type=ChatType.SUPERGROUP,
        command="groupquiz",
        args=f"garden {count} 120",
    )
    out = await app.core.handle(command) + await drain(app)
    (poll,) = [o for o in out if isinstance(o, OutPoll)]
    return poll


def echo_core(app: App) -> Core:
    """The same core machinery (profile lookup, dialog state) with a handler that does nothing."""
    router = Router("echo")

    @router.on("poll_answer")
    async def echo(_: Any) -> list[Action]:
        return []

    return Core(router, app.services, app.core.store, app.core.renderer)


VOTES = "SELECT telegram_id, SUM(CASE WHEN correct THEN 1 ELSE 0 END) FROM group_quiz_answer GROUP BY telegram_id"
CREDITS = (
    "SELECT r.telegram_id, SUM(e.amount) FROM points_entry e JOIN points_account a ON a.id = e.account_id "
    "JOIN resident r ON r.id = a.resident_id WHERE e.reason = 'quiz' GROUP BY r.telegram_id"
)


async def check_ledger(app: App) -> str:
    """Ledger vs votes: every correct answer of a resident credited once; nothing else."""
    async with app.engine.connect() as conn:
        votes = {who: int(n) for who, n in (await conn.execute(text(VOTES))).all()}
        credited = {who: int(n) for who, n in (await conn.execute(text(CREDITS))).all()}
    expected = {who: n for who, n in votes.items() if n}
    assert credited == expected, "ledger and correct answers differ"
    return f"ledger OK: {sum(expected.values())} correct answers of {len(votes)} voters, each credited once"


async def in_process(url: str, residents: int, seen: bool) -> list[str]:
    app = await build_app(Settings(database=DatabaseSettings(url=url)), bot_username="sicheng_bot")
    try:
        ids = await seed(app, residents, seen=seen)
        lines = [f"in-process core, {residents} residents, {url.split(':')[0]}"]
        first = await start_quiz(app, 2)
        await app.core.poll_sent(first, "burst-1", 1)
        async with Feed(app, app.core) as feed:
            latencies, _ = await paced(
                feed, [vote(10 + k, u, "burst-1", choice(u, first)) for k, u in enumerate(ids)], 10.0
            )
        lines.append(f"(a) spread over 10 s: {percentiles(latencies)} (update stored → handled, committed)")

        (second,) = [
            o for o in await finish_due_rounds(app, datetime.now(UTC) + timedelta(minutes=5)) if isinstance(o, OutPoll)
        ]
        await app.core.poll_sent(second, "burst-2", 2)
        burst = [vote(5000 + k, u, "burst-2", choice(u, second)) for k, u in enumerate(ids)]
        burst += burst[: residents // 10]  # redelivered duplicates
        async with Feed(app, app.core) as feed:
            _, drain = await paced(feed, burst, 0.0)
        echo = [vote(9000 + k, u, "echo", 0) for k, u in enumerate(ids)]
        async with Feed(app, echo_core(app)) as feed:
            _, echo_drain = await paced(feed, echo + echo[: residents // 10], 0.0)
        lines.append(
            f"(b) {len(burst)} updates at once: drained in {drain:.2f} s ({len(burst) / drain:.0f}/s); "
            f"bare echo {echo_drain:.2f} s ({len(burst) / echo_drain:.0f}/s); ratio {echo_drain / drain:.2f}"
        )
        settle = time.perf_counter()
        await app.services.quiz.group.due(datetime.now(UTC) + timedelta(minutes=10))  # the poll closes: credit
        lines.append(
            f"crediting {residents // 2} correct answers when the poll closed: "
            f"{time.perf_counter() - settle:.2f} s (periodic runner, off the update path)"
        )
        lines.append(await check_ledger(app))
        return lines
    finally:
        await app.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--pg-url", help="run on this (empty) PostgreSQL database instead of SQLite")
    parser.add_argument("--seen", action="store_true", help="residents used the bot within the hour")
    parser.add_argument("--no-http", action="store_true", help="skip the run over HTTP through the emulator")
    args = parser.parse_args()

    async def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            url = args.pg_url or f"sqlite+aiosqlite:///{Path(folder) / 'burst.db'}"
            await upgrade_async(url)
            for line in await in_process(url, args.residents, args.seen):
                print(line)
            if not args.no_http:
                from bench.quiz_burst_http import over_http

                http_url = f"sqlite+aiosqlite:///{Path(folder) / 'burst_http.db'}"
                await upgrade_async(http_url)
                for line in await over_http(http_url, args.residents, args.seen):
                    print(line)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
