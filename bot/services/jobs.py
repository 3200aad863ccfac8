"""Durable jobs: any feature registers a handler per kind; the bot process runs what is due.

Jobs are rows (see ``JobRepository``) so timers survive restarts. Each due job runs in one ambient transaction:
the job is taken (locked on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so several workers never run the same
job), its handler's changes are made, the messages it wants sent are queued in the outbox, and the job is marked
done — all in one commit. A process killed midway leaves nothing half done: the job is simply due again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot.domain.jobs import MAX_ATTEMPTS, Job, retry_delay
from bot.domain.notices import Choice, Notice
from bot.services.outbox import queue_all
from bot.services.ports import Clock, Transactions, UnitOfWorkFactory

__all__ = ["BATCH", "Choice", "JobHandler", "JobRunner", "Notice"]

log = logging.getLogger(__name__)

BATCH = 50

JobHandler = Callable[[Job, datetime], Awaitable[list[Notice]]]


class JobRunner:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, transactions: Transactions, batch: int = BATCH) -> None:
        self._uow = uow
        self._clock = clock
        self._tx = transactions
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

    async def run_due_jobs(self, now: datetime) -> int:
        """Run every job due at ``now``; their messages go to the outbox. Returns how many jobs finished."""
        async with self._uow() as uow:
            due = await uow.jobs.due(now, self._batch, sorted(self._handlers))
        done = 0
        for job_id in due:
            done += await self._run(job_id, now)
        return done

    async def _run(self, job_id: int, now: datetime) -> int:
        async with self._tx.scope() as uow:
            job = await uow.jobs.take(job_id, now)
            if job is None:  # done meanwhile, or another worker holds it
                return 0
            try:
                async with self._tx.savepoint():
                    notices = await self._handlers[job.kind](job, now)
                    await queue_all(uow, notices, now)
            except Exception as error:
                log.exception("job %s (%s) failed, attempt %s", job.id, job.kind, job.attempts)
                reason = f"{type(error).__name__}: {error}"[:300]
                if job.attempts >= MAX_ATTEMPTS:
                    await uow.jobs.finish(job.id, now, reason)
                else:
                    await uow.jobs.retry(job.id, now + retry_delay(job.attempts), reason)
                await uow.commit()
                return 0
            await uow.jobs.finish(job.id, now)
            await uow.commit()
        return 1
