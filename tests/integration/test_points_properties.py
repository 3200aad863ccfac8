"""Property-based: any mix of awards, redemptions, cancellations, verifications and expiries keeps the books."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.errors import DomainError
from bot.domain.points import Reason
from bot.domain.roles import Role
from tests.support.points import ORGANISER, World, make_world

SERVICE_POINT = 7000
RESIDENTS = (1, 2, 3)
REASONS = (Reason.QUIZ, Reason.SURVEY, Reason.REPORT_ACCEPTED, Reason.VOLUNTEER_HOURS)
STOCK = (3, None)

person = st.sampled_from(RESIDENTS)
step = st.one_of(
    st.tuples(st.just("award"), person, st.integers(0, 3), st.integers(1, 4)),
    st.tuples(st.just("redeem"), person, st.integers(0, 1), st.just(0)),
    st.tuples(st.just("cancel"), person, st.integers(0, 5), st.just(0)),
    st.tuples(st.just("verify"), person, st.integers(0, 5), st.just(0)),
    st.tuples(st.just("reverse"), person, st.integers(1, 15), st.just(0)),
    st.tuples(st.just("advance"), person, st.integers(1, 200), st.just(0)),
    st.tuples(st.just("expire"), person, st.just(0), st.just(0)),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_service_any_sequence_keeps_balance_equal_entries_and_stock_not_negative(
    sqlite_template: Path, steps: list[tuple[str, int, int, int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "points.db"
        shutil.copy(sqlite_template, path)
        asyncio.run(_run(f"sqlite+aiosqlite:///{path}", steps))


async def _run(url: str, steps: list[tuple[str, int, int, int]]) -> None:
    world = await make_world(url)
    try:
        rewards = await _setup(world)
        tickets: dict[int, list[int]] = {r: [] for r in RESIDENTS}
        codes: list[str] = []
        for kind, who, a, b in steps:
            # Refusals (no points, no stock, already closed) are fine; the books must balance regardless.
            with contextlib.suppress(DomainError):
                await _apply(world, kind, who, a, b, rewards, tickets, codes)
        await _assert_books(world, rewards)
    finally:
        await world.aclose()


async def _setup(world: World) -> list[int]:
    await world.resident(SERVICE_POINT)
    await world.access.grant(SERVICE_POINT, Role.SERVICE_POINT, "demo", ORGANISER)
    await world.many(list(RESIDENTS), 20)
    return [(await world.reward(cost=15, stock=stock, limit=2)).id for stock in STOCK]


async def _apply(
    world: World,
    kind: str,
    who: int,
    a: int,
    b: int,
    rewards: list[int],
    tickets: dict[int, list[int]],
    codes: list[str],
) -> None:
    if kind == "award":
        resident = await world.residents.profile(who)
        assert resident is not None
        await world.points.award(resident.id, REASONS[a], f"{kind}:{len(codes)}:{world.clock().isoformat()}", units=b)
    elif kind == "redeem":
        ticket = await world.redemptions.redeem(who, rewards[a])
        tickets[who].append(ticket.redemption.id)
        codes.append(ticket.redemption.code)
    elif kind == "cancel" and tickets[who]:
        await world.redemptions.cancel(who, tickets[who][a % len(tickets[who])])
    elif kind == "verify" and codes:
        await world.redemptions.verify(SERVICE_POINT, codes[a % len(codes)])
    elif kind == "reverse":
        await world.points.reverse(ORGANISER, who, a, "纠错", f"rev:{world.clock().isoformat()}:{who}")
    elif kind == "advance":
        world.clock.advance(days=a)
    elif kind == "expire":
        await world.points.expire_points()
        await world.redemptions.expire_redemptions()


async def _assert_books(world: World, rewards: list[int]) -> None:
    assert await world.points.check() == []
    for resident in RESIDENTS:
        assert (await world.points.overview(resident)).balance >= 0
    held = 0
    for resident in RESIDENTS:
        for ticket in await world.redemptions.mine(resident):
            held += ticket.reward.id == rewards[0] and ticket.redemption.status.value in ("reserved", "fulfilled")
    stock = await world.stock(rewards[0])
    assert stock is not None and stock >= 0 and stock + held == STOCK[0]
