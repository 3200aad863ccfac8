"""Statements run for every update, sent by the database driver itself instead of SQLAlchemy's execution path.

Handling a tap costs SQLite a few microseconds per statement, and SQLAlchemy 40–90 µs around each of them (the
session, the compiled cache's key, the execution context, parameter and result processing; the multi-row outbox
INSERT most). With three such statements per update that was a fifth of the bot's CPU for a menu tap
(docs/benchmarks.md). A :class:`Direct` statement is an ordinary Core statement, compiled once per dialect by
SQLAlchemy — the SQL, the order of its parameters, and the types' own bind and result processors are SQLAlchemy's —
and then sent on the session's own connection, in the session's transaction, by the driver: ``sqlite3`` (on the
event loop's thread while the serialised writer holds the write lock, otherwise on the connection's thread, as
``storage.sqlite_driver`` does for every statement) or asyncpg.

What SQLAlchemy would have done around the statement is done here too, or the statement goes through SQLAlchemy
after all:

* a write is noted for the caches (``storage.revisions``), as every statement is;
* if the session holds unflushed objects (a read must see them) or a lazy savepoint waits for the first write
  (``storage.uow``), the statement is executed by the session, which flushes and emits them;
* on PostgreSQL, the first statement of a transaction is executed by SQLAlchemy, whose asyncpg adapter opens the
  transaction with it (asyncpg itself would run the statement in autocommit);
* a driver error is raised as SQLAlchemy's (``sqlalchemy.exc.DBAPIError`` and its subclasses).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement, Executable

from storage.revisions import ambient, note_write, savepoint_waiting
from storage.sqlite_driver import OneHopConnection

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool  # the driver takes parameters by position (sqlite3, asyncpg); otherwise SQLAlchemy runs it
    names: tuple[str, ...]  # the parameters in the order the SQL takes them
    fixed: Mapping[str, Any]  # the statement's own values (literals, defaults), processed
    binds: Mapping[str, Processor]
    results: tuple[Processor, ...]  # one per result column (empty: the statement returns no rows)
    write: bool

    def parameters(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        values = []
        for name in self.names:
            if name in given:
                value = given[name]
                process = self.binds[name]
                values.append(value if process is None else process(value))
            elif name in self.fixed:
                values.append(self.fixed[name])
            else:
                raise exc.ArgumentError(f"a value is required for bind parameter {name!r}")
        return tuple(values)

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        results = self.results
        if not any(results):
            return [tuple(row) for row in raw]
        return [
            tuple(value if process is None else process(value) for process, value in zip(results, row, strict=True))
            for row in raw
        ]


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    binds_of = compiled.binds.values()
    if compiled.escaped_bind_names or any(bind.expanding or bind.callable is not None for bind in binds_of):
        raise ValueError("a direct statement takes plain named parameters")
    binds: dict[str, Processor] = {}
    fixed: dict[str, Any] = {}
    for name in names:
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds[name] = process
        if not bind.required:  # a literal of the statement (e.g. the emptied payload): processed once
            fixed[name] = bind.value if process is None else process(bind.value)
    columns: Any = getattr(statement, "selected_columns", None)
    if columns is None:
        columns = getattr(statement, "exported_columns", ())  # INSERT/UPDATE ... RETURNING
    results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    return _Compiled(
        sql=str(compiled),
        positional=bool(compiled.positional),
        names=names,
        fixed=fixed,
        binds=binds,
        results=results,
        write=bool(compiled.isinsert or compiled.isupdate or compiled.isdelete),
    )


_CONNECTION = "sicheng_direct_connection"  # Session.info: (root transaction, its DB-API connection)


async def _connection_of(session: AsyncSession) -> Any:
    """The DB-API connection the statement runs on: the SQLite group's (the session joins its transaction), or the
    session's own."""
    current = ambient()
    if current is not None and current.session is session and current.connection is not None:
        return current.connection
    return await _driver_connection(session)


async def _driver_connection(session: AsyncSession) -> Any:
    """The DB-API connection of the session's transaction (begun now if it was not). Kept for the rest of the
    transaction: ``AsyncSession.connection()`` costs a greenlet switch and SQLAlchemy's bookkeeping each time, about
    as much as the statement; a transaction keeps its connection until it ends."""
    sync = session.sync_session
    transaction = sync.get_transaction()
    kept = sync.info.get(_CONNECTION)
    if kept is not None and transaction is not None and kept[0] is transaction and transaction.is_active:
        return kept[1]
    connection = (await session.connection()).sync_connection
    assert connection is not None
    adapted = connection.connection.dbapi_connection
    sync.info[_CONNECTION] = (sync.get_transaction(), adapted)
    return adapted


@dataclass(frozen=True)
class Outcome:
    rows: list[tuple[Any, ...]]
    rowcount: int


class Direct:
    """A Core statement (its parameters named by ``bindparam``), run on a session by the driver itself."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str, str], _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _compile(self.statement, dialect)
        return found

    async def run(self, session: AsyncSession, params: Mapping[str, Any]) -> Outcome:
        return await self._execute(session, params, many=False)

    async def run_many(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once per parameter set (``executemany``), for statements that return no rows."""
        if self.compiled(session.sync_session.get_bind().dialect).results:
            raise ValueError("run_many is for statements without rows to return")
        await self._execute(session, rows, many=True)

    async def _execute(self, session: AsyncSession, given: Any, *, many: bool) -> Outcome:
        sync = session.sync_session
        compiled = self.compiled(sync.get_bind().dialect)
        if not compiled.positional or not sync._is_clean() or (compiled.write and savepoint_waiting(sync)):
            return await self._through_session(session, given, many=many)
        adapted = await _connection_of(session)
        values = [compiled.parameters(row) for row in given] if many else compiled.parameters(given)
        if compiled.write:
            note_write(compiled.sql)
        if isinstance(adapted, OneHopConnection):
            try:
                description, rows, rowcount, _ = await adapted.run_direct(compiled.sql, values, many=many)
            except adapted.dbapi.Error as error:
                raise exc.DBAPIError.instance(compiled.sql, values, error, adapted.dbapi.Error) from error
            return Outcome(compiled.rows(rows) if description else [], rowcount)
        driver = getattr(adapted, "_connection", None)
        in_transaction = getattr(driver, "is_in_transaction", None)
        if in_transaction is None or not in_transaction():  # not asyncpg, or its transaction not begun yet
            return await self._through_session(session, given, many=many)
        return await self._asyncpg(adapted, driver, compiled, values, many=many)

    async def _asyncpg(
        self, adapted: Any, driver: Any, compiled: _Compiled, values: Any, *, many: bool = False
    ) -> Outcome:
        try:
            async with adapted._execute_mutex:  # as the adapter: one statement at a time per connection
                if many:
                    await driver.executemany(compiled.sql, values)
                    return Outcome([], -1)
                if compiled.results:
                    records = await driver.fetch(compiled.sql, *values)
                    return Outcome(compiled.rows(records), len(records))
                status: str = await driver.execute(compiled.sql, *values)
        except (asyncio.CancelledError, exc.SQLAlchemyError):
            raise
        except Exception as error:
            try:
                adapted._handle_exception(error)  # raises the adapter's DB-API error for asyncpg's
            except adapted.dbapi.Error as translated:
                raise exc.DBAPIError.instance(compiled.sql, values, translated, adapted.dbapi.Error) from error
            raise
        count = status.rsplit(" ", 1)[-1]
        return Outcome([], int(count) if count.isdigit() else -1)

    async def _through_session(self, session: AsyncSession, given: Any, *, many: bool) -> Outcome:
        params = [dict(row) for row in given] if many else dict(given)
        result: Any = await session.execute(cast(Executable, self.statement), params)
        if result.returns_rows:
            rows = [tuple(row) for row in result.all()]
            return Outcome(rows, len(rows))
        return Outcome([], int(result.rowcount))
