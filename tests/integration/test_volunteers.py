"""Volunteer bookings on real databases: places under the shift's lock with real concurrent sessions (PostgreSQL),
the waitlist and its offers driven by durable timers on a fake clock, reminders, and points once per shift."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import timedelta

import pytest

from bot.domain.errors import DomainError
from bot.domain.volunteers import BookingStatus, HoursStatus, VolunteerError, checkin_code
from tests.support.pg import truncate_all
from tests.support.points import ORGANISER
from tests.support.volunteers import VWorld, make_vworld


@pytest.fixture
async def pg(pg_database: str) -> AsyncIterator[VWorld]:
    await truncate_all(pg_database)
    world = await make_vworld(pg_database, pool_size=30)
    yield world
    await world.aclose()


@pytest.fixture
async def vw(db_url: str) -> AsyncIterator[VWorld]:
    world = await make_vworld(db_url)
    yield world
    await world.aclose()


async def _gather(calls: Sequence[Awaitable[object]]) -> list[object]:
    """Results in call order; anything but a domain refusal fails the test (deadlock, "database is locked")."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DomainError)]
    assert not unexpected, unexpected[:3]
    return list(results)


@pytest.mark.postgres
async def test_book_100_concurrent_for_10_places_exactly_10_booked_rest_waitlisted_in_arrival_order(pg: VWorld) -> None:
    people = list(range(1, 101))
    await pg.volunteers_many(people)
    shift = await pg.shift(capacity=10)
    await _gather([pg.volunteers.book(p, shift.id) for p in people])
    bookings = await pg.bookings(shift.id)
    assert await pg.statuses(shift.id) == {BookingStatus.BOOKED: 10, BookingStatus.WAITING: 90}
    # Arrival order is the order the lock was granted: positions are 1..100 without gaps, and the ten booked are
    # exactly the first ten to get the lock.
    assert sorted(b.position for b in bookings) == list(range(1, 101))
    first_ten = {b.resident_id for b in bookings if b.position <= 10}
    assert first_ten == {b.resident_id for b in bookings if b.status is BookingStatus.BOOKED}


@pytest.mark.postgres
async def test_cancel_concurrently_with_new_bookings_promotes_exactly_one_per_freed_place(pg: VWorld) -> None:
    people = list(range(1, 41))
    await pg.volunteers_many(people)
    shift = await pg.shift(capacity=10)
    await _gather([pg.volunteers.book(p, shift.id) for p in people[:30]])
    booked = [b for b in await pg.bookings(shift.id) if b.status is BookingStatus.BOOKED]
    cancellers = {b.resident_id: b.id for b in booked[:3]}
    ids = await _telegram_ids(pg)
    calls = [pg.volunteers.cancel(ids[rid], bid) for rid, bid in cancellers.items()]
    calls += [pg.volunteers.book(p, shift.id) for p in people[30:]]
    await _gather(calls)
    counts = await pg.statuses(shift.id)
    assert counts[BookingStatus.BOOKED] == 7 and counts[BookingStatus.OFFERED] == 3
    assert counts[BookingStatus.CANCELLED] == 3 and counts[BookingStatus.WAITING] == 27
    offered = sorted(b.position for b in await pg.bookings(shift.id) if b.status is BookingStatus.OFFERED)
    assert offered == [11, 12, 13]  # the first three who were waiting, in arrival order
    assert await pg.outbox("volunteers/offer") == 3


async def _telegram_ids(world: VWorld) -> dict[int, int]:
    """Resident id → Telegram id."""
    from sqlalchemy import select

    from storage.models import ResidentRow
    from storage.uow import SqlUnitOfWork

    async with SqlUnitOfWork(world.world.sessions) as uow:
        assert uow.session is not None
        rows = (await uow.session.execute(select(ResidentRow.id, ResidentRow.telegram_id))).all()
    return {rid: int(tid) for rid, tid in rows}


async def test_offer_not_confirmed_in_time_goes_to_the_next_one(vw: VWorld) -> None:
    await vw.volunteers_many([1, 2, 3])
    shift = await vw.shift(capacity=1)
    first = await vw.volunteers.book(1, shift.id)
    second = await vw.volunteers.book(2, shift.id)
    third = await vw.volunteers.book(3, shift.id)
    assert (second.position, third.position) == (1, 2)
    await vw.volunteers.cancel(1, first.booking.id)
    assert await vw.outbox("volunteers/offer", 2) == 1
    vw.clock.advance(hours=1, minutes=59)
    await vw.run_jobs()
    assert (await vw.statuses(shift.id)).get(BookingStatus.OFFERED) == 1  # not yet
    vw.clock.advance(minutes=2)
    assert await vw.run_jobs() >= 1
    by_resident = {b.position: b.status for b in await vw.bookings(shift.id)}
    assert by_resident == {1: BookingStatus.CANCELLED, 2: BookingStatus.LAPSED, 3: BookingStatus.OFFERED}
    assert await vw.outbox("volunteers/offer_lapsed", 2) == 1 and await vw.outbox("volunteers/offer", 3) == 1
    with pytest.raises(VolunteerError) as late:
        await vw.volunteers.confirm(2, second.booking.id)
    assert late.value.code == "offer_gone"
    await vw.volunteers.confirm(3, third.booking.id)
    assert await vw.statuses(shift.id) == {
        BookingStatus.CANCELLED: 1, BookingStatus.LAPSED: 1, BookingStatus.BOOKED: 1,
    }  # fmt: skip


async def test_offer_near_the_start_gives_less_time_and_survives_a_restart(vw: VWorld, db_url: str) -> None:
    await vw.volunteers_many([1, 2, 3])
    shift = await vw.shift(capacity=1, in_hours=3, cutoff=0)
    first = await vw.volunteers.book(1, shift.id)
    await vw.volunteers.book(2, shift.id)
    await vw.volunteers.book(3, shift.id)
    vw.clock.advance(hours=2)  # an hour before the start
    await vw.volunteers.cancel(1, first.booking.id)
    offer = next(b for b in await vw.bookings(shift.id) if b.status is BookingStatus.OFFERED)
    assert offer.offered_until is not None and offer.offered_until - vw.clock() == timedelta(minutes=30)
    # The process stops; a new one on the same database runs the timer when it is due.
    now = vw.clock()
    await vw.aclose()
    other = await make_vworld(db_url, fresh=False)
    try:
        other.clock.now = now + timedelta(minutes=31)
        await other.run_jobs()
        assert {b.position: b.status for b in await other.bookings(shift.id)}[3] is BookingStatus.OFFERED
    finally:
        await other.aclose()


async def test_reminders_24h_and_2h_before_skip_quiet_hours_and_stop_after_cancel(vw: VWorld) -> None:
    # Shift at 2026-11-28 09:00 Shanghai (01:00 UTC): 24 h before is 09:00 the day before, 2 h before is 07:00 —
    # inside quiet hours (22:00–08:00), so it comes at 21:59 the evening before.
    await vw.volunteers_many([1, 2])
    vw.clock.now = vw.clock.now.replace(day=26, hour=1, minute=0)  # 09:00 on the 26th, Shanghai
    shift = await vw.shift(capacity=2, in_hours=48)
    mine = await vw.volunteers.book(1, shift.id)
    other = await vw.volunteers.book(2, shift.id)
    vw.clock.now = shift.starts_at - timedelta(hours=24)
    await vw.run_jobs()
    assert await vw.outbox("volunteers/reminder", 1) == 1
    await vw.volunteers.cancel(2, other.booking.id)
    vw.clock.now = shift.starts_at - timedelta(hours=11, minutes=1)  # 21:59 Shanghai the evening before
    await vw.run_jobs()
    assert await vw.outbox("volunteers/reminder", 1) == 2
    assert await vw.outbox("volunteers/reminder", 2) == 1  # only the 24 h one, before they cancelled
    vw.clock.now = shift.starts_at - timedelta(hours=2)
    await vw.run_jobs()
    assert await vw.outbox("volunteers/reminder", 1) == 2
    assert mine.booking.status is BookingStatus.BOOKED


async def test_moved_shift_reminds_at_new_times_only(vw: VWorld) -> None:
    await vw.volunteers_many([1])
    shift = await vw.shift(capacity=2, in_hours=72)
    await vw.volunteers.book(1, shift.id)
    new_start = shift.starts_at + timedelta(days=1)
    await vw.desk.move_shift(ORGANISER, shift.id, new_start, new_start + timedelta(hours=2))
    assert await vw.outbox("volunteers/changed_time", 1) == 1
    vw.clock.now = shift.starts_at - timedelta(hours=24)
    await vw.run_jobs()
    assert await vw.outbox("volunteers/reminder", 1) == 0  # the old time's timer finds the shift moved
    vw.clock.now = new_start - timedelta(hours=24)
    await vw.run_jobs()
    assert await vw.outbox("volunteers/reminder", 1) == 1


async def test_check_in_then_shift_end_then_approve_credits_points_once(vw: VWorld) -> None:
    await vw.volunteers_many([1, 2])
    shift = await vw.shift(capacity=2, in_hours=1, hours=2, cutoff=0)
    await vw.volunteers.book(1, shift.id)
    await vw.volunteers.book(2, shift.id)
    vw.clock.now = shift.starts_at + timedelta(minutes=30)
    wrong = await vw.volunteers.check_in(
        1, shift.id, code="0000" if checkin_code(shift.secret, shift.id, vw.clock()) != "0000" else "1111"
    )
    assert wrong.booking is None and wrong.problem is not None and wrong.problem.code == "code_wrong"
    done = await vw.volunteers.check_in(1, shift.id, code=checkin_code(shift.secret, shift.id, vw.clock()))
    assert done.booking is not None and done.booking.checked_in_at == vw.clock()
    vw.clock.now = shift.ends_at
    await vw.run_jobs()
    assert await vw.outbox("volunteers/desk/shift_over", ORGANISER) == 1
    approved = await vw.desk.approve_all(ORGANISER, shift.id)
    assert approved == (1, 90)  # 90 minutes: from the check-in (30 min late) to the end
    assert await vw.desk.approve_all(ORGANISER, shift.id) == (0, 0)
    assert (await vw.world.points.overview(1)).balance == 3  # 2 points an hour, 1.5 h
    assert (await vw.world.points.overview(2)).balance == 0  # never checked in
    hours = await vw.volunteers.hours(1)
    assert hours.record.minutes == 90 and hours.level == 0
    booking = next(b for b in await vw.bookings(shift.id) if b.status is BookingStatus.BOOKED and b.minutes)
    assert booking.hours is HoursStatus.APPROVED


async def test_certificate_is_registered_and_checkable(vw: VWorld) -> None:
    await vw.volunteers_many([1])
    shift = await vw.shift(capacity=1, in_hours=1, hours=2, cutoff=0)
    await vw.volunteers.book(1, shift.id)
    vw.clock.now = shift.starts_at
    await vw.volunteers.check_in(1, shift.id, code=checkin_code(shift.secret, shift.id, vw.clock()))
    vw.clock.now = shift.ends_at
    await vw.run_jobs()
    await vw.desk.approve_all(ORGANISER, shift.id)
    cert = await vw.volunteers.issue_certificate(1)
    assert cert.minutes == 120 and cert.name == "志愿者1" and cert.services == ("垃圾分类督导",)
    found = await vw.volunteers.check_certificate(cert.number.lower())
    assert found is not None and found.minutes == 120 and found.community == "示范社区"
    assert await vw.volunteers.check_certificate("ZYFW-2026-000001-XXXX") is None


async def test_volunteer_role_granted_by_an_administrator_books_without_registering(vw: VWorld) -> None:
    from bot.domain.roles import Role

    await vw.world.resident(77)
    await vw.world.access.grant(77, Role.VOLUNTEER, "demo", None)
    shift = await vw.shift(capacity=1)
    booked = await vw.volunteers.book(77, shift.id)
    assert booked.booking.status is BookingStatus.BOOKED
    standing = await vw.volunteers.standing(77)
    assert standing.profile is not None and standing.profile.status.value == "approved"


async def test_notice_to_volunteers_reaches_registered_and_granted_volunteers_only(vw: VWorld) -> None:
    from bot.domain.campaigns import Audience, AudienceKind
    from bot.domain.roles import Role
    from storage.uow import SqlUnitOfWork

    await vw.volunteer(71)  # registered through the bot
    await vw.world.resident(72)
    await vw.world.access.grant(72, Role.VOLUNTEER, "demo", None)  # granted by an administrator
    await vw.world.resident(73)  # a resident, not a volunteer
    assert vw.world.community is not None
    async with SqlUnitOfWork(vw.world.sessions) as uow:
        found = await uow.campaigns.recipients(vw.world.community.id, Audience(AudienceKind.ROLE, role=Role.VOLUNTEER))
    assert {r.chat_id for r in found} == {71, 72}


async def test_offer_made_at_night_gives_the_full_window_after_quiet_hours(vw: VWorld) -> None:
    await vw.volunteers_many([1, 2])
    vw.clock.now = vw.clock.now.replace(day=26, hour=16, minute=59)  # 00:59 on the 27th in Shanghai
    shift = await vw.shift(capacity=1, in_hours=30)
    first = await vw.volunteers.book(1, shift.id)
    await vw.volunteers.book(2, shift.id)
    await vw.volunteers.cancel(1, first.booking.id)
    offer = next(b for b in await vw.bookings(shift.id) if b.status is BookingStatus.OFFERED)
    # Quiet hours end at 08:00 Shanghai (00:00 UTC): two hours to answer from then, not from 00:59.
    assert offer.offered_until == vw.clock.now.replace(day=27, hour=2, minute=0)
