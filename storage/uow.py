"""The SQL unit of work: one session, one transaction, repositories sharing it."""

from __future__ import annotations

from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.job_repository import SqlJobRepository
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


class SqlUnitOfWork:
    """``async with uow: ...; await uow.commit()`` — leaving without commit rolls back."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self.session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        self.residents = SqlResidentRepository(self.session)
        self.communities = SqlCommunityRepository(self.session)
        self.groups = SqlGroupChatRepository(self.session)
        self.audit = SqlAuditRepository(self.session)
        self.points = SqlPointsRepository(self.session)
        self.rewards = SqlRewardRepository(self.session)
        self.reports = SqlReportRepository(self.session)
        self.jobs = SqlJobRepository(self.session)
        self.quiz = SqlQuizRepository(self.session)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.session is not None
        try:
            await self.session.rollback()
        finally:
            await self.session.close()
            self.session = None

    async def commit(self) -> None:
        assert self.session is not None
        await self.session.commit()

    async def rollback(self) -> None:
        assert self.session is not None
        await self.session.rollback()


def uow_factory(sessions: async_sessionmaker[AsyncSession]) -> Any:
    """A callable that makes a fresh unit of work for each use case."""
    return lambda: SqlUnitOfWork(sessions)
