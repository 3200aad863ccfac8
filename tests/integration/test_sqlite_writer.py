"""SQLite's serialised writer runs its statements on the event loop's thread while it holds the write lock, and only
then: once its transaction ends (committed or rolled back) the pooled connection goes back to its own thread, so a
write outside the writer that has to wait for the lock never freezes the event loop."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import make_engine, make_sessionmaker
from storage.sqlite_driver import OneHopConnection
from storage.uow import SqlUnitOfWork, Transactions
from tests.conftest import sqlite_copy


@pytest.fixture
async def engine(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(sqlite_copy(sqlite_template, tmp_path / "writer.db"))
    try:
        yield engine
    finally:
        await engine.dispose()


def adapted(connection: Any) -> OneHopConnection:
    return connection.dbapi_connection  # type: ignore[no-any-return]


async def pooled_inline_flag(engine: AsyncEngine) -> bool:
    """The inline flag of the pool's connection (these tests never have more than one idle)."""
    pool: Any = engine.sync_engine.pool
    for _ in range(100):  # the writer's connection goes back to the pool just after its COMMIT is reported
        if pool.checkedout() == 0:
            break
        await asyncio.sleep(0.01)
    assert pool.checkedout() == 0 and pool.checkedin() == 1
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        return adapted(raw).inline


async def test_writer_statements_skip_the_thread_and_reads_outside_do_not(engine: AsyncEngine) -> None:
    transactions = Transactions(make_sessionmaker(engine), serialise=True)
    seen: list[str] = []

    def record(statement: str) -> None:
        seen.append(threading.current_thread().name)

    async with transactions.scope() as uow:
        connection = await uow.session.connection()
        raw = await connection.get_raw_connection()
        raw.driver_connection._conn.set_trace_callback(record)
        await uow.session.execute(text("INSERT INTO community (code, name) VALUES ('c1', 'A')"))
        await uow.session.execute(text("SELECT count(*) FROM community"))
        raw.driver_connection._conn.set_trace_callback(None)
        await uow.commit()
    assert seen and set(seen) == {"MainThread"}

    seen.clear()
    async with SqlUnitOfWork(make_sessionmaker(engine)) as reader:  # not the writer: its own thread
        connection = await reader.session.connection()  # type: ignore[union-attr]
        raw = await connection.get_raw_connection()
        raw.driver_connection._conn.set_trace_callback(record)  # type: ignore[union-attr]
        count = (await reader.session.execute(text("SELECT count(*) FROM community"))).scalar()  # type: ignore[union-attr]
        raw.driver_connection._conn.set_trace_callback(None)  # type: ignore[union-attr]
    assert count == 1
    assert seen and "MainThread" not in seen


async def test_connection_leaves_inline_mode_after_commit_and_after_a_failed_scope(engine: AsyncEngine) -> None:
    transactions = Transactions(make_sessionmaker(engine), serialise=True)
    async with transactions.scope() as uow:
        await uow.session.execute(text("INSERT INTO community (code, name) VALUES ('c1', 'A')"))
        await uow.commit()
    assert await pooled_inline_flag(engine) is False

    async def failing_scope() -> None:
        async with transactions.scope() as uow:
            await uow.session.execute(text("INSERT INTO community (code, name) VALUES ('c2', 'B')"))
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await failing_scope()
    assert await pooled_inline_flag(engine) is False
    async with SqlUnitOfWork(make_sessionmaker(engine)) as reader:
        codes = (await reader.session.execute(text("SELECT code FROM community"))).scalars().all()  # type: ignore[union-attr]
    assert codes == ["c1"]  # the failed scope left nothing


async def test_write_waiting_for_the_writer_lock_keeps_the_event_loop_running(engine: AsyncEngine) -> None:
    """A plain unit of work writing while the writer holds SQLite's lock waits in its thread (busy handler); the
    event loop goes on meanwhile — ticks keep coming — and both writes land."""
    sessions = make_sessionmaker(engine)
    transactions = Transactions(sessions, serialise=True)
    async with transactions.scope() as uow:  # leaves a connection that was inline in the pool
        await uow.session.execute(text("INSERT INTO community (code, name) VALUES ('c0', 'Z')"))
        await uow.commit()

    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    locked = asyncio.Event()

    async def outside_write() -> None:  # started outside the writer's scope: its own connection, not the ambient one
        await locked.wait()
        async with SqlUnitOfWork(sessions) as other:
            await other.session.execute(text("INSERT INTO community (code, name) VALUES ('c2', 'B')"))  # type: ignore[union-attr]
            await other.commit()

    tick = asyncio.create_task(ticker())
    waiting = asyncio.create_task(outside_write())
    try:
        async with transactions.scope() as uow:
            await uow.session.execute(text("INSERT INTO community (code, name) VALUES ('c1', 'A')"))
            locked.set()
            await asyncio.sleep(0.3)  # the other write waits for the lock all this time
            assert not waiting.done()
            await uow.commit()
        await asyncio.wait_for(waiting, 10)
    finally:
        tick.cancel()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.2, f"the event loop stood still for {max(gaps):.2f} s"
    async with SqlUnitOfWork(sessions) as reader:
        codes = (await reader.session.execute(text("SELECT code FROM community ORDER BY code"))).scalars().all()  # type: ignore[union-attr]
    assert codes == ["c0", "c1", "c2"]


async def test_connection_returned_to_the_pool_is_rolled_back_only_when_in_a_transaction(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool rolls back every connection it gets back; after a COMMIT there is nothing to roll back and the trip
    to the connection's thread is skipped — but a unit of work left without commit is still undone."""
    import aiosqlite

    trips: list[str] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", ""))
        return await execute(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    transactions = Transactions(make_sessionmaker(engine), serialise=True)
    async with transactions.scope() as uow:
        await uow.session.execute(text("INSERT INTO community (code, name) VALUES ('c1', 'A')"))
        await uow.commit()
    await pooled_inline_flag(engine)  # the writer's connection is back in the pool
    assert "commit" in trips and "rollback" not in trips

    async with SqlUnitOfWork(make_sessionmaker(engine)) as left:  # writes, then leaves without commit
        await left.session.execute(text("INSERT INTO community (code, name) VALUES ('c2', 'B')"))  # type: ignore[union-attr]
    assert "rollback" in trips
    async with SqlUnitOfWork(make_sessionmaker(engine)) as reader:
        codes = (await reader.session.execute(text("SELECT code FROM community"))).scalars().all()  # type: ignore[union-attr]
    assert codes == ["c1"]
