"""Ledger throughput: awards per second through PointsService, against a plain one-row INSERT loop.

    python -m bench.ledger [--awards N] [--residents 100] [--pg-url postgresql+asyncpg://user@host/db]

Both loops run with one task per resident (100 concurrent by default) on the same database in the same run, so the
ratio shows what the ledger's guarantees cost: account lock, idempotency check, cap sums, entry, lot and balance.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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


async def _timed(tasks: list[Callable[[], Awaitable[None]]]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(task() for task in tasks))
    return time.perf_counter() - start


async def ledger_rate(engine: AsyncEngine, residents: list[int], awards: int, gate: asyncio.Semaphore) -> float:
    """Awards per second through the one award path, one task per resident."""
    points = PointsService(uow_factory(make_sessionmaker(engine)), _now, POLICY)
    each = max(1, awards // len(residents))

    def worker(resident_id: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for n in range(each):
                async with gate:
                    await points.award(resident_id, Reason.QUIZ, f"bench:{resident_id}:{n}")

        return run

    return each * len(residents) / await _timed([worker(r) for r in residents])


async def plain_rate(engine: AsyncEngine, residents: list[int], awards: int, gate: asyncio.Semaphore) -> float:
    """One-row INSERT + COMMIT per award, same concurrency: the floor any durable ledger stands on."""
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE bench_plain (k VARCHAR(64) PRIMARY KEY, amount INTEGER, at VARCHAR(40))"))
    each = max(1, awards // len(residents))
    insert = text("INSERT INTO bench_plain (k, amount, at) VALUES (:k, 1, :at)")

    def worker(resident_id: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            for n in range(each):
                async with gate, engine.begin() as conn:
                    await conn.execute(insert, {"k": f"{resident_id}:{n}", "at": _now().isoformat()})

        return run

    return each * len(residents) / await _timed([worker(r) for r in residents])


async def measure(url: str, residents: int, awards: int) -> tuple[float, float]:
    """(ledger awards/s, plain inserts/s) on a migrated, empty database at ``url``."""
    await upgrade_async(url)
    engine = make_engine(url, pool_size=min(residents, 50))
    try:
        ids = await _seed(engine, residents)
        # SQLite's pool holds 15 connections: the other tasks queue here (fairly) rather than time out in the pool.
        gate = asyncio.Semaphore(SQLITE_POOL if url.startswith("sqlite") else residents)
        ledger = await ledger_rate(engine, ids, awards, gate)
        plain = await plain_rate(engine, ids, awards, gate)
    finally:
        await engine.dispose()
    return ledger, plain


async def _pg_database(admin_url: str, create: bool, name: str) -> str:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            sql = f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            await conn.execute(text(sql))
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def main(args: argparse.Namespace) -> None:
    ratios: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        ledger, plain = await measure(url, args.residents, args.awards)
    print(f"sqlite    ledger {ledger:8.0f} awards/s   plain insert {plain:8.0f} rows/s   ratio {ledger / plain:.2f}")
    ratios.append(f"sqlite={ledger / plain:.2f}")
    if args.pg_url:
        name = f"sicheng_bench_{uuid.uuid4().hex[:8]}"
        url = await _pg_database(args.pg_url, True, name)
        try:
            ledger, plain = await measure(url, args.residents, args.awards)
        finally:
            await _pg_database(args.pg_url, False, name)
        print(
            f"postgres  ledger {ledger:8.0f} awards/s   plain insert {plain:8.0f} rows/s   ratio {ledger / plain:.2f}"
        )
        ratios.append(f"postgres={ledger / plain:.2f}")
    print("ratio " + " ".join(ratios))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.splitlines()[0])
    parser.add_argument("--awards", type=int, default=5000, help="awards per backend (default 5000)")
    parser.add_argument("--residents", type=int, default=100, help="concurrent residents (default 100)")
    parser.add_argument("--pg-url", help="PostgreSQL server URL; a scratch database is created and dropped there")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
