"""Reports and jobs on SQLite and PostgreSQL: unique tickets under concurrency, durable jobs, history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.domain.geo import GeoPoint
from bot.domain.jobs import Job
from bot.domain.notices import Notice
from bot.domain.reports import Draft, Status
from bot.services.jobs import JobRunner
from storage.job_repository import SqlJobRepository
from storage.messaging_models import OutboxRow
from storage.uow import SqlUnitOfWork
from tests.support.reports import ReportWorld, report_world

PEOPLE = 12


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[ReportWorld]:
    built = await report_world(db_url, tmp_path / "media")
    yield built
    await built.aclose()


def draft(n: int = 0) -> Draft:
    return Draft("other", f"楼道里堆满了杂物，第 {n} 处", skip_reason="other", location=GeoPoint(31.23, 121.47))


async def test_ticket_numbers_are_unique_and_gapless_under_concurrency(world: ReportWorld) -> None:
    people = list(range(1, PEOPLE + 1))
    for telegram_id in people:
        await world.resident(telegram_id)
    outcomes = await asyncio.gather(*(world.services.reports.submit(t, draft(t)) for t in people))
    tickets = sorted(o.report.ticket for o in outcomes)
    assert tickets == [f"R-2026-{n:06d}" for n in range(1, PEOPLE + 1)]
    world.clock.advance(days=40)  # a new year starts its own sequence
    outcome = await world.services.reports.submit(1, draft())
    assert outcome.report.ticket == "R-2027-000001"


async def test_submit_records_history_timers_and_a_staff_notice(world: ReportWorld) -> None:
    await world.resident(1, "王小明")
    outcome = await world.services.reports.submit(1, draft())
    assert outcome.report.status is Status.SUBMITTED and outcome.report.deadline is not None
    assert [n.chat_id for n in outcome.notices] == [9000, 9001]  # no staff group: each holder privately
    async with SqlUnitOfWork(world.sessions) as uow:
        history = await uow.reports.history(outcome.report.id)
        pending = await SqlJobRepository(uow.session).pending()  # type: ignore[arg-type]
        queued = (await uow.session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()  # type: ignore[union-attr]
        # Queued with the report: no staff group, so no card to edit later (no ref).
        assert [(r.chat_id, r.payload["template"], r.ref) for r in queued] == [
            (9000, "reports/staff/new", None), (9001, "reports/staff/new", None)]  # fmt: skip
    assert [e.action for e in history] == ["submit"]
    assert sorted(j.kind for j in pending) == ["report.escalate", "report.remind"]


async def test_jobs_run_once_retry_on_failure_and_ignore_unknown_kinds(world: ReportWorld) -> None:
    runner, seen = JobRunner(_uow(world), world.clock, world.transactions), []

    async def ping(job: Job, now: object) -> list[Notice]:
        seen.append(job.payload["n"])
        if job.payload["n"] == 2 and job.attempts == 1:
            raise RuntimeError("flaky")
        return [Notice(1, "reports/cancelled")]

    runner.register("test.ping", ping)
    now = world.clock()
    for n in (1, 2):
        await runner.schedule("test.ping", now, {"n": n}, key=f"ping:{n}")
    assert not await runner.schedule("test.ping", now, {"n": 1}, key="ping:1")  # same key: once
    await runner.schedule("other.kind", now, {})
    assert await runner.run_due_jobs(now) == 1
    assert await runner.run_due_jobs(now) == 0  # the failed one waits for its back-off
    assert await runner.run_due_jobs(now + timedelta(minutes=2)) == 1
    assert seen == [1, 2, 2]
    async with SqlUnitOfWork(world.sessions) as uow:  # each finished job's notice, queued in its transaction
        rows = (await uow.session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all()  # type: ignore[union-attr]
        assert [(r.chat_id, r.payload["template"]) for r in rows] == [(1, "reports/cancelled")] * 2


@pytest.mark.postgres
async def test_concurrent_workers_never_claim_the_same_job(pg_database: str, tmp_path: Path) -> None:
    from tests.support.pg import truncate_all

    await truncate_all(pg_database)
    world = await report_world(pg_database, tmp_path / "media")
    try:
        ran: list[int] = []

        async def slow(job: Job, now: object) -> list[Notice]:
            ran.append(job.payload["n"])
            await asyncio.sleep(0.01)
            return []

        runners = [JobRunner(_uow(world), world.clock, world.transactions, batch=3) for _ in range(4)]
        for runner in runners:
            runner.register("test.slow", slow)
        for n in range(40):
            await runners[0].schedule("test.slow", world.clock(), {"n": n})

        async def drain(runner: JobRunner) -> None:
            while len(ran) < 40:
                await runner.run_due_jobs(world.clock())
                await asyncio.sleep(0.001)

        await asyncio.wait_for(asyncio.gather(*(drain(r) for r in runners)), timeout=20)
        assert sorted(ran) == list(range(40))
    finally:
        await world.aclose()


def _uow(world: ReportWorld):  # type: ignore[no-untyped-def]
    return lambda: SqlUnitOfWork(world.sessions)
