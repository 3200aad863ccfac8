"""The SQL unit of work: one session, one transaction, repositories sharing it.

An *ambient* transaction (``Transactions.scope``) makes several units of work one: the inbox worker opens one
around the handling of an update (and the job runner around a due job), and every unit of work a service opens
inside it — in the same asyncio task — joins it with a SAVEPOINT of its own. A service's ``commit`` then releases
its savepoint; only the scope's commit makes the effects durable, together with the dialog state, the update marked
done and the messages queued in the outbox. Leaving a service's unit of work without commit rolls back just its
savepoint.

Savepoints are *lazy*: asking for one (a unit of work joining, ``Transactions.savepoint``) emits nothing; the
SAVEPOINT statement goes out just before the first write inside it (an ORM flush, or an INSERT/UPDATE/DELETE
executed through the session), and its RELEASE or ROLLBACK TO only if it went out. Most units of work on the path
of an update only read (the sender's profile, their settings), and two statements each were a measurable part of
handling an update (docs/benchmarks.md). Rolling back a savepoint that was never emitted discards what the unit of
work had not flushed yet, as SQLAlchemy's own savepoints do. A read that fails (on PostgreSQL that aborts the
transaction) is no longer contained by a savepoint: the whole update is retried, as for any storage failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Generic, Self, TypeVar, overload

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, AsyncTransaction, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.util import greenlet_spawn

from storage.campaign_repository import SqlCampaignRepository
from storage.dashboard_repository import SqlDashboardRepository
from storage.job_repository import SqlJobRepository
from storage.messaging_repository import SqlInboxRepository, SqlOutboxRepository
from storage.points_repository import SqlPointsRepository
from storage.proposal_repository import SqlProposalRepository
from storage.quiz_repository import SqlQuizRepository
from storage.report_repository import SqlReportRepository
from storage.repositories import (
    SqlAuditRepository,
    SqlCommunityRepository,
    SqlGroupChatRepository,
    SqlResidentRepository,
)
from storage.revisions import (
    SAVEPOINTS,
    Ambient,
    ambient,
    ambient_session,
    enter_ambient,
    leave_ambient,
    savepoint_waiting,
)
from storage.rewards_repository import SqlRewardRepository
from storage.sqlite_driver import run_inline
from storage.survey_repository import SqlSurveyRepository
from storage.volunteer_repository import SqlVolunteerRepository

__all__ = ["Ambient", "SqlUnitOfWork", "Transactions", "ambient", "ambient_session", "uow_factory"]


# ---- lazy savepoints ------------------------------------------------------------------------------------------------


class _Savepoint:
    """A savepoint asked for; ``nested`` once it was emitted."""

    __slots__ = ("nested",)

    def __init__(self) -> None:
        self.nested: SessionTransaction | None = None


def _emit(session: Session) -> None:
    """Emit every savepoint asked for and not emitted yet, outermost first (the session is clean or flushing)."""
    for savepoint in session.info.get(SAVEPOINTS, ()):
        if savepoint.nested is None:
            savepoint.nested = session.begin_nested()


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _objects: Any) -> None:
    if savepoint_waiting(session):
        _emit(session)  # inside the flush: SQLAlchemy does not flush again for the new savepoints


@event.listens_for(Session, "do_orm_execute")
def _before_statement(state: ORMExecuteState) -> None:
    if state.is_select:
        return
    session = state.session
    if savepoint_waiting(session):
        if _dirty(session):
            session.flush()  # its before_flush emits them, so what is pending lands inside too
        _emit(session)


def _dirty(session: Session) -> bool:
    """Anything to flush: new, deleted or modified objects. Asked on entering and leaving every unit of work (four
    or more per update), so the session's own cheap test, not ``new``/``deleted``/``dirty``, which build sets of
    the objects (and ``dirty`` compares every modified attribute's history)."""
    return not session._is_clean()


async def _ask(session: AsyncSession) -> _Savepoint:
    """Ask for a savepoint; changes still pending belong to the enclosing work, so they are flushed first."""
    sync = session.sync_session
    if _dirty(sync):
        await session.flush()
    savepoint = _Savepoint()
    sync.info.setdefault(SAVEPOINTS, []).append(savepoint)
    return savepoint


async def _keep(session: AsyncSession, savepoint: _Savepoint) -> None:
    sync = session.sync_session
    try:
        if _dirty(sync):
            await session.flush()  # into this savepoint
        if savepoint.nested is not None and savepoint.nested.is_active:
            await greenlet_spawn(savepoint.nested.commit)
    finally:
        _forget(sync, savepoint)


async def _undo(session: AsyncSession, savepoint: _Savepoint) -> None:
    sync = session.sync_session
    try:
        if savepoint.nested is None and _dirty(sync):
            # What was not flushed yet must go too: into the savepoint, then rolled back with it (a failed flush
            # rolled it back already).
            with contextlib.suppress(Exception):
                await session.flush()
        if savepoint.nested is not None and savepoint.nested.is_active:
            await greenlet_spawn(savepoint.nested.rollback)
    finally:
        _forget(sync, savepoint)


def _forget(session: Session, savepoint: _Savepoint) -> None:
    asked = session.info.get(SAVEPOINTS)
    if asked and savepoint in asked:
        asked.remove(savepoint)


R = TypeVar("R")


class _Repository(Generic[R]):
    """A repository of the unit of work, made on first use: most units of work use one or two of the thirteen,
    and several are opened for every update."""

    def __init__(self, make: Callable[[AsyncSession], R]) -> None:
        self._make = make
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, uow: None, owner: type) -> _Repository[R]: ...

    @overload
    def __get__(self, uow: SqlUnitOfWork, owner: type) -> R: ...

    def __get__(self, uow: SqlUnitOfWork | None, owner: type) -> R | _Repository[R]:
        if uow is None:
            return self
        assert uow.session is not None, "a unit of work's repositories are used inside it"
        repository = uow.__dict__[self._name] = self._make(uow.session)  # later uses find it on the instance
        return repository


class SqlUnitOfWork:
    """``async with uow: ...; await uow.commit()`` — leaving without commit rolls back."""

    residents = _Repository(SqlResidentRepository)
    communities = _Repository(SqlCommunityRepository)
    groups = _Repository(SqlGroupChatRepository)
    audit = _Repository(SqlAuditRepository)
    points = _Repository(SqlPointsRepository)
    rewards = _Repository(SqlRewardRepository)
    reports = _Repository(SqlReportRepository)
    jobs = _Repository(SqlJobRepository)
    quiz = _Repository(SqlQuizRepository)
    inbox = _Repository(SqlInboxRepository)
    outbox = _Repository(SqlOutboxRepository)
    campaigns = _Repository(SqlCampaignRepository)
    volunteers = _Repository(SqlVolunteerRepository)
    dashboard = _Repository(SqlDashboardRepository)
    proposals = _Repository(SqlProposalRepository)
    surveys = _Repository(SqlSurveyRepository)

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.session: AsyncSession | None = None
        self._savepoint: _Savepoint | None = None
        self._joined = False

    def _bind(self, session: AsyncSession) -> None:
        made = self.__dict__
        for name in _REPOSITORIES:  # bound before (an instance used twice): forget the other session's
            made.pop(name, None)
        self.session = session

    async def __aenter__(self) -> Self:
        session = ambient_session()
        if session is not None:
            self._joined = True
            self._bind(session)
            self._savepoint = await _ask(session)
        else:
            self._bind(self._sessions())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        if self._joined:
            try:
                if self._savepoint is not None:
                    await _undo(self.session, self._savepoint)
            finally:
                self._savepoint, self.session = None, None
            return
        try:
            await self.session.rollback()
        finally:
            await self.session.close()
            self.session = None

    async def commit(self) -> None:
        assert self.session is not None
        if not self._joined:
            await self.session.commit()
            return
        # Inside an ambient transaction: keep the work (release the savepoint, if one was needed); the scope commits
        # it. Anything the service does after its commit belongs to the update's transaction directly.
        if self._savepoint is not None:
            savepoint, self._savepoint = self._savepoint, None
            await _keep(self.session, savepoint)

    async def rollback(self) -> None:
        assert self.session is not None
        if not self._joined:
            await self.session.rollback()
            return
        if self._savepoint is not None:
            savepoint, self._savepoint = self._savepoint, None
            await _undo(self.session, savepoint)
        self._savepoint = await _ask(self.session)


_REPOSITORIES = tuple(name for name, value in vars(SqlUnitOfWork).items() if isinstance(value, _Repository))


class ScopeUnitOfWork(SqlUnitOfWork):
    """The ambient transaction itself: its commit is the one that makes everything durable."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        current: Ambient,
        durable: Callable[[], Awaitable[None]] | None = None,
        *,
        alone: bool = False,
    ) -> None:
        super().__init__(sessions)
        self._current = current
        self._durable = durable  # in a batch (SQLite): waits until the batch's transaction has committed
        self._alone = alone  # first of its batch: its session only rolls back, committing it is a flush
        self.member: AsyncTransaction | None = None  # later in its batch: the savepoint its work is in
        self.committed = False

    async def commit(self) -> None:
        assert self.session is not None
        sync = self.session.sync_session
        if self._alone:
            if _dirty(sync):
                await self.session.flush()
        elif self.member is not None:
            # The session (if it began at all) joined the member's savepoint without owning it: commit it, which
            # flushes, then release the savepoint.
            if sync.in_transaction() or _dirty(sync):
                await self.session.commit()
            await self.member.commit()
        else:
            await self.session.commit()
        self.committed = True
        if self._durable is not None:
            await self._durable()
        callbacks, self._current.after_commit = self._current.after_commit, []
        for callback in callbacks:
            callback()

    async def rollback(self) -> None:
        assert self.session is not None
        await self.session.rollback()  # a batch member's session rolls back to the member's savepoint
        if self.member is not None:
            if self.member.is_active:
                await self.member.rollback()
            connection = self.member.connection
            self.member = await connection.begin_nested()  # what the scope does next is contained again
        self._current.after_commit.clear()


class _Batch:
    """One SQLite transaction shared by the scopes that took the writer lock while it was open (group commit)."""

    def __init__(self, connection: AsyncConnection, adapted: Any) -> None:
        self.connection = connection
        self.adapted = adapted  # its DB-API connection (storage/direct.py)
        self.members = 0
        self.committer: asyncio.Task[None] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if nobody waits


class Transactions:
    """Opens ambient transactions.

    On SQLite (one writer) they are serialised in-process — waiting on an asyncio lock costs nothing, where two
    connections fighting for SQLite's write lock sleep in its busy handler — and committed in groups: the scopes
    that queue for the lock while one runs share its transaction (``BEGIN IMMEDIATE`` once), each inside a
    savepoint of its own (the first needs none: it is alone in the transaction until it is done), and the group
    commits once the scopes queued before the commit have run. A scope's ``commit()`` returns only when the group's
    COMMIT is done, so whatever its caller does next (send the replies) happens after its effects are durable, as
    before; a scope that fails rolls back its own savepoint and nothing else (the first one, alone, the whole
    transaction). On PostgreSQL each scope is its own transaction.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, serialise: bool) -> None:
        self._sessions = sessions
        self._lock = asyncio.Lock() if serialise else None
        self._batch: _Batch | None = None

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[Any]:
        """``async with tx.scope() as uow: ...; await uow.commit()``; units of work opened inside join it."""
        if ambient_session() is not None:
            raise RuntimeError("an ambient transaction is already open in this task")
        if self._lock is not None:
            async with self._batched() as uow:
                yield uow
            return
        session = self._sessions()
        current = Ambient(session)
        token = enter_ambient(current)
        try:
            uow = ScopeUnitOfWork(self._sessions, current)
            uow._bind(session)
            yield uow
        finally:
            leave_ambient(token)
            try:
                await session.rollback()  # nothing if committed
            finally:
                await session.close()

    @asynccontextmanager
    async def _batched(self) -> AsyncIterator[ScopeUnitOfWork]:
        lock = self._lock
        assert lock is not None
        await lock.acquire()
        holding = True
        try:
            batch = self._batch
            if batch is None:
                batch = self._batch = await self._open()
            first = batch.members == 0
            batch.members += 1

            async def durable() -> None:  # the scope is done with the connection: let the next one in, then wait
                nonlocal holding
                if batch.committer is None:  # the first to finish queues the commit behind the scopes waiting now
                    batch.committer = asyncio.create_task(self._commit(batch))
                holding = False
                lock.release()
                await asyncio.shield(batch.done)

            # The first scope of a batch is alone in its transaction: no savepoint needed, a failure rolls back all.
            # Later ones work inside a savepoint begun on the connection now; their session joins it when (if) it
            # begins, and rolls back only to it — also when SQLAlchemy rolls back by itself (a failed flush).
            # Statements sent by the driver (storage/direct.py) run on the group's connection meanwhile, so an update
            # whose statements are all such never begins a session transaction at all.
            session = self._sessions(bind=batch.connection, join_transaction_mode="rollback_only")
            current = Ambient(session, connection=batch.adapted)
            token = enter_ambient(current)
            uow = ScopeUnitOfWork(self._sessions, current, durable, alone=first)
            try:
                if not first:
                    uow.member = await batch.connection.begin_nested()
                uow._bind(session)
                yield uow
            finally:
                leave_ambient(token)
                try:
                    if not uow.committed:
                        await self._abandon(batch, session, first, uow.member)
                finally:
                    if session.sync_session.in_transaction() or session.sync_session.identity_map:
                        await session.close()
        finally:
            if holding:
                lock.release()

    async def _open(self) -> _Batch:
        # pysqlite opens a transaction only before a write, and a SAVEPOINT outside one would commit on release:
        # begin explicitly (and take SQLite's write lock now; the in-process lock made us the writer).
        engine = self._sessions.kw["bind"]
        connection = await engine.connect()
        try:
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
            adapted = await run_inline(connection, True)  # we hold the write lock: statements cannot wait for it
        except BaseException:
            await connection.close()
            raise
        return _Batch(connection, adapted)

    async def _abandon(
        self, batch: _Batch, session: AsyncSession, first: bool, member: AsyncTransaction | None
    ) -> None:
        """A scope left without commit (or failed): undo its work, and only its work."""
        if not first:
            if session.sync_session.in_transaction():
                await session.rollback()  # to the member's savepoint (the session joined it, rollback only)
            if member is not None and member.is_active:
                await member.rollback()
            return
        # Alone in the transaction: roll all of it back and start the next scope afresh.
        self._batch = None
        try:
            await run_inline(batch.connection, False)
            await batch.connection.rollback()
        finally:
            await batch.connection.close()
            batch.done.set_result(None)

    async def _commit(self, batch: _Batch) -> None:
        """Commit a batch once the scopes queued before this call have had their turn."""
        assert self._lock is not None
        finishing: asyncio.Future[None] | None = None
        try:
            async with self._lock:
                self._batch = None  # scopes after this one open a new batch
                # Shielded: a shutdown cancelling this task must not cut a COMMIT in half (the scopes waiting for
                # it learn its outcome from the COMMIT itself).
                finishing = asyncio.ensure_future(self._finish(batch))
                await asyncio.shield(finishing)
        except asyncio.CancelledError:
            if finishing is None and not batch.done.done():  # cancelled before its turn: nothing became durable
                batch.done.set_exception(ConnectionError("stopped before the batch was committed"))
            raise

    @staticmethod
    async def _finish(batch: _Batch) -> None:
        try:
            await run_inline(batch.connection, False)
            await batch.connection.commit()
        except Exception as error:
            if not batch.done.done():
                batch.done.set_exception(error)
            with contextlib.suppress(Exception):
                await batch.connection.rollback()
        else:
            if not batch.done.done():
                batch.done.set_result(None)
        finally:
            with contextlib.suppress(Exception):
                await batch.connection.close()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Inside a scope: undo what the block did if it raises (a lazy savepoint: nothing is emitted unless the
        block writes). Outside one: nothing to undo."""
        current = ambient()
        if current is None:
            yield
            return
        callbacks = len(current.after_commit)
        savepoint = await _ask(current.session)
        try:
            yield
        except BaseException:
            del current.after_commit[callbacks:]  # caches must not learn what was just undone
            await _undo(current.session, savepoint)
            raise
        await _keep(current.session, savepoint)


def uow_factory(sessions: async_sessionmaker[AsyncSession]) -> Any:
    """A callable that makes a fresh unit of work for each use case."""
    return lambda: SqlUnitOfWork(sessions)
