"""Engine and session factory, plus running migrations (``sicheng db upgrade``)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from bot.jsonio import dumps_text, loads
from storage.sqlite_driver import OneHopConnection, one_hop_dbapi

MIGRATIONS = Path(__file__).parent / "migrations"


# JSON columns (inbox and outbox payloads above all) written and read with orjson: bot/jsonio.py says why.
_JSON: dict[str, Any] = {"json_serializer": dumps_text, "json_deserializer": loads}


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """An async engine; SQLite gets foreign keys, WAL and a busy timeout so concurrent writers wait."""
    if url.startswith("sqlite"):
        module = {"module": one_hop_dbapi()} if url.startswith("sqlite+aiosqlite") else {}
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}, **_JSON, **module
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        engine = create_async_engine(
            url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, **_JSON
        )
    _plain_savepoints(engine)
    return engine


_SAVEPOINT_NAME = re.compile(r"\w+\Z")


def _plain_savepoints(engine: AsyncEngine) -> None:
    """SAVEPOINT, RELEASE and ROLLBACK TO as plain driver SQL instead of compiled constructs.

    SQLAlchemy compiles a fresh SavepointClause for each of them (savepoint statements are not cached) and runs it
    through the full execution path: 96 µs of CPU for a SAVEPOINT and its RELEASE, against 24 µs as driver SQL
    (errors, events and logging stay SQLAlchemy's). Inside the SQLite writer's transaction, where statements run on
    the event loop's thread anyway (storage/sqlite_driver.py), sqlite3 is called directly, without SQLAlchemy's
    execution path (not logged by ``echo``; a failure is raised as SQLAlchemy's error all the same). Every update
    that shares a SQLite group commit with others has such a pair (storage/uow.py), as has every unit of work that
    writes inside an update.
    """
    dialect = engine.sync_engine.dialect

    def run(verb: str) -> Any:
        def execute(connection: Any, name: str) -> None:
            if not _SAVEPOINT_NAME.match(name):  # SQLAlchemy's own names (sa_savepoint_N); never user input
                raise ValueError(f"unexpected savepoint name {name!r}")
            sql = f"{verb} {name}"
            adapted = connection.connection.dbapi_connection
            if isinstance(adapted, OneHopConnection):
                try:
                    if adapted.run_now(sql):  # the SQLite writer's transaction: sqlite3 on the event loop's thread
                        return
                except adapted.dbapi.Error as error:
                    raise exc.DBAPIError.instance(sql, None, error, adapted.dbapi.Error) from error
            connection.exec_driver_sql(sql)

        return execute

    dialect.do_savepoint = run("SAVEPOINT")  # type: ignore[method-assign]
    dialect.do_release_savepoint = run("RELEASE SAVEPOINT")  # type: ignore[method-assign]
    dialect.do_rollback_to_savepoint = run("ROLLBACK TO SAVEPOINT")  # type: ignore[method-assign]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts the database; a power cut may lose the last commits, not a process crash.
    # It saves an fsync per transaction, which is most of the cost of a small write.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query (health checks)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` (blocking; call from sync code or a thread)."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Migrate from async code: Alembic's env runs its own event loop, so use a worker thread."""
    await asyncio.to_thread(upgrade, url, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""

    def read(conn: Any) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


def head_revision() -> str | None:
    """The newest migration shipped with this version of Sicheng."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
