"""Durable jobs in SQL. Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer anyway."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.jobs import Job
from storage.job_models import JobRow


class SqlJobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, kind: str, due_at: datetime, payload: dict[str, Any], key: str | None, now: datetime) -> bool:
        """Add a job; with a ``key`` already present nothing is added (False)."""
        dialect = postgresql if self._s.get_bind().dialect.name == "postgresql" else sqlite
        values = {"kind": kind, "key": key, "due_at": due_at, "payload": payload, "attempts": 0, "created_at": now}
        stmt = dialect.insert(JobRow).values(**values).on_conflict_do_nothing(index_elements=[JobRow.key])
        result = await self._s.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def claim(self, now: datetime, until: datetime, limit: int, kinds: Sequence[str]) -> list[Job]:
        """Lease due, unfinished jobs of ``kinds`` until ``until``; other workers skip rows locked meanwhile."""
        query = (
            select(JobRow)
            .where(
                JobRow.done_at.is_(None),
                JobRow.due_at <= now,
                JobRow.kind.in_(list(kinds)),
                or_(JobRow.locked_until.is_(None), JobRow.locked_until <= now),
            )
            .order_by(JobRow.due_at, JobRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list((await self._s.scalars(query)).all())
        for row in rows:
            row.locked_until, row.attempts = until, row.attempts + 1
        await self._s.flush()
        return [Job(r.id, r.kind, r.due_at, dict(r.payload), r.attempts) for r in rows]

    async def due(self, now: datetime, limit: int, kinds: Sequence[str]) -> list[int]:
        """Ids of due, unfinished jobs of ``kinds``, soonest first."""
        query = (
            select(JobRow.id)
            .where(JobRow.done_at.is_(None), JobRow.due_at <= now, JobRow.kind.in_(list(kinds)))
            .order_by(JobRow.due_at, JobRow.id)
            .limit(limit)
        )
        return list((await self._s.scalars(query)).all())

    async def take(self, job_id: int, now: datetime) -> Job | None:
        """Lock one due job for the running transaction and count the attempt (both undone if it rolls back).

        None when it is done already or another worker's transaction holds it (``SKIP LOCKED``).
        """
        query = (
            select(JobRow)
            .where(JobRow.id == job_id, JobRow.done_at.is_(None), JobRow.due_at <= now)
            .with_for_update(skip_locked=True)
        )
        row = (await self._s.scalars(query)).first()
        if row is None:
            return None
        row.attempts += 1
        await self._s.flush()
        return Job(row.id, row.kind, row.due_at, dict(row.payload), row.attempts)

    async def finish(self, job_id: int, at: datetime, error: str | None = None) -> None:
        await self._s.execute(
            update(JobRow).where(JobRow.id == job_id).values(done_at=at, locked_until=None, last_error=error)
        )

    async def retry(self, job_id: int, due_at: datetime, error: str) -> None:
        await self._s.execute(
            update(JobRow).where(JobRow.id == job_id).values(due_at=due_at, locked_until=None, last_error=error)
        )

    async def pending(self, kind: str | None = None) -> list[Job]:
        """Unfinished jobs, soonest first (for operators and tests)."""
        query = select(JobRow).where(JobRow.done_at.is_(None)).order_by(JobRow.due_at, JobRow.id)
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        return [Job(r.id, r.kind, r.due_at, dict(r.payload), r.attempts) for r in (await self._s.scalars(query)).all()]

    async def oldest_due(self, now: datetime) -> datetime | None:
        """When the longest-waiting job that is due and not done was due (None: nothing is due). ``bot.metrics``."""
        return await self._s.scalar(
            select(func.min(JobRow.due_at)).where(JobRow.done_at.is_(None), JobRow.due_at <= now)
        )
