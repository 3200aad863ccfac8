"""Quiz burst: 1,000 residents answer a group quiz poll, through the conversation core and over HTTP.

    python -m bench.quiz_burst [--residents 1000] [--seen] [--pg-url postgresql+asyncpg://user@host/db] [--no-http]

(a) answers spread over 10 s: handling latency p50/p99 (update submitted → the core has finished with it);
(b) all answers at once (well within one second): time to drain, and throughput against a bare echo handler fed the
    same updates in the same run (in-process: a core whose poll_answer handler does nothing; over HTTP: a bare aiogram
    bot with one poll_answer handler, polling the same emulator).
A tenth of the burst is delivered twice (as Telegram may). Every run checks the ledger: each correct answer of a
registered resident credited exactly once, duplicates never.
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
from bot.config import DatabaseSettings, Settings
from bot.conversation.core import Core
from bot.conversation.incoming import ChatType, Incoming, PollAnswer
from bot.conversation.replies import Action, OutPoll
from bot.conversation.router import Router
from bot.domain.roles import Role
from handlers.quiz_group import finish_due_rounds
from storage.db import make_sessionmaker, upgrade_async
from storage.uow import SqlUnitOfWork

GROUP, ORGANISER, FIRST = -100_900_000_001, 900_000, 1_000_001
Handle = Callable[[Incoming], Awaitable[Any]]


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


def vote(update_id: int, user_id: int, poll_id: str, option: int) -> Incoming:
    answer = PollAnswer(poll_id, (option,))
    return Incoming(update_id=update_id, user_id=user_id, chat_id=user_id, first_name="居民", poll_answer=answer)


def choice(user_id: int, poll: OutPoll) -> int:
    """Even ids answer right, odd ids wrong: half the answers earn a point."""
    right = poll.correct_option_ids[0]
    return right if user_id % 2 == 0 else (right + 1) % len(poll.options)


async def paced(handle: Handle, items: Sequence[Incoming], seconds: float) -> tuple[list[float], float]:
    """Submit ``items`` evenly over ``seconds`` (0: all at once); per-item latency and the time to drain."""
    start = time.perf_counter()

    async def one(k: int, incoming: Incoming) -> float:
        await asyncio.sleep(max(0.0, start + k * seconds / len(items) - time.perf_counter()))
        began = time.perf_counter()
        await handle(incoming)
        return time.perf_counter() - began

    latencies = await asyncio.gather(*(one(k, i) for k, i in enumerate(items)))
    return list(latencies), time.perf_counter() - start


def percentiles(latencies: Sequence[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms"


async def start_quiz(app: App, count: int) -> OutPoll:
    command = Incoming(
        update_id=1,
        user_id=ORGANISER,
        chat_id=GROUP,
        chat_type=ChatType.SUPERGROUP,
        command="groupquiz",
        args=f"garden {count} 120",
    )
    (poll,) = [o for o in await app.core.handle(command) if isinstance(o, OutPoll)]
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
        latencies, _ = await paced(
            app.core.handle, [vote(10 + k, u, "burst-1", choice(u, first)) for k, u in enumerate(ids)], 10.0
        )
        lines.append(f"(a) spread over 10 s: {percentiles(latencies)}")

        (second,) = [
            o
            for o in await finish_due_rounds(app.core, datetime.now(UTC) + timedelta(minutes=5))
            if isinstance(o, OutPoll)
        ]
        await app.core.poll_sent(second, "burst-2", 2)
        burst = [vote(5000 + k, u, "burst-2", choice(u, second)) for k, u in enumerate(ids)]
        burst += burst[: residents // 10]  # redelivered duplicates
        _, drain = await paced(app.core.handle, burst, 0.0)
        echo = echo_core(app)
        _, echo_drain = await paced(
            echo.handle, [vote(9000 + k, u, "echo", 0) for k, u in enumerate(ids)] + burst[: residents // 10], 0.0
        )
        lines.append(
            f"(b) {len(burst)} updates at once: drained in {drain:.2f} s ({len(burst) / drain:.0f}/s); "
            f"bare echo {echo_drain:.2f} s ({len(burst) / echo_drain:.0f}/s); ratio {echo_drain / drain:.2f}"
        )
        settle = time.perf_counter()
        await finish_due_rounds(app.core, datetime.now(UTC) + timedelta(minutes=10))  # the poll closes: credit
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
