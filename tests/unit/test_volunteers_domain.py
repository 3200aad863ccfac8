"""The pure volunteer rules: one shift driven through any interleaving of bookings, cancellations, offers and the
clock (as the service applies them under the shift's row lock), then each rule on its own."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bot.domain.volunteers import (
    ACTIVE,
    CODE_DIGITS,
    HOLDS_PLACE,
    HORIZON,
    OFFER_MIN,
    OFFER_WINDOW,
    Booking,
    BookingStatus,
    Outcome,
    Profile,
    ProfileStatus,
    Record,
    ServiceLine,
    Shift,
    ShiftDraft,
    ShiftStatus,
    Stars,
    VolunteerError,
    can_cancel,
    checkin_code,
    code_matches,
    decide_booking,
    next_in_line,
    offer_until,
    points_for,
    reminder_times,
    served_minutes,
    waitlist_position,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHANGHAI_OFFSET = 480  # minutes east of UTC
QUIET = (22 * 60, 8 * 60)  # 22:00–08:00 local
T0 = datetime(2026, 5, 16, 1, 0, tzinfo=UTC)  # Saturday 09:00 in Shanghai
HOUR = timedelta(hours=1)
SHIFT_ID = 7
OFFERED = frozenset({BookingStatus.OFFERED})
BOOKED = frozenset({BookingStatus.BOOKED})
WAITING = frozenset({BookingStatus.WAITING})
SECRET = "fixed-secret-for-tests"


def profile(resident_id: int, status: ProfileStatus = ProfileStatus.APPROVED) -> Profile:
    return Profile(resident_id=resident_id, community_id=1, status=status)


def shift_at(
    starts_at: datetime,
    hours: float = 2,
    *,
    capacity: int = 3,
    shift_id: int = SHIFT_ID,
    cutoff_hours: int = 12,
    status: ShiftStatus = ShiftStatus.OPEN,
) -> Shift:
    return Shift(
        id=shift_id,
        activity_id=1,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=hours),
        capacity=capacity,
        cutoff_hours=cutoff_hours,
        status=status,
        secret=SECRET,
    )


def booking(
    booking_id: int, resident_id: int, status: BookingStatus = BookingStatus.BOOKED, shift_id: int = SHIFT_ID
) -> Booking:
    return Booking(booking_id, shift_id, resident_id, status, position=booking_id, created_at=T0)


# ---- one shift through any interleaving ---------------------------------------------------------------------------

residents = st.integers(1, 15)
picks = st.integers(0, 14)  # which of the residents holding a booking in the given state acts


class OneShift(RuleBasedStateMachine):
    """The bookings of one shift as the service keeps them: every operation reads them, asks the domain and writes
    the result back, one operation at a time (the row lock)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.shift = shift_at(T0 + 24 * HOUR)
        self.bookings: list[Booking] = []

    @initialize(
        capacity=st.integers(1, 5),
        lead_minutes=st.sampled_from((20, 45, 100, 200, 400, 800, 1200)),
        cutoff_hours=st.sampled_from((0, 1, 3, 12)),
    )
    def open_shift(self, capacity: int, lead_minutes: int, cutoff_hours: int) -> None:
        self.shift = shift_at(T0 + timedelta(minutes=lead_minutes), capacity=capacity, cutoff_hours=cutoff_hours)

    # -- reading the rows

    def mine(self, resident_id: int) -> tuple[int, Booking] | None:
        return next(
            ((i, b) for i, b in enumerate(self.bookings) if b.resident_id == resident_id and b.status in ACTIVE),
            None,
        )

    def any(self, statuses: frozenset[BookingStatus]) -> bool:
        return any(b.status in statuses for b in self.bookings)

    def someone(self, pick: int, statuses: frozenset[BookingStatus]) -> int | None:
        """The resident whose booking is the ``pick``-th (cyclically) of those in ``statuses``, if any."""
        rows = [b for b in self.bookings if b.status in statuses]
        return rows[pick % len(rows)].resident_id if rows else None

    def held(self) -> int:
        return sum(1 for b in self.bookings if b.status in HOLDS_PLACE)

    def queue(self) -> list[Booking]:
        return sorted((b for b in self.bookings if b.status is BookingStatus.WAITING), key=lambda b: b.position)

    def write(self, index: int, **changes: object) -> None:
        self.bookings[index] = replace(self.bookings[index], **changes)  # type: ignore[arg-type]

    def promote(self) -> None:
        """A place may have been freed: offer it to the next in line."""
        queue = self.queue()
        chosen = next_in_line(self.shift, tuple(self.bookings), self.now)
        if chosen is None:
            return
        assert chosen.id == queue[0].id, "the earliest waiting volunteer is offered the place"
        until = offer_until(self.shift, self.now)
        assert self.now < until <= self.shift.starts_at
        assert until - self.now <= OFFER_WINDOW
        if self.shift.starts_at - self.now >= OFFER_MIN:
            assert until - self.now >= OFFER_MIN
        self.write(self.bookings.index(chosen), status=BookingStatus.OFFERED, offered_until=until)

    # -- operations

    def expected_refusal(self, resident_id: int, waitlist: bool) -> str | None:
        if self.now >= self.shift.starts_at:
            return "started"
        if self.now >= self.shift.cutoff:
            return "past_cutoff"
        found = self.mine(resident_id)
        if found is not None:
            return "already_waiting" if found[1].status is BookingStatus.WAITING else "already_booked"
        if not waitlist and (self.held() >= self.shift.capacity or self.queue()):
            return "full"
        return None

    @precondition(lambda self: self.now < self.shift.cutoff)
    @rule()
    def book_newcomer(self) -> None:
        """Someone without an active booking books (and joins the waitlist when full)."""
        busy = {b.resident_id for b in self.bookings if b.status in ACTIVE}
        newcomer = next((r for r in range(1, 16) if r not in busy), None)
        if newcomer is not None:
            self.book(newcomer, waitlist=True)

    @rule(resident_id=residents, waitlist=st.booleans())
    def book(self, resident_id: int, waitlist: bool) -> None:
        expected = self.expected_refusal(resident_id, waitlist)
        queue_before = self.queue()
        free_before = self.held() < self.shift.capacity
        if expected is not None:
            with pytest.raises(VolunteerError) as refused:
                decide_booking(
                    self.shift, tuple(self.bookings), resident_id, profile(resident_id), (), self.now, waitlist=waitlist
                )
            assert refused.value.code == expected
            return
        decision = decide_booking(
            self.shift, tuple(self.bookings), resident_id, profile(resident_id), (), self.now, waitlist=waitlist
        )
        if free_before and not queue_before:
            assert decision.outcome is Outcome.BOOKED, "a free place with nobody waiting is given at once"
        else:
            assert decision.outcome is Outcome.WAITING, "nobody jumps the waitlist or takes a held place"
        position = max((b.position for b in self.bookings), default=0) + 1
        status = BookingStatus.BOOKED if decision.outcome is Outcome.BOOKED else BookingStatus.WAITING
        new = Booking(len(self.bookings) + 1, SHIFT_ID, resident_id, status, position, created_at=self.now)
        self.bookings.append(new)
        if status is BookingStatus.WAITING:
            assert decision.position == waitlist_position(self.bookings, new.id) == len(queue_before) + 1

    @precondition(lambda self: self.any(HOLDS_PLACE))
    @rule(pick=picks)
    def cancel_place(self, pick: int) -> None:
        self.cancel(self.someone(pick, HOLDS_PLACE))

    @precondition(lambda self: self.any(WAITING))
    @rule(pick=picks)
    def leave_waitlist(self, pick: int) -> None:
        self.cancel(self.someone(pick, WAITING))

    def cancel(self, resident_id: int | None) -> None:
        found = None if resident_id is None else self.mine(resident_id)
        if found is None:
            return
        index, mine = found
        allowed = self.now < self.shift.starts_at and (
            mine.status is not BookingStatus.BOOKED or self.now < self.shift.cutoff
        )
        assert can_cancel(self.shift, mine, self.now) == allowed
        if allowed:
            self.write(index, status=BookingStatus.CANCELLED)
            self.promote()

    @precondition(lambda self: self.shift.cutoff <= self.now < self.shift.starts_at and self.any(BOOKED))
    @rule(pick=picks)
    def cannot_come(self, pick: int) -> None:
        """After the cut-off a booked volunteer can only tell the organiser "I can't come": the booking is cancelled
        (marked late) and the place still goes to the next in line."""
        resident_id = self.someone(pick, BOOKED)
        found = None if resident_id is None else self.mine(resident_id)
        assert found is not None
        assert not can_cancel(self.shift, found[1], self.now)
        self.write(found[0], status=BookingStatus.CANCELLED, late=True)
        self.promote()

    @precondition(lambda self: self.any(OFFERED))
    @rule(pick=picks)
    def confirm(self, pick: int) -> None:
        resident_id = self.someone(pick, OFFERED)
        found = None if resident_id is None else self.mine(resident_id)
        if found is None or found[1].status is not BookingStatus.OFFERED:
            return
        index, offered = found
        assert offered.offered_until is not None
        if self.now < offered.offered_until:
            self.write(index, status=BookingStatus.BOOKED)

    @precondition(lambda self: self.any(OFFERED))
    @rule(pick=picks)
    def decline(self, pick: int) -> None:
        resident_id = self.someone(pick, OFFERED)
        found = None if resident_id is None else self.mine(resident_id)
        if found is not None and found[1].status is BookingStatus.OFFERED:
            self.write(found[0], status=BookingStatus.LAPSED)
            self.promote()

    @precondition(lambda self: self.any(OFFERED))
    @rule(pick=picks)
    def expire(self, pick: int) -> None:
        resident_id = self.someone(pick, OFFERED)
        found = None if resident_id is None else self.mine(resident_id)
        if found is None or found[1].status is not BookingStatus.OFFERED:
            return
        assert found[1].offered_until is not None
        if self.now >= found[1].offered_until:
            self.write(found[0], status=BookingStatus.LAPSED)
            self.promote()

    @rule(minutes=st.sampled_from((1, 9, 30, 60, 119, 180)))
    def advance_clock(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    # -- what must hold after every step

    @invariant()
    def places_held_never_exceed_capacity(self) -> None:
        assert self.held() <= self.shift.capacity

    @invariant()
    def nobody_has_two_active_bookings(self) -> None:
        active = Counter(b.resident_id for b in self.bookings if b.status in ACTIVE)
        assert all(n == 1 for n in active.values())

    @invariant()
    def no_place_idles_while_people_wait(self) -> None:
        if self.now < self.shift.starts_at and self.queue():
            assert self.held() == self.shift.capacity

    @invariant()
    def waitlist_keeps_arrival_order(self) -> None:
        queue = self.queue()
        assert [b.created_at for b in queue] == sorted(b.created_at for b in queue)
        assert [b.id for b in queue] == sorted(b.id for b in queue)
        assert [waitlist_position(self.bookings, b.id) for b in queue] == list(range(1, len(queue) + 1))
        offered = [b for b in self.bookings if b.status is BookingStatus.OFFERED]
        if offered and queue:
            assert max(b.position for b in offered) < queue[0].position, "offers go to earlier arrivals"

    @invariant()
    def offers_lapse_by_the_start(self) -> None:
        for b in self.bookings:
            if b.status is BookingStatus.OFFERED:
                assert b.offered_until is not None and b.offered_until <= self.shift.starts_at


def test_any_interleaving_keeps_places_within_capacity_and_the_waitlist_fair() -> None:
    run_state_machine_as_test(OneShift, settings=settings(max_examples=200, stateful_step_count=50, deadline=None))


# ---- drafts -------------------------------------------------------------------------------------------------------


def draft(**changes: object) -> ShiftDraft:
    base = ShiftDraft(starts_at=T0 + 48 * HOUR, ends_at=T0 + 50 * HOUR, capacity=5)
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"ends_at": T0 + 48 * HOUR}, "ends_before_start"),
        ({"ends_at": T0 + 47 * HOUR}, "ends_before_start"),
        ({"ends_at": T0 + 60 * HOUR + timedelta(minutes=1)}, "shift_too_long"),
        ({"starts_at": T0 - HOUR, "ends_at": T0 + HOUR}, "starts_in_past"),
        ({"starts_at": T0, "ends_at": T0 + HOUR}, "starts_in_past"),
        ({"starts_at": T0 + HORIZON + HOUR, "ends_at": T0 + HORIZON + 2 * HOUR}, "too_far"),
        ({"capacity": 0}, "bad_capacity"),
        ({"capacity": -3}, "bad_capacity"),
        ({"capacity": 501}, "bad_capacity"),
        ({"points_per_hour": -1}, "bad_points"),
        ({"points_per_hour": 21}, "bad_points"),
        ({"cutoff_hours": 73}, "bad_cutoff"),
        ({"repeat_weeks": 0}, "bad_repeat"),
        ({"repeat_weeks": 13}, "bad_repeat"),
        ({"note": "x" * 201}, "too_long"),
    ],
)
def test_check_draft_refuses_with_the_reason(changes: dict[str, object], code: str) -> None:
    with pytest.raises(VolunteerError) as refused:
        draft(**changes).check(T0)
    assert refused.value.code == code
    assert refused.value.context["code"] == code


def test_check_draft_accepts_the_limits() -> None:
    ok = draft(ends_at=T0 + 60 * HOUR, capacity=500, points_per_hour=20, cutoff_hours=72, repeat_weeks=12)
    assert ok.check(T0) is ok
    assert draft(capacity=1, points_per_hour=0, cutoff_hours=0, repeat_weeks=1).check(T0).capacity == 1


def test_occurrences_of_weekly_shift_keep_weekday_and_local_time() -> None:
    start = datetime(2026, 5, 16, 9, 30, tzinfo=SHANGHAI).astimezone(UTC)  # stored in UTC
    weekly = ShiftDraft(starts_at=start, ends_at=start + 2 * HOUR, capacity=4, repeat_weeks=4)
    occurrences = weekly.occurrences()
    assert len(occurrences) == 4
    local = [(s.astimezone(SHANGHAI), e.astimezone(SHANGHAI)) for s, e in occurrences]
    assert {(s.weekday(), s.hour, s.minute, e.hour, e.minute) for s, e in local} == {(5, 9, 30, 11, 30)}
    assert [s.date() for s, _ in local] == [datetime(2026, 5, d).date() for d in (16, 23, 30)] + [
        datetime(2026, 6, 6).date()
    ]


def test_occurrences_of_single_shift_is_the_shift_itself() -> None:
    single = draft()
    assert single.occurrences() == [(single.starts_at, single.ends_at)]


# ---- booking ------------------------------------------------------------------------------------------------------


def book(
    shift: Shift | None = None,
    bookings: tuple[Booking, ...] = (),
    who: Profile | None = None,
    others: tuple[Shift, ...] = (),
    now: datetime = T0,
    *,
    waitlist: bool = True,
    resident_id: int = 1,
) -> str:
    """The refusal code (or the outcome) of resident 1 booking ``shift`` (a day ahead, by default)."""
    try:
        decision = decide_booking(
            shift or shift_at(T0 + 24 * HOUR),
            bookings,
            resident_id,
            who if who is not None else profile(resident_id),
            others,
            now,
            waitlist=waitlist,
        )
    except VolunteerError as refusal:
        return refusal.code
    return decision.outcome.value


def test_book_without_profile_refused_not_volunteer() -> None:
    with pytest.raises(VolunteerError) as refused:
        decide_booking(shift_at(T0 + 24 * HOUR), (), 1, None, (), T0)
    assert refused.value.code == "not_volunteer"


def test_book_pending_refused_not_approved() -> None:
    assert book(who=profile(1, ProfileStatus.PENDING)) == "not_approved"


def test_book_suspended_refused_suspended() -> None:
    assert book(who=profile(1, ProfileStatus.SUSPENDED)) == "suspended"


def test_book_cancelled_shift_refused_shift_cancelled() -> None:
    assert book(shift_at(T0 + 24 * HOUR, status=ShiftStatus.CANCELLED)) == "shift_cancelled"


def test_book_started_shift_refused_started() -> None:
    shift = shift_at(T0 - HOUR, hours=3)
    assert book(shift) == "started"
    assert book(shift_at(T0)) == "started"


def test_book_after_cutoff_refused_past_cutoff() -> None:
    assert book(shift_at(T0 + 5 * HOUR, cutoff_hours=6)) == "past_cutoff"
    assert book(shift_at(T0 + 6 * HOUR, cutoff_hours=6)) == "past_cutoff"
    assert book(shift_at(T0 + 6 * HOUR + timedelta(minutes=1), cutoff_hours=6)) == "booked"


def test_book_twice_refused_already_booked() -> None:
    for status in (BookingStatus.BOOKED, BookingStatus.OFFERED):
        assert book(bookings=(booking(1, 1, status),)) == "already_booked"
    assert book(bookings=(booking(1, 2), booking(2, 1, BookingStatus.WAITING))) == "already_waiting"


def test_book_again_after_cancelling_allowed() -> None:
    for status in (BookingStatus.CANCELLED, BookingStatus.LAPSED):
        assert book(bookings=(booking(1, 1, status),)) == "booked"


def test_book_overlapping_shift_refused_clash() -> None:
    target = shift_at(T0 + 24 * HOUR, hours=2)
    overlapping = shift_at(T0 + 25 * HOUR, hours=2, shift_id=8)
    with pytest.raises(VolunteerError) as refused:
        decide_booking(target, (), 1, profile(1), (overlapping,), T0)
    assert refused.value.code == "clash"
    assert refused.value.context["starts_at"] == overlapping.starts_at


def test_book_back_to_back_shift_allowed() -> None:
    target = shift_at(T0 + 24 * HOUR, hours=2)
    before = shift_at(T0 + 22 * HOUR, hours=2, shift_id=8)
    after = shift_at(T0 + 26 * HOUR, hours=2, shift_id=9)
    assert book(target, others=(before, after, target)) == "booked"


def test_book_full_without_waitlist_refused_full() -> None:
    full = (booking(1, 2), booking(2, 3, BookingStatus.OFFERED))
    shift = shift_at(T0 + 24 * HOUR, capacity=2)
    assert book(shift, full, waitlist=False) == "full"
    assert book(shift, full) == "waiting"


def test_book_behind_waitlist_waits_even_with_free_place() -> None:
    shift = shift_at(T0 + 24 * HOUR, capacity=2)
    rows = (booking(1, 2), booking(2, 3, BookingStatus.WAITING), booking(3, 4, BookingStatus.WAITING))
    decision = decide_booking(shift, rows, 1, profile(1), (), T0)
    assert (decision.outcome, decision.position) == (Outcome.WAITING, 3)


def test_next_in_line_is_earliest_waiting_until_start() -> None:
    shift = shift_at(T0 + 24 * HOUR, capacity=1)
    rows = (
        booking(1, 2, BookingStatus.CANCELLED),
        booking(5, 3, BookingStatus.WAITING),
        booking(3, 4, BookingStatus.WAITING),
    )
    assert next_in_line(shift, rows, T0) == rows[2]
    assert next_in_line(shift, rows, shift.starts_at) is None
    assert next_in_line(replace(shift, status=ShiftStatus.CANCELLED), rows, T0) is None
    assert next_in_line(shift, (*rows, booking(9, 9)), T0) is None


def test_cancel_booked_allowed_until_cutoff_waiting_until_start() -> None:
    shift = shift_at(T0 + 24 * HOUR, cutoff_hours=12)
    booked, waiting = booking(1, 1), booking(2, 2, BookingStatus.WAITING)
    assert can_cancel(shift, booked, shift.cutoff - timedelta(minutes=1))
    assert not can_cancel(shift, booked, shift.cutoff)
    assert can_cancel(shift, waiting, shift.starts_at - timedelta(minutes=1))
    assert not can_cancel(shift, waiting, shift.starts_at)
    assert not can_cancel(shift, booking(3, 3, BookingStatus.CANCELLED), T0)


# ---- offers -------------------------------------------------------------------------------------------------------


def test_offer_until_far_from_start_is_two_hours() -> None:
    shift = shift_at(T0 + 24 * HOUR)
    assert offer_until(shift, T0) == T0 + 2 * HOUR
    assert offer_until(shift, shift.starts_at - 4 * HOUR) == shift.starts_at - 2 * HOUR


def test_offer_until_near_start_is_shorter_and_never_after_start() -> None:
    shift = shift_at(T0 + 3 * HOUR)
    assert offer_until(shift, T0) == T0 + 90 * timedelta(minutes=1)  # half of the three hours left
    assert offer_until(shift, shift.starts_at - timedelta(minutes=15)) == shift.starts_at - timedelta(minutes=5)
    assert offer_until(shift, shift.starts_at - timedelta(minutes=5)) == shift.starts_at


@given(st.integers(1, 48 * 60))
def test_offer_until_any_time_left_stays_between_ten_minutes_and_start(minutes_left: int) -> None:
    shift = shift_at(T0 + timedelta(minutes=minutes_left))
    until = offer_until(shift, T0)
    assert T0 < until <= shift.starts_at
    assert until - T0 <= OFFER_WINDOW
    if minutes_left >= 10:
        assert until - T0 >= OFFER_MIN


# ---- reminders ----------------------------------------------------------------------------------------------------


def local(moment: datetime) -> datetime:
    return moment.astimezone(SHANGHAI)


def test_reminder_times_are_a_day_and_two_hours_before() -> None:
    shift = shift_at(datetime(2026, 5, 20, 14, 0, tzinfo=SHANGHAI).astimezone(UTC))
    assert reminder_times(shift, T0, None, SHANGHAI_OFFSET) == [shift.starts_at - 24 * HOUR, shift.starts_at - 2 * HOUR]
    assert reminder_times(shift, T0, QUIET, SHANGHAI_OFFSET) == [
        shift.starts_at - 24 * HOUR,
        shift.starts_at - 2 * HOUR,
    ]


def test_reminder_in_quiet_hours_moves_to_just_before_ten_pm() -> None:
    shift = shift_at(datetime(2026, 5, 20, 9, 0, tzinfo=SHANGHAI).astimezone(UTC))  # 2 h before = 07:00 local
    day_before, early = reminder_times(shift, T0, QUIET, SHANGHAI_OFFSET)
    assert day_before == shift.starts_at - 24 * HOUR
    moved = local(early)
    assert moved.date() == datetime(2026, 5, 19).date()
    assert (21, 50) <= (moved.hour, moved.minute) < (22, 0)


def test_reminder_at_night_start_moves_both_out_of_quiet_hours() -> None:
    shift = shift_at(datetime(2026, 5, 20, 0, 30, tzinfo=SHANGHAI).astimezone(UTC))  # 24 h before = 00:30 local
    times = reminder_times(shift, T0, QUIET, SHANGHAI_OFFSET)
    assert len(times) == 2 and times == sorted(times)
    for at in times:
        assert (21, 50) <= (local(at).hour, local(at).minute) < (22, 0)
    assert [local(at).day for at in times] == [18, 19]


@given(st.integers(0, 14 * 24 * 60))
def test_reminder_times_any_start_never_fall_in_quiet_hours(minutes: int) -> None:
    shift = shift_at(T0 + timedelta(days=3, minutes=minutes))
    for at in reminder_times(shift, T0, QUIET, SHANGHAI_OFFSET):
        assert 8 <= local(at).hour < 22
        assert shift.starts_at - 24 * HOUR - 10 * HOUR <= at <= shift.starts_at - 2 * HOUR


def test_reminder_already_past_at_booking_skipped() -> None:
    shift = shift_at(datetime(2026, 5, 20, 14, 0, tzinfo=SHANGHAI).astimezone(UTC))
    late_booking = shift.starts_at - 5 * HOUR
    assert reminder_times(shift, late_booking, QUIET, SHANGHAI_OFFSET) == [shift.starts_at - 2 * HOUR]
    assert reminder_times(shift, shift.starts_at - HOUR, QUIET, SHANGHAI_OFFSET) == []


# ---- check-in codes -----------------------------------------------------------------------------------------------

NOW = datetime(2026, 5, 16, 1, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@given(st.integers(1, 10**6), st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1)))
def test_checkin_code_any_shift_is_four_digits(shift_id: int, moment: datetime) -> None:
    code = checkin_code(SECRET, shift_id, moment.replace(tzinfo=UTC))
    assert len(code) == CODE_DIGITS == 4 and code.isascii() and code.isdigit()


def test_checkin_code_changes_between_minutes_not_within_one() -> None:
    this = checkin_code(SECRET, SHIFT_ID, NOW)
    assert (
        checkin_code(SECRET, SHIFT_ID, NOW.replace(second=0))
        == this
        == checkin_code(SECRET, SHIFT_ID, NOW.replace(second=59))
    )
    assert checkin_code(SECRET, SHIFT_ID, NOW + MINUTE) != this
    assert checkin_code(SECRET, SHIFT_ID, NOW - MINUTE) != this


def test_code_matches_current_and_previous_minute_only() -> None:
    assert code_matches(SECRET, SHIFT_ID, checkin_code(SECRET, SHIFT_ID, NOW), NOW)
    assert code_matches(SECRET, SHIFT_ID, checkin_code(SECRET, SHIFT_ID, NOW - MINUTE), NOW)
    assert not code_matches(SECRET, SHIFT_ID, checkin_code(SECRET, SHIFT_ID, NOW - 2 * MINUTE), NOW)
    assert not code_matches(SECRET, SHIFT_ID, checkin_code(SECRET, SHIFT_ID, NOW + MINUTE), NOW)


def test_code_matches_full_width_digits_and_spaces() -> None:
    code = checkin_code(SECRET, SHIFT_ID, NOW)
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert code_matches(SECRET, SHIFT_ID, full_width, NOW)
    assert code_matches(SECRET, SHIFT_ID, f" {code[:2]} {code[2:]} ", NOW)
    assert code_matches(SECRET, SHIFT_ID, f"{full_width[:2]} {code[2:]}", NOW)
    assert not code_matches(SECRET, SHIFT_ID, "", NOW)
    assert not code_matches(SECRET, SHIFT_ID, code[:3], NOW)


def test_code_matches_other_shift_code_refused() -> None:
    for other in (1, 2, 3):
        typed = checkin_code(SECRET, other, NOW)
        assert not code_matches(SECRET, SHIFT_ID, typed, NOW)
    assert not code_matches("another-secret", SHIFT_ID, checkin_code(SECRET, SHIFT_ID, NOW), NOW)


# ---- hours, points, stars, record ---------------------------------------------------------------------------------


def test_served_minutes_early_checkin_not_counted() -> None:
    shift = shift_at(T0, hours=3)
    assert served_minutes(shift, T0 - timedelta(minutes=25), T0 + 3 * HOUR) == 180
    assert served_minutes(shift, T0 + timedelta(minutes=15), T0 + 2 * HOUR) == 105


def test_served_minutes_without_checkout_until_the_end() -> None:
    shift = shift_at(T0, hours=3)
    assert served_minutes(shift, T0 + timedelta(minutes=30), None) == 150
    assert served_minutes(shift, T0, T0 + 5 * HOUR) == 180  # checked out late: only the shift counts


def test_served_minutes_checkin_after_end_is_zero() -> None:
    shift = shift_at(T0, hours=3)
    assert served_minutes(shift, T0 + 4 * HOUR, None) == 0


def test_points_for_rounds_down() -> None:
    assert points_for(90, 2) == 3
    assert points_for(89, 2) == 2
    assert points_for(29, 2) == 0
    assert points_for(60, 0) == 0
    assert points_for(-30, 2) == 0


@pytest.mark.parametrize(("hours", "level"), [(0, 0), (100, 1), (300, 2), (600, 3), (1000, 4), (1500, 5)])
def test_stars_level_reached_exactly_at_threshold(hours: int, level: int) -> None:
    stars = Stars()
    assert stars.level(hours * 60) == level
    if hours:
        assert stars.level(hours * 60 - 1) == level - 1


def test_stars_to_next_counts_hours_still_needed() -> None:
    stars = Stars()
    assert stars.to_next(0) == 100
    assert stars.to_next(100 * 60) == 200
    assert stars.to_next(599 * 60 + 30) == 0.5
    assert stars.to_next(1500 * 60) is None
    assert stars.to_next(2000 * 60) is None


def test_stars_to_next_one_minute_short_is_not_zero() -> None:
    assert Stars().to_next(100 * 60 - 1) == 0.1
    assert Stars().to_next(100 * 60 - 7) == 0.2


def test_stars_custom_thresholds_used() -> None:
    stars = Stars((10, 20))
    assert [stars.level(h * 60) for h in (9, 10, 19, 20, 50)] == [0, 1, 1, 2, 2]
    assert (stars.to_next(12 * 60), stars.to_next(20 * 60)) == (8, None)


@pytest.mark.parametrize("thresholds", [(), (300, 100), (100, 100), (0, 100), (-5,)])
def test_stars_invalid_thresholds_rejected(thresholds: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        Stars(thresholds)


def line(starts_at: datetime, minutes: int) -> ServiceLine:
    return ServiceLine(1, "垃圾分类督导", None, starts_at, starts_at + timedelta(minutes=minutes), minutes)


def test_record_per_year_newest_first_in_local_years() -> None:
    record = Record(
        (
            line(datetime(2025, 3, 1, 2, tzinfo=UTC), 120),
            line(datetime(2025, 12, 31, 17, tzinfo=UTC), 90),  # 2026-01-01 01:00 in Shanghai
            line(datetime(2026, 2, 1, 2, tzinfo=UTC), 60),
        )
    )
    assert record.minutes == 270
    assert record.per_year() == {2025: 210, 2026: 60}
    assert list(record.per_year(timedelta(hours=8)).items()) == [(2026, 150), (2025, 120)]
    assert Record().per_year() == {}


def test_reminder_for_a_late_evening_booking_comes_when_quiet_hours_end() -> None:
    # Booked at 22:30 Shanghai for 09:00 the next morning: the 2 h reminder (07:00) cannot move to before 22:00
    # (already past), so it comes at 08:00 when quiet hours end, still an hour before the start.
    start = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    shift = Shift(1, 1, start, start + timedelta(hours=2), 3)
    booked = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)  # 22:30 Shanghai
    assert reminder_times(shift, booked, (22 * 60, 8 * 60), 480) == [datetime(2026, 12, 8, 0, 0, tzinfo=UTC)]
