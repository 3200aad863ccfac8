"""Redemptions on SQLite and PostgreSQL: reserve and debit together, verify once, cancel and expire with refunds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.domain.errors import NotFound
from bot.domain.points import InsufficientPoints
from bot.domain.rewards import (
    AlreadyVerified,
    CodeNotFound,
    LimitReached,
    OtherCommunity,
    OutOfStock,
    RedemptionClosed,
    RedemptionStatus,
)
from bot.domain.roles import Role
from tests.support.points import ORGANISER, SHANGHAI, World, make_world

SERVICE_POINT = 7000


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    world = await make_world(db_url)
    await world.resident(SERVICE_POINT)
    await world.access.grant(SERVICE_POINT, Role.SERVICE_POINT, "demo", ORGANISER)
    yield world
    await world.aclose()


async def test_redeem_debits_points_reserves_stock_and_gives_code(world: World) -> None:
    await world.resident(1)
    await world.fund(1, 50)
    reward = await world.reward(cost=30, stock=2)
    ticket = await world.redemptions.redeem(1, reward.id)
    assert ticket.balance == 20 and ticket.redemption.status is RedemptionStatus.RESERVED
    assert len(ticket.redemption.code) == 8 and await world.stock(reward.id) == 1
    assert (await world.points.overview(1)).balance == 20
    assert await world.points.check() == []


async def test_verify_twice_second_refused_with_time_of_first(world: World) -> None:
    await world.resident(1)
    await world.fund(1, 30)
    ticket = await world.redemptions.redeem(1, (await world.reward(cost=30, stock=5)).id)
    world.clock.advance(hours=2)
    verified = await world.redemptions.verify(SERVICE_POINT, ticket.redemption.code_shown.lower())
    assert verified.redemption.status is RedemptionStatus.FULFILLED
    world.clock.advance(hours=1)
    with pytest.raises(AlreadyVerified) as refused:
        await world.redemptions.verify(SERVICE_POINT, ticket.redemption.code)
    assert refused.value.context["at"] == (world.clock() - timedelta(hours=1)).astimezone(SHANGHAI)
    with pytest.raises(RedemptionClosed):
        await world.redemptions.cancel(1, ticket.redemption.id)


async def test_verify_code_of_other_community_refused(world: World) -> None:
    await world.resident(2, community="other")
    await world.access.grant(ORGANISER, Role.ORGANISER, "other", None)
    await world.fund(2, 30)
    reward = await world.reward(cost=30, stock=1, community="other")
    ticket = await world.redemptions.redeem(2, reward.id)
    with pytest.raises(OtherCommunity):
        await world.redemptions.verify(SERVICE_POINT, ticket.redemption.code)
    with pytest.raises(CodeNotFound):
        await world.redemptions.verify(SERVICE_POINT, "AAAA-AAAA")
    with pytest.raises(CodeNotFound):
        await world.redemptions.verify(SERVICE_POINT, "0O1I")


async def test_cancel_refunds_points_returns_stock_and_keeps_expiry(world: World) -> None:
    await world.resident(1)
    await world.fund(1, 40)
    reward = await world.reward(cost=30, stock=1)
    ticket = await world.redemptions.redeem(1, reward.id)
    cancelled = await world.redemptions.cancel(1, ticket.redemption.id)
    assert cancelled.redemption.status is RedemptionStatus.CANCELLED and cancelled.balance == 40
    assert await world.stock(reward.id) == 1
    with pytest.raises(RedemptionClosed):
        await world.redemptions.cancel(1, ticket.redemption.id)
    assert await world.points.check() == []


async def test_cancel_someone_elses_redemption_not_found(world: World) -> None:
    await world.resident(1)
    await world.resident(2)
    await world.fund(1, 30)
    ticket = await world.redemptions.redeem(1, (await world.reward(cost=30, stock=None)).id)
    with pytest.raises(NotFound):
        await world.redemptions.cancel(2, ticket.redemption.id)


async def test_expire_redemptions_refunds_after_valid_days(world: World) -> None:
    await world.resident(1)
    await world.fund(1, 30)
    reward = await world.reward(cost=30, stock=3)
    ticket = await world.redemptions.redeem(1, reward.id)
    # Valid through the whole seventh local day from today; expired once the eighth begins.
    last_day = (world.clock() + timedelta(days=7)).astimezone(ticket.tz).date()
    assert ticket.last_day == last_day
    assert await world.redemptions.expire_redemptions(world.clock() + timedelta(days=7)) == 0
    world.clock.advance(days=8)
    with pytest.raises(RedemptionClosed) as closed:
        await world.redemptions.verify(SERVICE_POINT, ticket.redemption.code)
    assert closed.value.context["status"] == "expired"
    assert await world.redemptions.expire_redemptions() == 1
    assert await world.redemptions.expire_redemptions() == 0
    assert (await world.points.overview(1)).balance == 30 and await world.stock(reward.id) == 3
    mine = await world.redemptions.mine(1)
    assert [t.redemption.status for t in mine] == [RedemptionStatus.EXPIRED]
    assert await world.points.check() == []


async def test_redeem_refused_without_points_stock_or_over_limit(world: World) -> None:
    await world.resident(1)
    await world.fund(1, 100)
    with pytest.raises(InsufficientPoints):
        await world.redemptions.redeem(1, (await world.reward(cost=101, stock=None)).id)
    sold_out = await world.reward(cost=1, stock=0)
    with pytest.raises(OutOfStock):
        await world.redemptions.redeem(1, sold_out.id)
    limited = await world.reward(cost=1, stock=None, limit=1)
    await world.redemptions.redeem(1, limited.id)
    with pytest.raises(LimitReached):
        await world.redemptions.redeem(1, limited.id)
    with pytest.raises(NotFound):
        await world.redemptions.redeem(1, (await world.reward(cost=1, stock=1, community="other")).id)
    assert (await world.points.overview(1)).balance == 99


async def test_code_taken_after_midnight_still_works_late_on_its_last_day(world: World) -> None:
    """Taken at 01:00 local time, a code used to lapse at 01:00 on its last day, while "我的兑换" named only the
    date: the resident who came that afternoon was told it had expired."""
    await world.resident(1)
    await world.fund(1, 30)
    reward = await world.reward(cost=30, stock=3)
    start = world.clock().astimezone(SHANGHAI)
    world.clock.advance(hours=(24 + 1 - start.hour) % 24)  # 01:00 local time
    ticket = await world.redemptions.redeem(1, reward.id)
    world.clock.advance(days=7, hours=21)  # 22:00 on the last day
    assert world.clock().astimezone(ticket.tz).date() == ticket.last_day
    assert await world.redemptions.expire_redemptions() == 0
    verified = await world.redemptions.verify(SERVICE_POINT, ticket.redemption.code)
    assert verified.redemption.status is RedemptionStatus.FULFILLED
