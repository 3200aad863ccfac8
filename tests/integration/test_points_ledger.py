"""The ledger on SQLite and PostgreSQL: awards under caps, idempotency, grants, expiry, rankings, checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.errors import Forbidden, InvalidInput
from bot.domain.points import CapKind, InsufficientPoints, Reason
from bot.domain.roles import Role
from bot.rendering import Renderer
from content import TEMPLATES
from content.points import check_points, load_policy
from storage.repositories import SqlAuditRepository
from tests.support.points import ORGANISER, World, make_world


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    world = await make_world(db_url)
    yield world
    await world.aclose()


async def test_award_quiz_eleventh_point_of_day_not_credited_and_says_why(world: World) -> None:
    resident = await world.resident(1)
    for n in range(10):
        result = await world.points.award(resident.id, Reason.QUIZ, f"q{n}")
        assert result.credited == 1
    result = await world.points.award(resident.id, Reason.QUIZ, "q10")
    assert (result.credited, result.capped_by, result.cap, result.balance) == (0, CapKind.DAILY, 10, 10)
    renderer = Renderer(TEMPLATES)
    assert "今日上限 10 分" in renderer.render("zh_Hans", "points/awarded", {"result": result})
    assert "daily cap of 10" in renderer.render("en", "points/awarded", {"result": result})
    assert await world.points.check() == []


async def test_award_next_local_day_credits_again(world: World) -> None:
    resident = await world.resident(1)
    await world.points.award(resident.id, Reason.QUIZ, "a", units=10)
    world.clock.advance(hours=14)  # 10:00 → 00:00 the next day in Shanghai
    result = await world.points.award(resident.id, Reason.QUIZ, "b")
    assert (result.credited, result.capped_by) == (1, None)


async def test_award_weekly_cap_credits_the_part_that_fits(world: World) -> None:
    resident = await world.resident(1)
    await world.points.award(resident.id, Reason.SURVEY, "s1")
    result = await world.points.award(resident.id, Reason.SURVEY, "s2", units=2)
    assert (result.requested, result.credited, result.capped_by, result.cap) == (10, 5, CapKind.WEEKLY, 10)


async def test_award_same_key_twice_credits_once(world: World) -> None:
    resident = await world.resident(1)
    first = await world.points.award(resident.id, Reason.REPORT_ACCEPTED, "report:7")
    again = await world.points.award(resident.id, Reason.REPORT_ACCEPTED, "report:7")
    assert (first.credited, again.credited, again.duplicate, again.balance) == (5, 0, True, 5)


async def test_award_reason_not_earned_is_refused(world: World) -> None:
    resident = await world.resident(1)
    with pytest.raises(ValueError, match="not an earning reason"):
        await world.points.award(resident.id, Reason.REFUND, "x")


async def test_grant_and_reverse_are_audited_and_never_go_negative(world: World) -> None:
    await world.resident(1)
    assert await world.points.grant(ORGANISER, 1, 20, "清理楼道", "g1") == 20
    assert await world.points.reverse(ORGANISER, 1, 5, "重复发放", "r1") == 15
    with pytest.raises(InsufficientPoints):
        await world.points.reverse(ORGANISER, 1, 16, "too much", "r2")
    async with world.sessions() as session:
        actions = [row.action for row in await SqlAuditRepository(session).recent()]
    assert actions[:2] == ["points.reversal", "points.manual_grant"]
    assert await world.points.check() == []


async def test_grant_by_non_organiser_or_other_community_is_forbidden(world: World) -> None:
    await world.resident(1)
    await world.resident(2, community="other")
    with pytest.raises(Forbidden):
        await world.points.grant(1, 1, 5, "self", "k1")
    with pytest.raises(Forbidden):
        await world.points.grant(ORGANISER, 2, 5, "elsewhere", "k2")
    with pytest.raises(InvalidInput):
        await world.points.grant(ORGANISER, 1, 0, "zero", "k3")


async def test_expire_points_takes_oldest_first_after_twelve_months(world: World) -> None:
    resident = await world.resident(1)
    await world.points.award(resident.id, Reason.REPORT_ACCEPTED, "old")  # 5 points, expire 2027-11-26
    world.clock.advance(days=200)
    await world.points.award(resident.id, Reason.REPORT_ACCEPTED, "new")  # 5 more, expire ~2028-06
    ticket_reward = await world.reward(cost=3, stock=None)
    await world.redemptions.redeem(1, ticket_reward.id)  # spends 3 of the old lot
    world.clock.advance(days=150)
    reminders = await world.points.expiring_reminders()
    assert reminders and reminders[0][:2] == (1, 2)
    assert await world.points.expire_points(world.clock() + timedelta(days=20)) == 2
    overview = await world.points.overview(1)
    assert overview.balance == 5 and overview.recent[0].reason is Reason.EXPIRY
    assert await world.points.expire_points(world.clock() + timedelta(days=20)) == 0
    assert await world.points.check() == []


async def test_rankings_hide_opted_out_residents_but_count_their_building(world: World) -> None:
    a, b = await world.resident(1, building="1"), await world.resident(2, building="2")
    await world.points.award(a.id, Reason.REPORT_ACCEPTED, "a1")
    await world.points.award(b.id, Reason.VOLUNTEER_HOURS, "b1", units=4)
    ranks = await world.points.rankings(1, "month")
    # Both names mask to 居**: told apart by their buildings, nothing more of either name shown.
    assert [(s.name, s.points, s.me) for s in ranks.residents] == [
        ("居** · 2号楼", 8, False),
        ("居** · 1号楼", 5, True),
    ]
    await world.points.set_hidden(2, True)
    ranks = await world.points.rankings(1, "all")
    assert [s.points for s in ranks.residents] == [5]
    assert [(s.name, s.points) for s in ranks.buildings] == [("2号楼", 8), ("1号楼", 5)]
    world.clock.advance(days=40)
    assert (await world.points.rankings(1, "month")).residents == []


async def test_import_rewards_demo_catalogue_adds_then_updates(world: World) -> None:
    demo = Path(__file__).parents[2] / "content" / "rewards" / "demo.yaml"
    first = await world.rewards.import_rewards(demo, "demo")
    again = await world.rewards.import_rewards(demo, "demo")
    assert (first.added, first.updated, again.added, again.updated) == (4, 0, 0, 4)
    await world.resident(1)
    names = [r.title("zh_Hans") for r in (await world.rewards.shelf(1)).rewards]
    assert names == ["停车券", "生活用品", "理发", "小家电维修"]
    with pytest.raises(InvalidInput):
        await world.rewards.import_rewards(demo, "other")


async def test_admin_edit_changes_cost_stock_and_active(world: World) -> None:
    reward = await world.rewards.add(ORGANISER, "洗衣液", "Detergent", 12, 3)
    assert (await world.rewards.edit(ORGANISER, reward.id, "restock", 2)).stock == 5
    assert (await world.rewards.edit(ORGANISER, reward.id, "cost", 8)).cost == 8
    assert not (await world.rewards.edit(ORGANISER, reward.id, "active", 0)).active
    await world.resident(1)
    await world.access.grant(1, Role.ORGANISER, "other", None)
    with pytest.raises(Forbidden):
        await world.rewards.edit(1, reward.id, "cost", 1)


def test_load_policy_real_rules_validate() -> None:
    policy = load_policy()
    assert policy.rule(Reason.QUIZ).daily_cap == 10 and policy.expiry_months == 12


def test_check_points_reports_invalid_catalogue(tmp_path: Path) -> None:
    root = Path(__file__).parents[2] / "content"
    (tmp_path / "points").mkdir()
    (tmp_path / "points" / "rules.yaml").write_text((root / "points" / "rules.yaml").read_text(encoding="utf-8"))
    (tmp_path / "rewards").mkdir()
    (tmp_path / "rewards" / "bad.yaml").write_text("rewards:\n  - {slug: x, name: {zh_Hans: 理发, en: Cut}, cost: 0}\n")
    assert check_points(root) == []
    errors = check_points(tmp_path)
    assert len(errors) == 1 and errors[0].startswith("rewards/bad.yaml") and "cost" in errors[0]
