"""The dashboard's proposals board and a proposal's accountability view (milestones, money planned and spent, the
vote), for the community's grid workers and organisers; another community's staff get a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.proposals import Draft, Rules
from bot.domain.roles import Role
from tests.support.dashboard import GRID_WORKER, ORGANISER, RESIDENT, VOLUNTEER, DashboardWorld, dashboard_world

DRAFT = Draft(
    "智慧充电桩安装", "在 5 号楼车棚安装 10 个智慧充电桩，解决电动车飞线充电的安全隐患。", 3_000_000, "civilised"
)
ELSEWHERE = 1000099  # a grid worker of another community


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[DashboardWorld]:
    async with dashboard_world(tmp_path, sqlite_template) as built:
        yield built


async def accepted(world: DashboardWorld) -> int:
    """A proposal supported, voted, accepted, with a milestone and two payments."""
    service = world.app.services.proposals
    await service.set_rules(ORGANISER, Rules(2, 30, 7))
    proposal = await service.submit(RESIDENT, DRAFT)
    await service.review(ORGANISER, proposal.id, accept=True)
    await service.support(RESIDENT, proposal.id)
    await service.support(VOLUNTEER, proposal.id)
    await service.vote(RESIDENT, proposal.id, "for")
    await service.vote(VOLUNTEER, proposal.id, "against")
    await service.vote(GRID_WORKER, proposal.id, "for")
    world.clock.advance(days=7, seconds=1)
    await world.app.run_due_jobs(world.clock())
    await service.decide(ORGANISER, proposal.id, accepted=True)
    await service.add_milestone(ORGANISER, proposal.id, "充电桩已到货，下周安装")
    await service.add_expense(ORGANISER, proposal.id, "18000 购买充电桩 10 个")
    await service.add_expense(ORGANISER, proposal.id, "2500.50 电缆和安装")
    return proposal.id


async def test_board_shows_each_state_and_the_money_to_a_grid_worker(world: DashboardWorld) -> None:
    proposal_id = await accepted(world)
    waiting = await world.app.services.proposals.submit(
        RESIDENT, Draft("楼道照明改造", "把 2 号楼楼道的灯换成声控节能灯。", 80_000, "sanitary")
    )
    client = await world.client(GRID_WORKER)
    page = await (await client.get("/dashboard/proposals")).text()
    assert "居民提案" in page and DRAFT.title in page and waiting.title in page
    assert "共 2 个提案，采纳 1 个；计划资金 30000 元，已支出 20500.50 元。" in page
    assert "已支出 20500.50 / 计划 30000" in page
    assert f'href="/dashboard/proposals/{proposal_id}"' in page
    assert 'href="/dashboard/proposals"' in page  # the nav link


async def test_accountability_view_shows_milestones_payments_and_votes(world: DashboardWorld) -> None:
    proposal_id = await accepted(world)
    client = await world.client(ORGANISER)
    page = await (await client.get(f"/dashboard/proposals/{proposal_id}")).text()
    assert "充电桩已到货，下周安装" in page
    assert "购买充电桩 10 个" in page and "18000" in page and "2500.50" in page
    assert "赞成 2 · 反对 1 · 弃权 0" in page
    assert "资金使用公示" in page and "投票截止" in page


async def test_staff_of_another_community_get_a_404(world: DashboardWorld) -> None:
    proposal_id = await accepted(world)
    services = world.app.services
    await services.communities.add("east", "东苑社区", [("1", "1号楼")])
    await services.access.grant(ELSEWHERE, Role.GRID_WORKER, "east", None)
    client = await world.client(ELSEWHERE)
    response = await client.get(f"/dashboard/proposals/{proposal_id}")
    assert response.status == 404
    board = await (await client.get("/dashboard/proposals")).text()
    assert DRAFT.title not in board
    assert (await client.get("/dashboard/proposals/abc")).status == 404
