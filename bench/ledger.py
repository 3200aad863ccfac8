"""Ledger throughput: awards per second through PointsService, against a plain one-row INSERT loop.

    python -m bench.ledger [--awards N] [--residents 100] [--pg-url postgresql+asyncpg://user@host/db]
                           [--pg-connections 40] [--rounds 4]

Both loops run with one task per resident (100 concurrent by default) on the same database in the same run, so the
ratio shows what the ledger's guarantees cost: account lock, idempotency check, cap sums, entry, lot and balance.
Tasks wait for one of a fixed number of connections (SQLite: the pool's 15; PostgreSQL: ``--pg-connections``, as
the server's connections are shared with whatever else runs there), the same for both loops. The loops take turns
(``--rounds``), so on a shared machine both see the same load; the CPU time this process spent per operation is
printed too (the database server's is not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.remote import pg_database
from bot.domain.points import Policy, Reason, Rule
from bot.services.points import PointsService
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.uow import SqlUnitOfWork, uow_factory

# Caps are computed on every award but set high enough never to bind, so every award writes.
SQLITE_POOL = 15  # SQLAlchemy's default for a file database: pool_size 5 + max_overflow 10
POLICY = Policy({Reason.QUIZ: Rule(1, daily_cap=10**9, weekly_cap=10**9)})


def _now() -> datetime:
    return datetime.now(UTC)


async def _seed(engine: AsyncEngine, residents: int) -> list[int]:
    """A community and ``residents`` registered residents; returns their resident ids."""
    now = _now()
    async with SqlUnitOfWork(make_sessionmaker(engine)) as uow:
        community = await uow.communities.add("bench", "基准社区")
        ids = []
        for n in range(residents):
            resident = await uow.residents.add(10_000 + n, "zh_Hans", now)
            await uow.residents.update(resident.id, consent_at=now, community_id=community.id)
            ids.append(resident.id)
        await uow.commit()
    return ids


@dataclass
class Loop:
    """What one loop did over the rounds: operations, wall time and this process's CPU time."""

    count: int = 0
    seconds: float = 0.0
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.count * 1000


async def _timed(loop: Loop, count: int, tasks: list[Callable[[], Awaitable[None]]]) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(task() for task in tasks))
    seconds = time.perf_counter() - start
    loop.count, loop.seconds, loop.cpu = (
        loop.count + count,
        loop.seconds + seconds,
        loop.cpu + time.process_time() - cpu,
    )
    return count / seconds


async def ledger_round(
    points: PointsService, residents: list[int], each: int, gate: asyncio.Semaphore, loop: Loop, round_: int
) -> float:
    """Awards per second through the one award path, one task per resident, ``each`` awards per task."""

    def worker(resident_id: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for n in range(each):
                async with gate:
                    await points.award(resident_id, Reason.QUIZ, f"bench:{resident_id}:{round_}:{n}")

        return run

    return await _timed(loop, each * len(residents), [worker(r) for r in residents])


async def plain_round(
    engine: AsyncEngine, residents: list[int], each: int, gate: asyncio.Semaphore, loop: Loop, round_: int
) -> float:
    """One-row INSERT + COMMIT per award, same concurrency: the floor any durable ledger stands on."""
    insert = text("INSERT INTO bench_plain (k, amount, at) VALUES (:k, 1, :at)")

    def worker(resident_id: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for n in range(each):
                async with gate, engine.begin() as conn:
                    await conn.execute(insert, {"k": f"{resident_id}:{round_}:{n}", "at": _now().isoformat()})

        return run

    return await _timed(loop, each * len(residents), [worker(r) for r in residents])


async def measure(
    url: str, residents: int, awards: int, connections: int = 40, rounds: int = 4
) -> tuple[Loop, Loop, list[float]]:
    """(ledger, plain, ratio of each round) on a migrated, empty database at ``url``.

    The two loops take turns (``rounds`` times, ``awards / rounds`` each turn), so both see the same load on a
    shared machine; a round's ratio compares two turns run one right after the other."""
    await upgrade_async(url)
    connections = SQLITE_POOL if url.startswith("sqlite") else min(residents, connections)
    engine = make_engine(url, pool_size=max(1, connections // 2))  # pool_size + as many overflow connections
    ledger, plain, ratios = Loop(), Loop(), []
    try:
        ids = await _seed(engine, residents)
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE bench_plain (k VARCHAR(64) PRIMARY KEY, amount INTEGER, at VARCHAR(40))")
            )
        points = PointsService(uow_factory(make_sessionmaker(engine)), _now, POLICY)
        # Tasks queue here (fairly) for a connection rather than time out in the pool.
        gate = asyncio.Semaphore(connections)
        # Untimed warm-up turn: the pool's connections opened, statements prepared.
        await ledger_round(points, ids, 1, gate, Loop(), rounds)
        await plain_round(engine, ids, 1, gate, Loop(), rounds)
        each = max(1, awards // rounds // len(ids))
        for round_ in range(rounds):
            ledger_per_s = await ledger_round(points, ids, each, gate, ledger, round_)
            plain_per_s = await plain_round(engine, ids, each, gate, plain, round_)
            ratios.append(ledger_per_s / plain_per_s)
    finally:
        await engine.dispose()
    return ledger, plain, ratios


def _line(name: str, ledger: Loop, plain: Loop, ratios: list[float]) -> str:
    rounds = " ".join(f"{r:.2f}" for r in ratios)
    return (
        f"{name:9} ledger {ledger.rate:6.0f} awards/s ({ledger.cpu_ms:.2f} ms CPU each)   "
        f"plain insert {plain.rate:6.0f} rows/s ({plain.cpu_ms:.2f} ms CPU each)   "
        f"ratio {ledger.rate / plain.rate:.2f} (rounds {rounds})"
    )


async def main(args: argparse.Namespace) -> None:
    ratios: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        ledger, plain, rounds = await measure(url, args.residents, args.awards, rounds=args.rounds)
    print(_line("sqlite", ledger, plain, rounds))
    ratios.append(f"sqlite={ledger.rate / plain.rate:.2f}")
    if args.pg_url:
        name = f"sicheng_bench_{uuid.uuid4().hex[:8]}"
        url = await pg_database(args.pg_url, name, create=True)
        try:
            ledger, plain, rounds = await measure(url, args.residents, args.awards, args.pg_connections, args.rounds)
        finally:
            await pg_database(args.pg_url, name, create=False)
        print(_line("postgres", ledger, plain, rounds))
        ratios.append(f"postgres={ledger.rate / plain.rate:.2f}")
    print("ratio " + " ".join(ratios))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--awards", type=int, default=5000, help="awards per backend (default 5000)")
    parser.add_argument("--residents", type=int, default=100, help="concurrent residents (default 100)")
    parser.add_argument("--pg-url", help="PostgreSQL server URL; a scratch database is created and dropped there")
    parser.add_argument(
        "--pg-connections", type=int, default=40, help="PostgreSQL connections the tasks share (default 40)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="turns each loop takes, alternating (default 4)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
