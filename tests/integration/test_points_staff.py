"""Staff look-ups of points on SQLite and PostgreSQL: residents by name, a service point's verifications today."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.domain.roles import Role
from storage.messaging_models import OutboxRow
from tests.support.points import ORGANISER, World, make_world

COUNTER, OTHER_COUNTER = 500, 501


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    world = await make_world(db_url)
    yield world
    await world.aclose()


async def _named(world: World, telegram_id: int, name: str, community: str = "demo") -> None:
    found = await world.communities.by_code(community)
    assert found is not None
    await world.residents.give_consent(telegram_id, name, "zh_Hans")
    await world.residents.join(telegram_id, found.id, found.buildings[0].id)


async def test_find_residents_by_name_only_in_own_community_with_building(world: World) -> None:
    await _named(world, 1, "李小明")
    await _named(world, 2, "老李")
    await _named(world, 3, "李大爷", community="other")
    await _named(world, 4, "Anna LEE")
    found = await world.points.find(ORGANISER, "李")
    assert sorted((c.telegram_id, c.name, c.building) for c in found) == [(1, "李小明", "1号楼"), (2, "老李", "1号楼")]
    assert [c.telegram_id for c in await world.points.find(ORGANISER, "lee")] == [4]


async def test_find_residents_treats_wildcards_as_text(world: World) -> None:
    await _named(world, 1, "王_阿姨")
    await _named(world, 2, "王大妈")
    assert [c.telegram_id for c in await world.points.find(ORGANISER, "_")] == [1]
    assert await world.points.find(ORGANISER, "%") == []


async def test_today_lists_only_this_counters_verifications_of_the_day(world: World) -> None:
    for counter in (COUNTER, OTHER_COUNTER):
        await world.resident(counter)
        await world.access.grant(counter, Role.SERVICE_POINT, "demo", ORGANISER)
    await world.resident(1)
    await world.fund(1, 100)
    reward = await world.reward(cost=10, stock=None)
    mine, theirs = [await world.redemptions.redeem(1, reward.id) for _ in range(2)]
    await world.redemptions.verify(COUNTER, mine.redemption.code)
    await world.redemptions.verify(OTHER_COUNTER, theirs.redemption.code)

    today = await world.redemptions.today(COUNTER)
    assert [t.redemption.code for t in today] == [mine.redemption.code]
    world.clock.advance(days=1)
    assert await world.redemptions.today(COUNTER) == []


async def test_verify_queues_one_notice_to_the_owner(world: World) -> None:
    await world.resident(COUNTER)
    await world.access.grant(COUNTER, Role.SERVICE_POINT, "demo", ORGANISER)
    await world.resident(1)
    await world.fund(1, 20)
    ticket = await world.redemptions.redeem(1, (await world.reward(cost=10, stock=3)).id)
    await world.redemptions.verify(COUNTER, ticket.redemption.code)
    async with world.sessions() as session:
        rows = (await session.scalars(select(OutboxRow).where(OutboxRow.chat_id == 1))).all()
    assert [(r.payload["template"], r.key) for r in rows] == [
        ("points/used_notice", f"redemption-used:{ticket.redemption.id}")
    ]
