"""Durable jobs: any feature registers a handler per kind; the bot process runs what is due.

Jobs are rows (see ``JobRepository``) so timers survive restarts. A run claims due jobs for a lease (on
PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so several workers never take the same job), runs each handler, and
marks it done. A worker that dies mid-run leaves the lease to expire and the job is run again: handlers re-check
the state they act on, so a second run changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain.jobs import MAX_ATTEMPTS, Job, retry_delay
from bot.services.ports import Clock, UnitOfWorkFactory

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
BATCH = 50


@dataclass(frozen=True)
class Choice:
    """A button a notice offers: a label key and a handler action (``<namespace>.<action>``) with arguments."""

    label: str
    action: str
    args: tuple[int | str, ...] = ()
    label_context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    """A message to someone other than the sender (or to a group), in their language; handlers render it."""

    chat_id: int
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    locale: str = "zh_Hans"
    photo: str | None = None
    choices: tuple[tuple[Choice, ...], ...] = ()


JobHandler = Callable[[Job, datetime], Awaitable[list[Notice]]]


class JobRunner:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, batch: int = BATCH) -> None:
        self._uow = uow
        self._clock = clock
        self._batch = batch
        self._handlers: dict[str, JobHandler] = {}

    def register(self, kind: str, handler: JobHandler) -> None:
        """Let ``handler`` run jobs of ``kind`` (one handler per kind)."""
        if kind in self._handlers:
            raise ValueError(f"job kind registered twice: {kind}")
        self._handlers[kind] = handler

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def schedule(self, kind: str, due_at: datetime, payload: dict[str, Any], key: str | None = None) -> bool:
        """Add a job in its own transaction (features inside a use case add through ``uow.jobs``)."""
        async with self._uow() as uow:
            added = await uow.jobs.add(kind, due_at, payload, key, self._clock())
            await uow.commit()
        return added

    async def run_due_jobs(self, now: datetime) -> list[Notice]:
        """Run every job due at ``now``; returns the messages the handlers want sent."""
        async with self._uow() as uow:
            jobs = await uow.jobs.claim(now, now + LEASE, self._batch, sorted(self._handlers))
            await uow.commit()
        notices: list[Notice] = []
        for job in jobs:
            notices += await self._run(job, now)
        return notices

    async def _run(self, job: Job, now: datetime) -> list[Notice]:
        try:
            notices = await self._handlers[job.kind](job, now)
        except Exception as error:
            log.exception("job %s (%s) failed, attempt %s", job.id, job.kind, job.attempts)
            await self._failed(job, now, f"{type(error).__name__}: {error}"[:300])
            return []
        async with self._uow() as uow:
            await uow.jobs.finish(job.id, now)
            await uow.commit()
        return notices

    async def _failed(self, job: Job, now: datetime, error: str) -> None:
        async with self._uow() as uow:
            if job.attempts >= MAX_ATTEMPTS:
                await uow.jobs.finish(job.id, now, error)
            else:
                await uow.jobs.retry(job.id, now + retry_delay(job.attempts), error)
            await uow.commit()
