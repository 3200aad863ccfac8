"""A grid worker's tasks and a moved deadline on SQLite and PostgreSQL: ``assigned_to`` lists only open reports
of that person, and /tasks puts the overdue ones first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.geo import GeoPoint
from bot.domain.reports import Draft, RejectReason
from storage.uow import SqlUnitOfWork
from tests.support.reports import ReportWorld, report_world

ORGANISER, WORKER, RESIDENT = 9000, 9001, 1


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[ReportWorld]:
    built = await report_world(db_url, tmp_path / "media")
    await built.resident(RESIDENT, "王小明")
    yield built
    await built.aclose()


def draft(n: int) -> Draft:
    return Draft("other", f"楼道里堆满了杂物，第 {n} 处", skip_reason="other", location=GeoPoint(31.23, 121.47))


async def test_tasks_are_my_open_reports_overdue_first(world: ReportWorld) -> None:
    desk = world.services.desk
    ids = []
    for n in range(4):
        ids.append((await world.services.reports.submit(RESIDENT, draft(n))).report.id)
        world.clock.advance(hours=1)
    for report_id in ids[:3]:
        await desk.accept(ORGANISER, report_id, (await desk.assignees(ORGANISER, report_id))[1][1].id)
    await desk.reject(ORGANISER, ids[2], RejectReason.INVALID)  # closed: not a task any more
    await desk.move_deadline(ORGANISER, ids[0], days=7)
    world.clock.advance(hours=50)  # ids[1] is past its deadline (48 h); ids[0] is not (7 days more)
    async with SqlUnitOfWork(world.sessions) as uow:
        worker = await uow.residents.get_by_telegram_id(WORKER)
        assert worker is not None
        assert [r.id for r in await uow.reports.assigned_to(worker.id)] == ids[:2]
    tasks = await desk.tasks(WORKER, "zh_Hans")
    assert [(t["id"], t["overdue"]) for t in tasks] == [(ids[1], True), (ids[0], False)]
    assert await desk.tasks(ORGANISER, "zh_Hans") == []
