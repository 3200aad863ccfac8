"""Real concurrent sessions: stock, balances and idempotency keys hold under races (PostgreSQL and SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence

import pytest

from bot.domain.errors import DomainError
from bot.domain.points import Reason
from bot.domain.roles import Role
from tests.support.pg import truncate_all
from tests.support.points import World, make_world


@pytest.fixture
async def pg_world(pg_database: str) -> AsyncIterator[World]:
    await truncate_all(pg_database)
    world = await make_world(pg_database, pool_size=20)
    yield world
    await world.aclose()


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    world = await make_world(db_url)
    yield world
    await world.aclose()


async def _outcomes(calls: Sequence[Awaitable[object]]) -> tuple[int, int]:
    """(successes, domain refusals); any other error fails the test (e.g. "database is locked")."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DomainError)]
    assert not unexpected, unexpected[:3]
    refused = sum(isinstance(r, DomainError) for r in results)
    return len(results) - refused, refused


async def _residents(world: World, count: int, points: int) -> list[int]:
    ids = list(range(1, count + 1))
    await world.many(ids, points)
    return ids


@pytest.mark.postgres
async def test_redeem_200_concurrent_for_stock_50_exactly_50_succeed(pg_world: World) -> None:
    residents = await _residents(pg_world, 200, 30)
    reward = await pg_world.reward(cost=30, stock=50)
    succeeded, refused = await _outcomes([pg_world.redemptions.redeem(r, reward.id) for r in residents])
    assert (succeeded, refused) == (50, 150)
    assert await pg_world.stock(reward.id) == 0
    assert await pg_world.points.check() == []


@pytest.mark.postgres
async def test_redeem_20_concurrent_by_one_resident_with_points_for_3_exactly_3_succeed(pg_world: World) -> None:
    await _residents(pg_world, 1, 30)
    reward = await pg_world.reward(cost=10, stock=None)
    succeeded, _ = await _outcomes([pg_world.redemptions.redeem(1, reward.id) for _ in range(20)])
    assert succeeded == 3
    assert (await pg_world.points.overview(1)).balance == 0
    assert await pg_world.points.check() == []


@pytest.mark.postgres
async def test_award_same_key_concurrently_credited_once(pg_world: World) -> None:
    resident = await pg_world.resident(1)
    calls = [pg_world.points.award(resident.id, Reason.REPORT_ACCEPTED, "report:42") for _ in range(10)]
    results = await asyncio.gather(*calls)
    assert sum(r.credited for r in results) == 5 and sum(r.duplicate for r in results) == 9
    assert (await pg_world.points.overview(1)).balance == 5


async def test_redeem_concurrent_on_both_backends_never_oversells_nor_locks(world: World) -> None:
    residents = await _residents(world, 30, 10)
    reward = await world.reward(cost=10, stock=12)
    succeeded, refused = await _outcomes([world.redemptions.redeem(r, reward.id) for r in residents])
    assert (succeeded, refused) == (12, 18)
    assert await world.stock(reward.id) == 0 and await world.points.check() == []


async def test_cancel_and_verify_race_exactly_one_wins(world: World) -> None:
    await _residents(world, 1, 10)
    await world.resident(500)
    await world.access.grant(500, Role.SERVICE_POINT, "demo", None)
    reward = await world.reward(cost=10, stock=1)
    tickets = [await world.redemptions.redeem(1, reward.id)]
    code, rid = tickets[0].redemption.code, tickets[0].redemption.id
    succeeded, refused = await _outcomes(
        [world.redemptions.verify(500, code), world.redemptions.cancel(1, rid), world.redemptions.verify(500, code)]
    )
    assert (succeeded, refused) == (1, 2)
    assert await world.points.check() == []
