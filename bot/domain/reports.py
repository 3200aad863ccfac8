"""Issue reports (随手拍 / 问题台账): statuses and their types, the transition table, geo, tickets, deadlines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from bot.domain.errors import DomainError, Forbidden, InvalidInput
from bot.domain.geo import GeoPoint, distance_m
from bot.domain.roles import Role

DESCRIPTION_MIN, DESCRIPTION_MAX = 5, 500
ADDRESS_MIN, ADDRESS_MAX = 2, 100
NOTE_MIN, NOTE_MAX = 5, 300  # a resolution note says what was done: "ok" is not one
MAX_PHOTOS = 5
NEARBY_METRES = 250.0
_TICKET = re.compile(r"^R-(\d{4})-(\d{6,})$")
EXTEND_DAYS = (1, 3, 7)  # the quick choices when staff move a deadline
DEADLINE_MAX_DAYS = 90  # a typed deadline further away than this is a typo
DEADLINE_TIME = time(23, 59)  # a deadline typed as a day means the end of that day, local time
TASKS_PAYLOAD = "tasks"  # /start payload of the link that opens a grid worker's /tasks (see handlers/onboarding.py)
_DAY = re.compile(r"^(?:(\d{4})\s*[-/.年]\s*)?(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?$")


class Status(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    VERIFIED = "verified"
    REJECTED = "rejected"


class StatusType(StrEnum):
    """What figures count (as FixMyStreet does): labels may change, types do not."""

    OPEN = "open"
    FIXED = "fixed"
    CLOSED = "closed"


STATUS_TYPE = {
    Status.SUBMITTED: StatusType.OPEN,
    Status.ACCEPTED: StatusType.OPEN,
    Status.IN_PROGRESS: StatusType.OPEN,
    Status.RESOLVED: StatusType.FIXED,
    Status.VERIFIED: StatusType.CLOSED,
    Status.REJECTED: StatusType.CLOSED,
}


class Move(StrEnum):
    """What someone does to a report."""

    ACCEPT = "accept"
    REJECT = "reject"
    START = "start"
    RESOLVE = "resolve"
    VERIFY = "verify"
    REOPEN = "reopen"
    REASSIGN = "reassign"  # another grid worker takes over; the status stays
    DEADLINE = "deadline"  # the deadline moves; the status stays


class Actor(StrEnum):
    """How the person acting relates to the report (one person may be several)."""

    REPORTER = "reporter"
    ASSIGNEE = "assignee"
    STAFF = "staff"  # a grid worker of the report's community
    ORGANISER = "organiser"


class RejectReason(StrEnum):
    DUPLICATE = "duplicate"
    NOT_OURS = "not_ours"
    INVALID = "invalid"


# Why a resident sends no photo (only where the category allows it).
SKIP_REASONS = ("unsafe", "hidden", "other")


# The whole workflow: anything not listed here is refused.
TRANSITIONS: dict[tuple[Status, Move], Status] = {
    (Status.SUBMITTED, Move.ACCEPT): Status.ACCEPTED,
    (Status.SUBMITTED, Move.REJECT): Status.REJECTED,
    (Status.ACCEPTED, Move.START): Status.IN_PROGRESS,
    (Status.ACCEPTED, Move.RESOLVE): Status.RESOLVED,
    (Status.ACCEPTED, Move.REJECT): Status.REJECTED,
    (Status.IN_PROGRESS, Move.RESOLVE): Status.RESOLVED,
    (Status.IN_PROGRESS, Move.REJECT): Status.REJECTED,
    (Status.RESOLVED, Move.VERIFY): Status.VERIFIED,
    # 回头看: "not fixed" goes back to the same assignee with a new deadline.
    (Status.RESOLVED, Move.REOPEN): Status.ACCEPTED,
    # Staff steer an open, accepted report: who handles it and by when.
    (Status.ACCEPTED, Move.REASSIGN): Status.ACCEPTED,
    (Status.IN_PROGRESS, Move.REASSIGN): Status.IN_PROGRESS,
    (Status.ACCEPTED, Move.DEADLINE): Status.ACCEPTED,
    (Status.IN_PROGRESS, Move.DEADLINE): Status.IN_PROGRESS,
}

WHO_MAY: dict[Move, frozenset[Actor]] = {
    Move.ACCEPT: frozenset({Actor.STAFF, Actor.ORGANISER}),
    Move.REJECT: frozenset({Actor.STAFF, Actor.ORGANISER}),
    Move.START: frozenset({Actor.ASSIGNEE, Actor.ORGANISER}),
    Move.RESOLVE: frozenset({Actor.ASSIGNEE, Actor.ORGANISER}),
    # 销号: the reporter confirms, or an organiser after a re-visit.
    Move.VERIFY: frozenset({Actor.REPORTER, Actor.ORGANISER}),
    Move.REOPEN: frozenset({Actor.REPORTER, Actor.ORGANISER}),
    Move.REASSIGN: frozenset({Actor.STAFF, Actor.ORGANISER}),
    Move.DEADLINE: frozenset({Actor.STAFF, Actor.ORGANISER}),
}


class BadText(InvalidInput):
    """A description, address or note outside its length bounds (the reply says which bounds)."""

    template = "reports/errors/text"


class TransitionRefused(DomainError):
    """The move does not apply to the report's current status."""

    template = "reports/errors/transition"


class StaffTransitionRefused(TransitionRefused):
    """The same refusal told to staff: their list of reports is /tasks, not the resident's /myreports."""

    template = "reports/staff/transition"


class NoteTooShort(BadText):
    """A resolution note too short to say what was done (or too long)."""

    template = "reports/staff/note_length"


class BadDeadline(InvalidInput):
    """A typed deadline that is not a day, already past, or too far away (the reply says which)."""

    template = "reports/staff/bad_deadline"


class NotYours(Forbidden):
    """The person is not allowed to make this move on this report."""

    template = "reports/errors/not_allowed"


def next_status(status: Status, move: Move, actors: frozenset[Actor]) -> Status:
    """The status after ``move`` by someone who is ``actors`` to the report, or a refusal."""
    if not actors & WHO_MAY[move]:
        raise NotYours(f"{move} needs one of {sorted(WHO_MAY[move])}", move=move.value)
    target = TRANSITIONS.get((status, move))
    if target is None:
        raise TransitionRefused(f"cannot {move} a {status} report", move=move.value, status=status.value)
    return target


@dataclass(frozen=True)
class Category:
    """A kind of problem: its track, default deadline and who handles it (from content)."""

    key: str
    track: str | None
    hours: int
    role: Role
    names: tuple[tuple[str, str], ...]  # (locale, name)
    photo_optional: bool = False

    def name(self, locale: str) -> str:
        """The name in ``locale``, Chinese when missing."""
        names = dict(self.names)
        return names.get(locale) or names["zh_Hans"]


@dataclass(frozen=True)
class Policy:
    """Categories and the timing of the workflow (from ``content/reports/categories.yaml``)."""

    categories: tuple[Category, ...]
    grace_hours: int = 24
    check_days: int = 3
    nearby_m: float = NEARBY_METRES

    def category(self, key: str) -> Category:
        """The category with this key, or InvalidInput (a stale button, a removed category)."""
        found = next((c for c in self.categories if c.key == key), None)
        if found is None:
            raise InvalidInput(field="category", value=key)
        return found


# ---- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    id: int
    ticket: str
    community_id: int
    category: str
    status: Status
    reporter_id: int
    description: str
    submitted_at: datetime
    anonymous: bool = False
    location: GeoPoint | None = None
    building_id: int | None = None
    address: str | None = None
    photos: tuple[str, ...] = ()
    skip_reason: str | None = None
    assignee_id: int | None = None
    deadline: datetime | None = None
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reject_reason: RejectReason | None = None
    duplicate_of: int | None = None
    after_photo: str | None = None
    resolution_note: str | None = None
    reopened: int = 0
    escalated_at: datetime | None = None

    @property
    def type(self) -> StatusType:
        return STATUS_TYPE[self.status]

    @property
    def is_open(self) -> bool:
        return self.type is StatusType.OPEN

    def actors(self, resident_id: int, *, staff: bool, organiser: bool) -> frozenset[Actor]:
        """What ``resident_id`` is to this report, given their roles in its community."""
        found = {Actor.REPORTER} if resident_id == self.reporter_id else set()
        if resident_id == self.assignee_id and (staff or organiser):
            found.add(Actor.ASSIGNEE)
        if staff:
            found.add(Actor.STAFF)
        if organiser:
            found.add(Actor.ORGANISER)
        return frozenset(found)


@dataclass(frozen=True)
class Event:
    """One line of a report's history: who moved it from what to what, when, and why."""

    at: datetime
    action: str
    to_status: Status
    from_status: Status | None = None
    actor_id: int | None = None
    note: str | None = None
    photo: str | None = None


@dataclass(frozen=True)
class Nearby:
    report: Report
    metres: float | None  # None: matched by building, no coordinates to compare


def nearby(
    candidates: list[Report],
    category: str,
    where: GeoPoint | None,
    building_id: int | None,
    radius_m: float = NEARBY_METRES,
) -> list[Nearby]:
    """Open reports of the same category within ``radius_m`` or in the same building, closest first."""
    found: list[Nearby] = []
    for report in candidates:
        if report.category != category or not report.is_open:
            continue
        metres = distance_m(where, report.location) if where and report.location else None
        same_building = building_id is not None and report.building_id == building_id
        if (metres is not None and metres <= radius_m) or same_building:
            found.append(Nearby(report, metres))
    return sorted(found, key=lambda n: (n.metres is None, n.metres or 0.0, n.report.id))


# ---- tickets, text and time ------------------------------------------------------------------


def format_ticket(year: int, sequence: int) -> str:
    """``R-2026-000123``: the year and a sequence that restarts every year."""
    if sequence < 1 or not 2000 <= year <= 9999:
        raise ValueError(f"bad ticket parts {year}/{sequence}")
    return f"R-{year}-{sequence:06d}"


def parse_ticket(text: str) -> tuple[int, int] | None:
    """(year, sequence) of a ticket typed by someone, tolerant of case and spaces."""
    match = _TICKET.match(text.strip().upper())
    return (int(match.group(1)), int(match.group(2))) if match else None


def clean_text(text: str | None, low: int, high: int, what: str) -> str:
    """Trimmed text within the length bounds, or InvalidInput naming the field and its bounds."""
    value = " ".join((text or "").split())
    if not low <= len(value) <= high:
        raise BadText(f"{what}: {len(value)} not in {low}..{high}", field=what, low=low, high=high, length=len(value))
    return value


def clean_note(text: str | None) -> str:
    """A resolution note that says what was done (:data:`NOTE_MIN`–:data:`NOTE_MAX` characters)."""
    try:
        return clean_text(text, NOTE_MIN, NOTE_MAX, "note")
    except BadText as error:
        raise NoteTooShort(str(error), **error.context) from None


def extended(deadline: datetime | None, now: datetime, days: int) -> datetime:
    """``days`` more than the deadline, or than now when it has already passed (an overdue report gets real time)."""
    base = max(deadline, now) if deadline is not None else now
    return base + timedelta(days=days)


def parse_day(text: str, today: date) -> date | None:
    """A day typed by staff: ``2026-12-05``, ``2026/12/5``, ``12-5``, ``12/5``, ``12月5日``, ``2026年12月5日``.
    Without a year, this year's — or next year's when this year's was more than a month ago (late December's
    "1月3日"); a recent day stays in the past, to be refused as such. None when it is not a day."""
    match = _DAY.match(" ".join(text.split()))
    if match is None:
        return None
    year, month, day = (int(g) if g else None for g in match.groups())
    assert month is not None and day is not None
    try:
        found = date(year or today.year, month, day)
        if year is None and found < today - timedelta(days=31):
            found = date(today.year + 1, month, day)
    except ValueError:
        return None
    return found


def typed_deadline(text: str, now: datetime, zone: tzinfo) -> datetime:
    """The end of the typed day in ``zone`` (in ``now``'s zone), if it is still ahead and within
    :data:`DEADLINE_MAX_DAYS`; BadDeadline otherwise."""
    local_now = now.astimezone(zone)
    day = parse_day(text, local_now.date())
    if day is None:
        raise BadDeadline("not a day", reason="format")
    moment = datetime.combine(day, DEADLINE_TIME, zone)
    if moment <= local_now:
        raise BadDeadline("past", reason="past")
    if moment - local_now > timedelta(days=DEADLINE_MAX_DAYS):
        raise BadDeadline("too far", reason="far", days=DEADLINE_MAX_DAYS)
    return moment.astimezone(now.tzinfo)


def agenda(reports: list[Report], now: datetime) -> list[Report]:
    """A grid worker's open tasks: overdue first (longest overdue first), then by deadline, then oldest."""
    far = datetime.max.replace(tzinfo=now.tzinfo)
    open_ = [r for r in reports if r.is_open]
    return sorted(open_, key=lambda r: (not is_overdue(r, now), r.deadline or far, r.id))


def deadline_after(start: datetime, hours: int) -> datetime:
    """When handling is due, ``hours`` after ``start``."""
    return start + timedelta(hours=hours)


def is_overdue(report: Report, now: datetime) -> bool:
    """Open, past its deadline."""
    return report.is_open and report.deadline is not None and now > report.deadline


@dataclass(frozen=True)
class Timing:
    """When a report's timers fire: reminder at the deadline, escalation after a grace period."""

    remind_at: datetime
    escalate_at: datetime


def timers(deadline: datetime, grace_hours: int) -> Timing:
    return Timing(deadline, deadline + timedelta(hours=grace_hours))


@dataclass(frozen=True)
class Draft:
    """What the resident has entered so far; validated before a report is created."""

    category: str
    description: str
    photos: tuple[str, ...] = ()
    skip_reason: str | None = None
    location: GeoPoint | None = None
    building_id: int | None = None
    address: str | None = None
    anonymous: bool = False

    def check(self, photo_optional: bool) -> None:
        """Photos (1–5, or a reason when allowed), a place and a description are required."""
        if len(self.photos) > MAX_PHOTOS:
            raise InvalidInput(field="photos", high=MAX_PHOTOS)
        if not self.photos and not (photo_optional and self.skip_reason):
            raise InvalidInput(field="photos", low=1)
        if self.location is None and self.building_id is None and not self.address:
            raise InvalidInput(field="location")
        clean_text(self.description, DESCRIPTION_MIN, DESCRIPTION_MAX, "description")
