"""The 志愿服务时长台账 as a spreadsheet: one line per booked shift, and (xlsx) totals per volunteer and per activity.

Hours are numbers with one decimal (Excel can add them up); times are local to the community's zone. CSV holds the
lines only, in UTF-8 with a byte-order mark so that Excel shows the Chinese text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Literal

from bot.domain.volunteers import Activity, Booking, BookingStatus, HoursStatus, Person, Shift, hours, points_for
from bot.export import local_time, write_book, write_csv

Label = Callable[[str], str]
Cell = str | int | float
Format = Literal["xlsx", "csv"]

APPROVED = "approved"
PENDING = "pending"
NO_SHOW = "no_show"
STATUSES = (APPROVED, PENDING, NO_SHOW)

LINE_COLUMNS = (
    "volunteer", "building", "activity", "track", "starts_at", "ends_at", "checked_in_at", "checked_out_at", "hours",
    "points", "status", "correction",
)  # fmt: skip
VOLUNTEER_COLUMNS = ("volunteer", "building", "shifts", "hours", "points", "pending", "no_shows")
ACTIVITY_COLUMNS = ("activity", "track", "volunteers", "shifts", "hours", "points", "pending", "no_shows")
WIDTHS = {"volunteer": 14, "activity": 30, "track": 16, "correction": 36, "building": 12}


@dataclass(frozen=True)
class HoursRow:
    """One volunteer on one shift: served and approved, checked in and waiting for approval, or a no-show.

    ``minutes`` and ``points`` are the approved ones (the proposed ones while pending; the totals count approved
    rows only); ``status`` is ``approved``, ``pending`` or ``no_show``; ``track`` is a track code or name (see
    ``tracks`` of ``write_volunteer_export``). ``resident_id`` keeps two volunteers of the same name apart."""

    volunteer: str
    building: str
    activity: str
    track: str | None
    starts_at: datetime
    ends_at: datetime
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    minutes: int | None
    points: int
    status: str
    correction: str | None = None
    resident_id: int | None = None
    activity_id: int | None = None


def hours_rows(entries: Iterable[tuple[Booking, Shift, Activity, Person]]) -> list[HoursRow]:
    """Lines of the ledger from ``VolunteerDesk.ledger``: approved service, checked-in service waiting for approval
    (its proposed minutes and points) and no-shows; any other booking is left out. Points are the shift's rate for
    the minutes (what the volunteer earned before any daily cap of the points rules)."""
    rows = []
    for booking, shift, activity, person in entries:
        if booking.status is BookingStatus.NO_SHOW:
            status, minutes = NO_SHOW, None
        elif booking.hours is HoursStatus.APPROVED:
            status, minutes = APPROVED, booking.minutes or 0
        elif booking.hours is HoursStatus.PENDING:
            status, minutes = PENDING, booking.minutes
        else:
            continue
        rows.append(
            HoursRow(
                volunteer=person.name or "—",
                building=person.building or "",
                activity=activity.title,
                track=activity.track,
                starts_at=shift.starts_at,
                ends_at=shift.ends_at,
                checked_in_at=booking.checked_in_at,
                checked_out_at=booking.checked_out_at,
                minutes=minutes,
                points=points_for(minutes or 0, shift.points_per_hour),
                status=status,
                correction=booking.correction,
                resident_id=person.resident_id,
                activity_id=activity.id,
            )
        )
    return rows


def write_volunteer_export(
    path: Path,
    rows: Sequence[HoursRow],
    *,
    fmt: Format,
    label: Label,
    tz: tzinfo,
    tracks: Mapping[str, str] | None = None,
) -> Path:
    """Write the ledger to ``path``: xlsx with three sheets (lines, per volunteer, per activity) or csv (lines).

    ``label`` maps a full key (``volunteer_export.hours``) to text; ``tracks`` maps a track code to its name."""
    names = dict(tracks or {})
    ordered = sorted(rows, key=lambda r: (r.starts_at, r.activity, r.volunteer))
    lines = line_table(ordered, label, tz, names)
    if fmt == "csv":
        return write_csv(path, lines)
    if fmt != "xlsx":
        raise ValueError(f"unknown format {fmt!r}")
    sheets = (
        (label("volunteer_export.sheet_lines"), LINE_COLUMNS, lines),
        (label("volunteer_export.sheet_volunteers"), VOLUNTEER_COLUMNS, volunteer_table(ordered, label)),
        (label("volunteer_export.sheet_activities"), ACTIVITY_COLUMNS, activity_table(ordered, label, names)),
    )
    return write_book(path, sheets, WIDTHS)


def line_table(rows: Sequence[HoursRow], label: Label, tz: tzinfo, tracks: Mapping[str, str]) -> list[list[Cell]]:
    """Header and one line per volunteer and shift."""
    header: list[Cell] = [label(f"volunteer_export.{c}") for c in LINE_COLUMNS]
    return [header, *(_line(r, label, tz, tracks) for r in rows)]


def _line(r: HoursRow, label: Label, tz: tzinfo, tracks: Mapping[str, str]) -> list[Cell]:
    return [
        r.volunteer,
        r.building,
        r.activity,
        _track(r.track, tracks),
        local_time(r.starts_at, tz),
        local_time(r.ends_at, tz),
        local_time(r.checked_in_at, tz),
        local_time(r.checked_out_at, tz),
        "" if r.minutes is None else hours(r.minutes),
        r.points,
        _status(r.status, label),
        r.correction or "",
    ]


def volunteer_table(rows: Sequence[HoursRow], label: Label) -> list[list[Cell]]:
    """Header, one line per volunteer (approved shifts, hours, points; pending and no-shows counted) and a total."""
    groups: dict[tuple[int | None, str, str], _Tally] = {}
    for r in rows:
        key = (r.resident_id, r.volunteer, r.building)
        groups.setdefault(key, _Tally()).add(r)
    header: list[Cell] = [label(f"volunteer_export.{c}") for c in VOLUNTEER_COLUMNS]
    body = [[name, building, *tally.cells()] for (_, name, building), tally in groups.items()]
    body.sort(key=lambda line: (-float(line[3]), str(line[0])))
    total = _Tally.of(rows)
    return [header, *body, [label("volunteer_export.total"), "", *total.cells()]]


def activity_table(rows: Sequence[HoursRow], label: Label, tracks: Mapping[str, str]) -> list[list[Cell]]:
    """Header, one line per activity (distinct volunteers served, approved shifts, hours, points...) and a total."""
    groups: dict[tuple[int | None, str, str | None], _Tally] = {}
    for r in rows:
        groups.setdefault((r.activity_id, r.activity, r.track), _Tally()).add(r)
    header: list[Cell] = [label(f"volunteer_export.{c}") for c in ACTIVITY_COLUMNS]
    body = [
        [title, _track(track, tracks), tally.volunteers, *tally.cells()] for (_, title, track), tally in groups.items()
    ]
    body.sort(key=lambda line: (-float(line[4]), str(line[0])))
    total = _Tally.of(rows)
    return [header, *body, [label("volunteer_export.total"), "", total.volunteers, *total.cells()]]


class _Tally:
    def __init__(self) -> None:
        self.shifts = self.minutes = self.points = self.pending = self.no_shows = 0
        self._people: set[tuple[int | None, str, str]] = set()

    @classmethod
    def of(cls, rows: Sequence[HoursRow]) -> _Tally:
        tally = cls()
        for r in rows:
            tally.add(r)
        return tally

    def add(self, r: HoursRow) -> None:
        if r.status == APPROVED:
            self.shifts += 1
            self.minutes += r.minutes or 0
            self.points += r.points
            self._people.add((r.resident_id, r.volunteer, r.building))
        elif r.status == PENDING:
            self.pending += 1
        elif r.status == NO_SHOW:
            self.no_shows += 1

    @property
    def volunteers(self) -> int:
        """Volunteers with approved service."""
        return len(self._people)

    def cells(self) -> list[Cell]:
        return [self.shifts, hours(self.minutes), self.points, self.pending, self.no_shows]


def _status(status: str, label: Label) -> str:
    return label(f"volunteer_export.status_{status}") if status in STATUSES else status


def _track(track: str | None, tracks: Mapping[str, str]) -> str:
    return tracks.get(track, track) if track else "—"
