"""The report workflow's pure rules: every transition allowed and refused, who may act, geo, tickets, figures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.geo import GeoPoint, distance_m
from bot.domain.media import ImageKind, PhotoRefused, check_photo, sniff
from bot.domain.report_figures import figures, median, percentile
from bot.domain.reports import (
    STATUS_TYPE,
    TRANSITIONS,
    WHO_MAY,
    Actor,
    BadText,
    Draft,
    Move,
    NotYours,
    Report,
    Status,
    StatusType,
    TransitionRefused,
    clean_text,
    format_ticket,
    is_overdue,
    nearby,
    next_status,
    parse_ticket,
    timers,
)

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
EVERYONE = frozenset(Actor)
ALLOWED = {
    (Status.SUBMITTED, Move.ACCEPT): Status.ACCEPTED,
    (Status.SUBMITTED, Move.REJECT): Status.REJECTED,
    (Status.ACCEPTED, Move.START): Status.IN_PROGRESS,
    (Status.ACCEPTED, Move.RESOLVE): Status.RESOLVED,
    (Status.ACCEPTED, Move.REJECT): Status.REJECTED,
    (Status.IN_PROGRESS, Move.RESOLVE): Status.RESOLVED,
    (Status.IN_PROGRESS, Move.REJECT): Status.REJECTED,
    (Status.RESOLVED, Move.VERIFY): Status.VERIFIED,
    (Status.RESOLVED, Move.REOPEN): Status.ACCEPTED,
    (Status.ACCEPTED, Move.REASSIGN): Status.ACCEPTED,
    (Status.IN_PROGRESS, Move.REASSIGN): Status.IN_PROGRESS,
    (Status.ACCEPTED, Move.DEADLINE): Status.ACCEPTED,
    (Status.IN_PROGRESS, Move.DEADLINE): Status.IN_PROGRESS,
}


def make(status: Status = Status.SUBMITTED, **fields: object) -> Report:
    base = Report(1, "R-2026-000001", 1, "litter", status, reporter_id=10, description="垃圾满了溢出来",
                  submitted_at=T0, assignee_id=20)  # fmt: skip
    return replace(base, **fields)  # type: ignore[arg-type]


def test_the_table_is_exactly_the_documented_workflow() -> None:
    assert TRANSITIONS == ALLOWED


@pytest.mark.parametrize(("status", "move"), sorted(ALLOWED, key=str))
def test_every_allowed_transition(status: Status, move: Move) -> None:
    assert next_status(status, move, EVERYONE) is ALLOWED[(status, move)]


@pytest.mark.parametrize(("status", "move"), [pair for pair in product(Status, Move) if pair not in ALLOWED], ids=str)
def test_every_forbidden_transition_is_refused_with_a_clear_message(status: Status, move: Move) -> None:
    with pytest.raises(TransitionRefused) as refused:
        next_status(status, move, EVERYONE)
    assert refused.value.template == "reports/errors/transition"
    assert refused.value.context == {"move": move.value, "status": status.value}


@pytest.mark.parametrize(("move", "actor"), list(product(Move, Actor)), ids=str)
def test_who_may_make_each_move(move: Move, actor: Actor) -> None:
    status = next(s for (s, m) in ALLOWED if m is move)
    if actor in WHO_MAY[move]:
        assert next_status(status, move, frozenset({actor}))
    else:
        with pytest.raises(NotYours):
            next_status(status, move, frozenset({actor}))


def test_only_assigned_staff_or_organisers_handle_and_residents_only_their_own() -> None:
    report = make(Status.ACCEPTED)
    other_worker = report.actors(30, staff=True, organiser=False)
    assert Actor.ASSIGNEE not in other_worker
    with pytest.raises(NotYours):
        next_status(report.status, Move.RESOLVE, other_worker)
    assert next_status(report.status, Move.RESOLVE, report.actors(20, staff=True, organiser=False))
    assert next_status(report.status, Move.RESOLVE, report.actors(99, staff=False, organiser=True))
    stranger = make(Status.RESOLVED).actors(11, staff=False, organiser=False)
    assert stranger == frozenset()
    with pytest.raises(NotYours):
        next_status(Status.RESOLVED, Move.VERIFY, stranger)
    # A former grid worker who lost the role is no longer the assignee.
    assert report.actors(20, staff=False, organiser=False) == frozenset()


def test_status_types_are_kept_apart_from_labels() -> None:
    assert {s for s, t in STATUS_TYPE.items() if t is StatusType.OPEN} == {
        Status.SUBMITTED, Status.ACCEPTED, Status.IN_PROGRESS}  # fmt: skip
    assert make(Status.RESOLVED).type is StatusType.FIXED
    assert {make(s).type for s in (Status.VERIFIED, Status.REJECTED)} == {StatusType.CLOSED}


def test_haversine_distance() -> None:
    people_square, bund = GeoPoint(31.2304, 121.4737), GeoPoint(31.2400, 121.4900)
    assert 1800 < distance_m(people_square, bund) < 1950
    assert distance_m(people_square, people_square) == 0
    assert distance_m(GeoPoint(0, 0), GeoPoint(0, 1)) == pytest.approx(111_195, rel=1e-3)
    with pytest.raises(InvalidInput):
        GeoPoint(91, 0)


def test_nearby_open_reports_of_the_same_category_within_250_m_or_same_building() -> None:
    here = GeoPoint(31.2304, 121.4737)
    close = make(id=1, location=GeoPoint(31.2320, 121.4737))  # ~178 m
    far = make(id=2, location=GeoPoint(31.2330, 121.4737))  # ~289 m
    same_building = make(id=3, building_id=7)
    other_category = make(id=4, category="parking", location=here)
    closed = make(Status.VERIFIED, id=5, location=here)
    found = nearby([far, close, same_building, other_category, closed], "litter", here, 7)
    assert [n.report.id for n in found] == [1, 3]
    assert found[0].metres == pytest.approx(178, abs=2) and found[1].metres is None


def test_ticket_format_and_parse() -> None:
    assert format_ticket(2026, 123) == "R-2026-000123"
    assert format_ticket(2026, 1_234_567) == "R-2026-1234567"
    assert parse_ticket(" r-2026-000123 ") == (2026, 123)
    assert parse_ticket("R-26-1") is None
    with pytest.raises(ValueError, match="bad ticket"):
        format_ticket(2026, 0)


def test_deadlines_timers_and_overdue() -> None:
    report = make(Status.ACCEPTED, deadline=T0 + timedelta(hours=24))
    assert not is_overdue(report, T0 + timedelta(hours=24))
    assert is_overdue(report, T0 + timedelta(hours=24, seconds=1))
    assert not is_overdue(replace(report, status=Status.RESOLVED), T0 + timedelta(days=9))
    timing = timers(T0, 24)
    assert (timing.remind_at, timing.escalate_at) == (T0, T0 + timedelta(hours=24))


def test_text_bounds_and_draft_checks() -> None:
    assert clean_text("  垃圾桶\n满了  ", 2, 10, "description") == "垃圾桶 满了"
    with pytest.raises(BadText) as short:
        clean_text("脏", 5, 500, "description")
    assert short.value.context == {"field": "description", "low": 5, "high": 500, "length": 1}
    draft = Draft("litter", "垃圾桶满了溢出来", photos=("a",), building_id=1)
    draft.check(photo_optional=False)
    with pytest.raises(InvalidInput):
        replace(draft, photos=()).check(photo_optional=False)
    replace(draft, photos=(), skip_reason="hidden").check(photo_optional=True)
    with pytest.raises(InvalidInput):
        replace(draft, photos=tuple("abcdef")).check(photo_optional=False)
    with pytest.raises(InvalidInput):
        replace(draft, building_id=None).check(photo_optional=False)


def test_figures_median_p90_on_time_and_reopened() -> None:
    assert median([]) is None and median([3, 1, 2]) == 2 and median([1, 2, 3, 4]) == 2.5
    assert percentile(list(range(1, 11)), 0.9) == 9 and percentile([5], 0.9) == 5
    hours = [10, 20, 30, 60]
    reports = [
        make(Status.VERIFIED, id=i, resolved_at=T0 + timedelta(hours=h), closed_at=T0 + timedelta(hours=h + 2),
             deadline=T0 + timedelta(hours=48), reopened=int(h == 60))
        for i, h in enumerate(hours)
    ] + [make(Status.SUBMITTED, id=9, category="parking")]  # fmt: skip
    found = figures(reports)
    assert found.total == 5 and found.by_type == {"open": 1, "fixed": 0, "closed": 4}
    assert found.by_category == {"litter": 4, "parking": 1}
    assert found.resolve_median_h == 25 and found.resolve_p90_h == 60
    assert found.verify_median_h == 27
    assert found.on_time_share == 0.75 and found.reopened_share == 0.25


def test_photo_type_is_judged_by_content_not_name() -> None:
    assert sniff(b"\xff\xd8\xff\xe0rest") is ImageKind.JPEG
    assert sniff(b"\x89PNG\r\n\x1a\nrest") is ImageKind.PNG
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") is ImageKind.WEBP
    assert sniff(b"%PDF-1.7") is None and sniff(b"GIF89a") is None
    with pytest.raises(PhotoRefused) as big:
        check_photo(b"\xff\xd8\xff" + bytes(10 * 1024 * 1024))
    assert big.value.context["reason"] == "too_large"
    with pytest.raises(PhotoRefused) as bad:
        check_photo(b"<html>")
    assert bad.value.context["reason"] == "not_image"
