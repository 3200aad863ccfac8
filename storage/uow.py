"""The SQL unit of work: one session, one transaction, repositories sharing it.

An *ambient* transaction (``Transactions.scope``) makes several units of work one: the inbox worker opens one
around the handling of an update (and the job runner around a due job), and every unit of work a service opens
inside it — in the same asyncio task — joins it as a SAVEPOINT. A service's ``commit`` then releases its savepoint;
only the scope's commit makes the effects durable, together with the dialog state, the update marked done and the
messages queued in the outbox. Leaving a service's unit of work without commit rolls back just its savepoint.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction, async_sessionmaker

from storage.campaign_repository import SqlCampaignRepository
from storage.job_repository import SqlJobRepository
from storage.messaging_repository import SqlInboxRepository, SqlOutboxRepository
from storage.points_repository import SqlPointsRepository
from storage.quiz_repository import SqlQuizRepository
from storage.report_repository import SqlReportRepository
from storage.repositories import (
    SqlAuditRepository,
    SqlCommunityRepository,
    SqlGroupChatRepository,
    SqlResidentRepository,
)
from storage.rewards_repository import SqlRewardRepository
from storage.volunteer_repository import SqlVolunteerRepository


@dataclass
class Ambient:
    """The open ambient transaction: its session, and what to do once it commits (e.g. refresh a cache)."""

    session: AsyncSession
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    overlay: dict[Any, Any] = field(default_factory=dict)  # caches' view of this transaction's own writes


_AMBIENT: contextvars.ContextVar[Ambient | None] = contextvars.ContextVar("sicheng_ambient_tx", default=None)


def ambient() -> Ambient | None:
    """The ambient transaction of this task, if one is open."""
    return _AMBIENT.get()


def ambient_session() -> AsyncSession | None:
    """The session of the ambient transaction of this task, if one is open."""
    current = _AMBIENT.get()
    return current.session if current else None


class SqlUnitOfWork:
    """``async with uow: ...; await uow.commit()`` — leaving without commit rolls back."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.session: AsyncSession | None = None
        self._nested: AsyncSessionTransaction | None = None
        self._joined = False

    def _bind(self, session: AsyncSession) -> None:
        self.session = session
        self.residents = SqlResidentRepository(session)
        self.communities = SqlCommunityRepository(session)
        self.groups = SqlGroupChatRepository(session)
        self.audit = SqlAuditRepository(session)
        self.points = SqlPointsRepository(session)
        self.rewards = SqlRewardRepository(session)
        self.reports = SqlReportRepository(session)
        self.jobs = SqlJobRepository(session)
        self.quiz = SqlQuizRepository(session)
        self.inbox = SqlInboxRepository(session)
        self.outbox = SqlOutboxRepository(session)
        self.campaigns = SqlCampaignRepository(session)
        self.volunteers = SqlVolunteerRepository(session)

    async def __aenter__(self) -> Self:
        ambient = ambient_session()
        if ambient is not None:
            self._joined = True
            self._bind(ambient)
            self._nested = await ambient.begin_nested()
        else:
            self._bind(self._sessions())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        if self._joined:
            if self._nested is not None and self._nested.is_active:
                await self._nested.rollback()
            self._nested, self.session = None, None
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
        # Inside an ambient transaction: keep the work (release the savepoint); the scope commits it. Anything the
        # service does after its commit belongs to the update's transaction directly (no new savepoint: services
        # commit last, and two statements per unit of work are measurable on the hot path).
        if self._nested is not None and self._nested.is_active:
            await self._nested.commit()
        self._nested = None

    async def rollback(self) -> None:
        assert self.session is not None
        if not self._joined:
            await self.session.rollback()
            return
        if self._nested is not None and self._nested.is_active:
            await self._nested.rollback()
        self._nested = await self.session.begin_nested()


class ScopeUnitOfWork(SqlUnitOfWork):
    """The ambient transaction itself: its commit is the one that makes everything durable."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], current: Ambient) -> None:
        super().__init__(sessions)
        self._current = current

    async def commit(self) -> None:
        assert self.session is not None
        await self.session.commit()
        callbacks, self._current.after_commit = self._current.after_commit, []
        self._current.overlay.clear()
        for callback in callbacks:
            callback()

    async def rollback(self) -> None:
        assert self.session is not None
        await self.session.rollback()
        self._current.after_commit.clear()
        self._current.overlay.clear()


class Transactions:
    """Opens ambient transactions. On SQLite (one writer) they are serialised in-process: waiting on an asyncio
    lock costs nothing, where two connections fighting for SQLite's write lock sleep in its busy handler."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, serialise: bool) -> None:
        self._sessions = sessions
        self._lock = asyncio.Lock() if serialise else None

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[Any]:
        """``async with tx.scope() as uow: ...; await uow.commit()``; units of work opened inside join it."""
        if ambient_session() is not None:
            raise RuntimeError("an ambient transaction is already open in this task")
        if self._lock is not None:
            await self._lock.acquire()
        session = self._sessions()
        current = Ambient(session)
        token = _AMBIENT.set(current)
        try:
            if self._lock is not None:
                # pysqlite opens a transaction only before a write, and a SAVEPOINT outside one would commit on
                # release: begin explicitly (and take the write lock now; the in-process lock made us the writer).
                await session.execute(text("BEGIN IMMEDIATE"))
            uow = ScopeUnitOfWork(self._sessions, current)
            uow._bind(session)
            yield uow
        finally:
            _AMBIENT.reset(token)
            try:
                await session.rollback()  # nothing if committed
            finally:
                await session.close()
                if self._lock is not None:
                    self._lock.release()

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Inside a scope: undo what the block did if it raises. Outside one: nothing to undo."""
        current = ambient()
        if current is None:
            yield
            return
        callbacks, overlay = len(current.after_commit), dict(current.overlay)
        try:
            async with current.session.begin_nested():
                yield
        except BaseException:
            # Caches must not learn what was just undone.
            del current.after_commit[callbacks:]
            current.overlay.clear()
            current.overlay.update(overlay)
            raise


def uow_factory(sessions: async_sessionmaker[AsyncSession]) -> Any:
    """A callable that makes a fresh unit of work for each use case."""
    return lambda: SqlUnitOfWork(sessions)
