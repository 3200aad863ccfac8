"""Who sees which report on the dashboard (``Reach``), and the position chart's geometry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.dashboard.ledger import SCATTER_H, SCATTER_W, scatter
from bot.domain.geo import GeoPoint
from bot.domain.report_ledger import reach_of
from bot.domain.reports import Report, Status
from bot.domain.roles import Role, RoleGrant

ME = 7


def report(report_id: int, where: tuple[float, float] | None, status: Status = Status.SUBMITTED) -> Report:
    return Report(
        id=report_id,
        ticket=f"R-2026-{report_id:06d}",
        community_id=1,
        category="litter",
        status=status,
        reporter_id=1,
        description="垃圾桶满了",
        submitted_at=datetime(2026, 11, 26, tzinfo=UTC),
        location=GeoPoint(*where) if where else None,
    )


def test_an_organiser_sees_every_report_of_their_communities_only() -> None:
    reach = reach_of(ME, [RoleGrant(Role.ORGANISER, 1)])
    assert reach.covers(1, None) and reach.covers(1, 99)
    assert not reach.covers(2, ME)
    assert reach.communities([1, 2, 3]) == [1]


def test_a_grid_worker_sees_only_the_reports_assigned_to_them() -> None:
    reach = reach_of(ME, [RoleGrant(Role.GRID_WORKER, 1)])
    assert reach.covers(1, ME)
    assert not reach.covers(1, None) and not reach.covers(1, 99)
    assert not reach.covers(2, ME)  # assigned to them, but in a community where they are nobody
    assert not reach.organiser_of(1)


def test_a_role_without_community_reaches_every_community() -> None:
    organiser = reach_of(ME, [RoleGrant(Role.ORGANISER, None)])
    assert organiser.covers(42, None) and organiser.communities([1, 2]) == [1, 2]
    worker = reach_of(ME, [RoleGrant(Role.GRID_WORKER, None)])
    assert worker.covers(42, ME) and not worker.covers(42, None)


def test_residents_and_volunteers_reach_nothing() -> None:
    reach = reach_of(ME, [RoleGrant(Role.RESIDENT, 1), RoleGrant(Role.VOLUNTEER, 1)])
    assert reach.nothing and not reach.covers(1, ME)


def test_the_position_chart_keeps_north_up_and_distances_to_scale() -> None:
    here = report(1, (31.2304, 121.4737))
    north = report(2, (31.2313, 121.4737))  # ≈ 100 m north
    east = report(3, (31.2304, 121.4747), Status.VERIFIED)  # ≈ 95 m east

    drawn = scatter(here, [north, east])

    assert drawn is not None
    points = {p["id"]: p for p in drawn["points"]}
    assert points[2]["y"] < points[1]["y"] and points[2]["x"] == pytest.approx(points[1]["x"])
    assert points[3]["x"] > points[1]["x"] and points[3]["y"] == pytest.approx(points[1]["y"])
    assert points[2]["north_m"] - points[1]["north_m"] == pytest.approx(99.5, abs=1)
    per_metre = drawn["bar_px"] / drawn["bar_m"]
    assert (points[1]["y"] - points[2]["y"]) / per_metre == pytest.approx(99.5, abs=1)
    assert all(0 <= p["x"] <= SCATTER_W and 0 <= p["y"] <= SCATTER_H for p in drawn["points"])
    assert [p["current"] for p in drawn["points"]][-1] is True  # drawn last, on top
    assert points[3]["open"] is False


def test_a_report_without_coordinates_has_no_position_chart() -> None:
    assert scatter(report(1, None), [report(2, (31.23, 121.47))]) is None
    alone = scatter(report(1, (31.23, 121.47)), [])
    assert alone is not None and alone["points"][0]["x"] == SCATTER_W / 2
