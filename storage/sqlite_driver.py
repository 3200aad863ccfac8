"""SQLAlchemy's aiosqlite driver with one thread hop per statement instead of four.

aiosqlite runs every call on its connection's own thread; SQLAlchemy's adapter makes four calls per statement
(open a cursor, execute, fetch the rows, close the cursor), each a round trip between the event loop and that
thread. Here the four run as one function on the thread. A round trip costs about 0.1 ms of CPU (waking the thread,
then the loop); SQLite itself answers an indexed query in microseconds, so the hops were most of the cost of a
statement (bench.handling, docs/benchmarks.md). Everything else — transactions, pooling, server-side cursors,
errors — is the stock adapter's.

The serialised writer goes one step further (``run_inline``): while its transaction holds SQLite's write lock, its
statements run on the event loop's thread, with no hop at all.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

Outcome = tuple[Any, Sequence[Any], int, int | None]  # description, rows, rowcount, lastrowid


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> Outcome:
    """On the connection's thread: the whole statement, rows included."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else ()
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class _Ready:
    """An awaitable that is done at once (no trip through the event loop)."""

    def __await__(self) -> Any:
        return iter(())


_READY = _Ready()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statement is one call on the connection's thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no aiosqlite cursor: nothing to open (or close) per statement
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        if cast("OneHopConnection", self._adapt_connection).inline_now():
            return self._inline(operation, parameters, many=False)
        return super().execute(operation, parameters)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        if cast("OneHopConnection", self._adapt_connection).inline_now():
            return self._inline(operation, seq_of_parameters, many=True)
        return super().executemany(operation, seq_of_parameters)

    def _inline(self, operation: Any, parameters: Any, *, many: bool) -> None:
        await_(_READY)  # SQLAlchemy's async layer insists that an execution awaits something
        try:
            outcome = _run(self._connection._conn, operation, parameters, many)
        except Exception as error:
            self._adapt_connection._handle_exception(error)  # raises the driver's error as the adapter does
            raise
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        return await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        return await self._run(operation, seq_of_parameters, many=True)

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: Outcome = await connection._execute(  # type: ignore[no-untyped-call]
                _run, connection._conn, operation, parameters, many
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("inline",)
    _cursor_cls = OneHopCursor

    def __init__(self, dbapi: Any, connection: Any) -> None:
        super().__init__(dbapi, connection)
        self.inline = False  # see run_inline

    def rollback(self) -> None:
        """No trip to the connection's thread when there is nothing to roll back: the pool rolls back every
        connection it gets back (reset on return), also one whose transaction was just committed — one hop per
        group commit and per read-only unit of work, for nothing."""
        try:
            idle = self._free() and not self._connection._conn.in_transaction
        except (sqlite3.ProgrammingError, ValueError):  # closed: let the adapter say so
            idle = False
        if not idle:
            super().rollback()

    async def run_direct(self, operation: str, parameters: Sequence[Any], *, many: bool = False) -> Outcome:
        """One statement for ``storage.direct`` (``many``: once per parameter set), where this adapter would run
        it: inline when allowed, otherwise in one trip to the connection's thread. Raises the driver's own errors."""
        if self.inline_now():
            return _run(self._connection._conn, operation, parameters, many)
        async with self._execute_mutex:
            outcome: Outcome = await self._connection._execute(
                _run, self._connection._conn, operation, parameters, many
            )
        return outcome

    def run_now(self, operation: str) -> bool:
        """Run a statement without parameters or rows (a savepoint's) on the event loop's thread if that is allowed
        now (``inline_now``); False if it is not, and nothing was done. Raises the driver's own errors."""
        if not self.inline_now():
            return False
        self._connection._conn.execute(operation).close()
        return True

    def inline_now(self) -> bool:
        """Run this statement on the event loop's thread: allowed by the writer, inside its transaction, and no
        call of this connection under way on its own thread."""
        return self.inline and self._free() and self._connection._conn.in_transaction

    def _free(self) -> bool:
        """No call of this connection under way on its own thread (whose answer the connection's state awaits)."""
        return not self._execute_mutex.locked()


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DB-API module SQLAlchemy's aiosqlite dialect is given (``create_async_engine(..., module=...)``)."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's adapter does: never keep the process alive
        return OneHopConnection(self, await_(connection))


def one_hop_dbapi() -> OneHopDBAPI:
    return OneHopDBAPI(aiosqlite, sqlite3)


async def run_inline(connection: AsyncConnection, on: bool) -> Any:
    """Let (or stop letting) ``connection`` run its statements on the event loop's thread instead of its own.

    For the serialised writer (``storage.uow.Transactions``) once it holds SQLite's write lock (``BEGIN IMMEDIATE``),
    until its COMMIT or ROLLBACK: inside that transaction no statement waits for a lock, and the small writes and
    reads of handling an update take SQLite microseconds, where the trip to the connection's thread and back costs
    about 0.07 ms of CPU each (docs/benchmarks.md). COMMIT and ROLLBACK themselves still go to the thread (a commit
    may checkpoint the WAL), and so does every statement of every other connection: a read outside the writer's
    transaction, which could be long, never blocks the event loop. Returns the DB-API connection.
    """
    raw = await connection.get_raw_connection()
    adapted = raw.dbapi_connection
    if isinstance(adapted, OneHopConnection):
        adapted.inline = on
    return adapted
