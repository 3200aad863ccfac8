"""Volunteer service (志愿服务): activities and shifts, bookings with a waitlist, promotion offers, check-in codes,
hours, star levels and certificates. Standard library only: every rule here is a pure function of its inputs, so
the services apply them under a row lock and the property tests can drive them through any interleaving.

Places of a shift are held by bookings that are ``booked`` or ``offered`` (an offered place waits for the
volunteer's confirmation and is nobody else's meanwhile); ``waiting`` bookings queue by arrival (``position``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.errors import DomainError, Forbidden

TITLE_MAX = 60
DESCRIPTION_MAX = 1000
PLACE_MAX = 120
CONTACT_MAX = 60
NOTE_MAX = 200
DETAILS_MAX = 200  # skills, availability
REASON_MAX = 200
CAPACITY_MAX = 500
POINTS_PER_HOUR_MAX = 20
SHIFT_MAX = timedelta(hours=12)
CUTOFF_MAX_HOURS = 72
REPEAT_MAX_WEEKS = 12
HORIZON = timedelta(days=180)  # how far ahead a shift may be planned
DEFAULT_CUTOFF_HOURS = 12
DEFAULT_POINTS_PER_HOUR = 2

OFFER_WINDOW = timedelta(hours=2)  # a promoted volunteer confirms within this, shorter near the start
OFFER_MIN = timedelta(minutes=10)
REMINDERS = (timedelta(hours=24), timedelta(hours=2))
CHECKIN_OPENS = timedelta(minutes=30)  # before the start
CODE_PERIOD = 60  # seconds a check-in code is shown for
CODE_DIGITS = 4
CODE_ATTEMPTS = 5  # wrong codes a volunteer may type for one shift before they must ask the organiser
CHECKIN_RADIUS_M = 200
DEFAULT_STARS = (100, 300, 600, 1000, 1500)  # hours for 1★ … 5★ (the common 星级志愿者 scheme)


class VolunteerError(DomainError):
    """A volunteer action refused for a reason the person can act on; ``code`` names it in the template."""

    template = "volunteers/problem"

    def __init__(self, code: str, **context: object) -> None:
        super().__init__(code, code=code, **context)
        self.code = code


class NotYours(Forbidden):
    """Someone else's booking (a forged or forwarded button): refused, and audited like every refusal."""

    template = "volunteers/not_yours"


class ProfileStatus(StrEnum):
    PENDING = "pending"  # waiting for an organiser's approval
    APPROVED = "approved"
    SUSPENDED = "suspended"  # an organiser withdrew the approval


class ShiftStatus(StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"


class BookingStatus(StrEnum):
    BOOKED = "booked"
    WAITING = "waiting"
    OFFERED = "offered"  # promoted from the waitlist, waiting for the volunteer to confirm
    CANCELLED = "cancelled"  # by the volunteer (``late`` when after the cut-off), or the shift was cancelled
    LAPSED = "lapsed"  # an offer not confirmed in time, or declined
    NO_SHOW = "no_show"


HOLDS_PLACE = frozenset({BookingStatus.BOOKED, BookingStatus.OFFERED})
ACTIVE = frozenset({BookingStatus.BOOKED, BookingStatus.OFFERED, BookingStatus.WAITING})


class HoursStatus(StrEnum):
    NONE = "none"  # not served (yet)
    PENDING = "pending"  # checked in; waiting for approval
    APPROVED = "approved"


@dataclass(frozen=True)
class Profile:
    resident_id: int
    community_id: int
    status: ProfileStatus
    skills: str = ""
    availability: str = ""
    created_at: datetime | None = None
    stars_announced: int = 0


@dataclass(frozen=True)
class Activity:
    id: int
    community_id: int
    title: str
    description: str
    place: str
    contact: str
    track: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    created_by: int | None = None  # telegram id of the organiser
    cancelled_at: datetime | None = None

    @property
    def has_coordinates(self) -> bool:
        return self.latitude is not None and self.longitude is not None


@dataclass(frozen=True)
class Shift:
    id: int
    activity_id: int
    starts_at: datetime
    ends_at: datetime
    capacity: int
    points_per_hour: int = DEFAULT_POINTS_PER_HOUR
    note: str = ""
    cutoff_hours: int = DEFAULT_CUTOFF_HOURS
    status: ShiftStatus = ShiftStatus.OPEN
    secret: str = ""  # seeds the rotating check-in code
    code_chat_id: int | None = None  # where the organiser displays the rotating code

    @property
    def cutoff(self) -> datetime:
        """Last moment a volunteer may cancel on their own."""
        return self.starts_at - timedelta(hours=self.cutoff_hours)

    @property
    def minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)

    def overlaps(self, other: Shift) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at

    def checkin_open(self, now: datetime) -> bool:
        return self.status is ShiftStatus.OPEN and self.starts_at - CHECKIN_OPENS <= now < self.ends_at


@dataclass(frozen=True)
class Booking:
    id: int
    shift_id: int
    resident_id: int
    status: BookingStatus
    position: int  # arrival order within the shift
    created_at: datetime
    offered_until: datetime | None = None
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    hours: HoursStatus = HoursStatus.NONE
    minutes: int | None = None  # approved (or, while pending, proposed) service minutes
    late: bool = False  # cancelled after the cut-off ("I can't come")
    correction: str | None = None  # why the approved minutes differ from the checked time
    code_failures: int = 0


@dataclass(frozen=True)
class ShiftDraft:
    """What an organiser typed for a shift, checked before anything is stored."""

    starts_at: datetime
    ends_at: datetime
    capacity: int
    points_per_hour: int = DEFAULT_POINTS_PER_HOUR
    note: str = ""
    cutoff_hours: int = DEFAULT_CUTOFF_HOURS
    repeat_weeks: int = 1

    def check(self, now: datetime) -> ShiftDraft:
        """The draft itself when it can be stored; raises VolunteerError naming the first problem."""
        if self.ends_at <= self.starts_at:
            raise VolunteerError("ends_before_start")
        if self.ends_at - self.starts_at > SHIFT_MAX:
            raise VolunteerError("shift_too_long", hours=int(SHIFT_MAX.total_seconds() // 3600))
        if self.starts_at <= now:
            raise VolunteerError("starts_in_past")
        if self.starts_at - now > HORIZON:
            raise VolunteerError("too_far", days=HORIZON.days)
        if not 1 <= self.capacity <= CAPACITY_MAX:
            raise VolunteerError("bad_capacity", limit=CAPACITY_MAX)
        if not 0 <= self.points_per_hour <= POINTS_PER_HOUR_MAX:
            raise VolunteerError("bad_points", limit=POINTS_PER_HOUR_MAX)
        if not 0 <= self.cutoff_hours <= CUTOFF_MAX_HOURS:
            raise VolunteerError("bad_cutoff", limit=CUTOFF_MAX_HOURS)
        if not 1 <= self.repeat_weeks <= REPEAT_MAX_WEEKS:
            raise VolunteerError("bad_repeat", limit=REPEAT_MAX_WEEKS)
        if len(self.note) > NOTE_MAX:
            raise VolunteerError("too_long", limit=NOTE_MAX)
        return self

    def occurrences(self) -> list[tuple[datetime, datetime]]:
        """(start, end) of each weekly occurrence (the same local clock time is kept by adding whole weeks)."""
        return [(self.starts_at + timedelta(weeks=w), self.ends_at + timedelta(weeks=w))
                for w in range(self.repeat_weeks)]  # fmt: skip


def clean(text: str, limit: int, code: str = "too_long", *, required: bool = True) -> str:
    """Collapse whitespace at the ends; refuse empty (when required) or over ``limit`` characters."""
    value = (text or "").strip()
    if required and not value:
        raise VolunteerError("empty")
    if len(value) > limit:
        raise VolunteerError(code, limit=limit)
    return value


# ---- booking ------------------------------------------------------------------------------------------------------


class Outcome(StrEnum):
    BOOKED = "booked"
    WAITING = "waiting"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    position: int = 0  # 1-based place on the waitlist when waiting


def decide_booking(
    shift: Shift,
    bookings: Sequence[Booking],
    resident_id: int,
    profile: Profile | None,
    my_other_shifts: Iterable[Shift],
    now: datetime,
    *,
    waitlist: bool = True,
) -> Decision:
    """Whether ``resident_id`` gets a place on ``shift`` (whose current ``bookings`` were read under its lock).

    Refusals raise VolunteerError: not a volunteer / not approved yet, the shift is cancelled or has begun, the
    cut-off has passed, already booked or waiting, another booked shift overlaps, full (when ``waitlist`` is
    False: the volunteer first declined the waitlist)."""
    if profile is None:
        raise VolunteerError("not_volunteer")
    if profile.status is ProfileStatus.PENDING:
        raise VolunteerError("not_approved")
    if profile.status is ProfileStatus.SUSPENDED:
        raise VolunteerError("suspended")
    if shift.status is ShiftStatus.CANCELLED:
        raise VolunteerError("shift_cancelled")
    if now >= shift.starts_at:
        raise VolunteerError("started")
    if now >= shift.cutoff:
        raise VolunteerError("past_cutoff", cutoff=shift.cutoff)
    mine = [b for b in bookings if b.resident_id == resident_id and b.status in ACTIVE]
    if mine:
        raise VolunteerError("already_waiting" if mine[0].status is BookingStatus.WAITING else "already_booked")
    check_no_clash(shift, my_other_shifts)
    held = sum(1 for b in bookings if b.status in HOLDS_PLACE)
    if held < shift.capacity and not any(b.status is BookingStatus.WAITING for b in bookings):
        return Decision(Outcome.BOOKED)
    if not waitlist:
        raise VolunteerError("full", capacity=shift.capacity)
    waiting = sum(1 for b in bookings if b.status is BookingStatus.WAITING)
    return Decision(Outcome.WAITING, waiting + 1)


def check_no_clash(shift: Shift, my_other_shifts: Iterable[Shift]) -> None:
    """Refuse a place on ``shift`` that overlaps another shift the volunteer holds a place on."""
    clash = next((s for s in my_other_shifts if s.id != shift.id and s.overlaps(shift)), None)
    if clash is not None:
        raise VolunteerError("clash", starts_at=clash.starts_at, ends_at=clash.ends_at)


def waitlist_position(bookings: Sequence[Booking], booking_id: int) -> int:
    """1-based place of a waiting booking (0 when it is not waiting)."""
    queue = sorted((b for b in bookings if b.status is BookingStatus.WAITING), key=lambda b: b.position)
    return next((i for i, b in enumerate(queue, 1) if b.id == booking_id), 0)


def next_in_line(shift: Shift, bookings: Sequence[Booking], now: datetime) -> Booking | None:
    """Who is offered a freed place: the first waiting booking, while a place is free and the shift not begun."""
    if shift.status is ShiftStatus.CANCELLED or now >= shift.starts_at:
        return None
    if sum(1 for b in bookings if b.status in HOLDS_PLACE) >= shift.capacity:
        return None
    queue = sorted((b for b in bookings if b.status is BookingStatus.WAITING), key=lambda b: b.position)
    return queue[0] if queue else None


def offer_until(
    shift: Shift, now: datetime, window: timedelta = OFFER_WINDOW, awake_from: datetime | None = None
) -> datetime:
    """When an offer lapses: ``window`` (2 h), shorter near the start (half the time left, at least ten minutes),
    never after the start. ``awake_from``: the end of the volunteer's quiet hours when the offer comes in them —
    the time to answer counts from then (an offer made at 1 a.m. does not lapse while they sleep)."""
    begin = awake_from if awake_from is not None and now < awake_from < shift.starts_at else now
    left = shift.starts_at - begin
    span = min(window, max(OFFER_MIN, left / 2))
    return min(begin + span, shift.starts_at)


def can_cancel(shift: Shift, booking: Booking, now: datetime) -> bool:
    """A volunteer cancels on their own until the cut-off; waiting and offered ones may always step back."""
    if booking.status in (BookingStatus.WAITING, BookingStatus.OFFERED):
        return now < shift.starts_at
    return booking.status is BookingStatus.BOOKED and now < shift.cutoff


def reminder_times(
    shift: Shift, booked_at: datetime, quiet: tuple[int, int] | None, offset_minutes: int
) -> list[datetime]:
    """When to remind a volunteer of ``shift``: 24 h and 2 h before, moved earlier out of quiet hours (local
    minutes ``quiet`` = (start, end), ``offset_minutes`` = the zone's UTC offset) — or, when earlier is already
    past at booking, to the end of the quiet hours if that is still before the start; skipped otherwise."""
    times: list[datetime] = []
    for before in REMINDERS:
        at = shift.starts_at - before
        if quiet is not None:
            earlier = _before_quiet(at, quiet, offset_minutes)
            if earlier <= booked_at and earlier != at:
                later = _after_quiet(at, quiet, offset_minutes)
                at = later if later < shift.starts_at else earlier
            else:
                at = earlier
        if at > booked_at and at not in times:
            times.append(at)
    return times


def _before_quiet(at: datetime, quiet: tuple[int, int], offset: int) -> datetime:
    start, end = quiet
    minute = int(((at.hour * 60 + at.minute) + offset) % 1440)
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return at
    back = (minute - start) % 1440 + 1  # to one minute before quiet hours began
    return (at - timedelta(minutes=back)).replace(second=0, microsecond=0)


def _after_quiet(at: datetime, quiet: tuple[int, int], offset: int) -> datetime:
    """The end of the quiet hours ``at`` falls in (``at`` itself when it is outside them)."""
    start, end = quiet
    minute = int(((at.hour * 60 + at.minute) + offset) % 1440)
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return at
    return (at + timedelta(minutes=(end - minute) % 1440)).replace(second=0, microsecond=0)


# ---- check-in -----------------------------------------------------------------------------------------------------


def checkin_code(secret: str, shift_id: int, moment: datetime) -> str:
    """The code shown for ``shift_id`` during the minute containing ``moment`` (HMAC of the minute)."""
    period = int(moment.timestamp()) // CODE_PERIOD
    digest = hmac.new(secret.encode(), f"{shift_id}:{period}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest[:4], "big") % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def code_valid_until(moment: datetime) -> datetime:
    period = int(moment.timestamp()) // CODE_PERIOD
    return datetime.fromtimestamp((period + 1) * CODE_PERIOD, tz=moment.tzinfo)


def code_matches(secret: str, shift_id: int, typed: str, now: datetime) -> bool:
    """The typed code is this minute's or the previous minute's (someone read it just before it changed)."""
    typed = normalise_code(typed)
    return any(hmac.compare_digest(checkin_code(secret, shift_id, now - timedelta(seconds=back)), typed)
               for back in (0, CODE_PERIOD))  # fmt: skip


def normalise_code(typed: str) -> str:
    return "".join(ch for ch in (typed or "").translate(_FULL_WIDTH) if ch.isdigit())[: CODE_DIGITS + 2]


_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def served_minutes(shift: Shift, checked_in_at: datetime, checked_out_at: datetime | None) -> int:
    """Actual service time within the shift (travel and waiting before the start do not count)."""
    start = max(shift.starts_at, checked_in_at)
    end = min(shift.ends_at, checked_out_at or shift.ends_at)
    return max(0, int((end - start).total_seconds() // 60))


def points_for(minutes: int, points_per_hour: int) -> int:
    """Points for approved service minutes (whole points, rounded down)."""
    return max(0, minutes) * points_per_hour // 60


# ---- hours and stars ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stars:
    """Hours (thresholds) needed for 1★ … 5★; per community, the common scheme by default."""

    thresholds: tuple[int, ...] = DEFAULT_STARS

    def __post_init__(self) -> None:
        if not self.thresholds or list(self.thresholds) != sorted(set(self.thresholds)) or self.thresholds[0] <= 0:
            raise ValueError(f"star thresholds must rise: {self.thresholds}")

    def level(self, minutes: int) -> int:
        hours = minutes / 60
        return sum(1 for t in self.thresholds if hours >= t)

    def to_next(self, minutes: int) -> float | None:
        """Hours still needed for the next star (None at the top), rounded up to a tenth: one minute short shows 0.1,
        never 0.0."""
        level = self.level(minutes)
        if level >= len(self.thresholds):
            return None
        left = self.thresholds[level] * 60 - minutes  # > 0 minutes
        return -(-left // 6) / 10  # whole tenths of an hour (6 minutes), rounded up


@dataclass(frozen=True)
class ServiceLine:
    """One approved shift on a volunteer's record."""

    shift_id: int
    activity: str
    track: str | None
    starts_at: datetime
    ends_at: datetime
    minutes: int
    points: int = 0


@dataclass(frozen=True)
class Record:
    """A volunteer's approved service: the lines, and totals overall and per year."""

    lines: tuple[ServiceLine, ...] = ()

    @property
    def minutes(self) -> int:
        return sum(line.minutes for line in self.lines)

    def per_year(self, offset: timedelta = timedelta(0)) -> dict[int, int]:
        years: dict[int, int] = {}
        for line in self.lines:
            year = (line.starts_at + offset).year
            years[year] = years.get(year, 0) + line.minutes
        return dict(sorted(years.items(), reverse=True))


def hours(minutes: int) -> float:
    """Minutes as hours with one decimal, as records and certificates show them."""
    return round(minutes / 60, 1)


# ---- certificates -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A 志愿服务记录证明 as issued (registered so that anyone can check its number later)."""

    number: str
    resident_id: int | None
    name: str
    community: str
    contact: str
    period_from: datetime
    period_to: datetime
    minutes: int
    services: tuple[str, ...]  # activity titles (service content)
    issued_at: datetime
    issued_by: int | None = None
    lines: tuple[ServiceLine, ...] = field(default_factory=tuple)
    community_id: int | None = None  # the issuer (its time zone dates the certificate)


def certificate_number(year: int, sequence: int, suffix: str) -> str:
    """``ZYFW-2026-000123-K7QX``: year, a running number and a random suffix (a number cannot be guessed)."""
    return f"ZYFW-{year}-{sequence:06d}-{suffix}"


def normalise_number(typed: str) -> str:
    return "".join((typed or "").split()).upper()[:40]


# ---- figures ------------------------------------------------------------------------------------------------------

PARTICIPATION_GOAL = 0.05  # volunteers ≥ 5% of residents (the programme's goal)


@dataclass(frozen=True)
class VolunteerFigures:
    residents: int
    volunteers: int
    pending: int
    minutes_by_track: dict[str, int]
    minutes_by_building: dict[str, int]
    shifts: int
    bookings: int
    no_shows: int

    @property
    def participation(self) -> float:
        return self.volunteers / self.residents if self.residents else 0.0

    @property
    def goal_met(self) -> bool:
        return self.participation >= PARTICIPATION_GOAL


@dataclass(frozen=True)
class Person:
    """Who a booking belongs to, as rosters and notices need them."""

    resident_id: int
    telegram_id: int | None
    name: str | None
    locale: str
    building: str | None = None


@dataclass(frozen=True)
class ShiftView:
    """A shift with its activity and how its places stand (lists and cards)."""

    shift: Shift
    activity: Activity
    booked: int
    waiting: int

    @property
    def free(self) -> int:
        return max(0, self.shift.capacity - self.booked)
