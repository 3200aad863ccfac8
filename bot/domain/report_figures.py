"""Figures of the 问题台账 per community and period: counts, handling times, on-time and reopened shares."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.reports import Report, Status, StatusType, is_overdue


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in 0–1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float | None:
    """The middle value (mean of the two middle ones for an even count)."""
    if not values:
        return None
    ordered, mid = sorted(values), len(values) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _hours(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() / 3600 if end else None


@dataclass(frozen=True)
class Figures:
    total: int
    by_type: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    resolve_median_h: float | None = None
    resolve_p90_h: float | None = None
    verify_median_h: float | None = None
    verify_p90_h: float | None = None
    on_time_share: float | None = None
    reopened_share: float | None = None
    overdue: int = 0  # open and past the deadline, as of ``now`` (0 when figures were made without one)
    # Satisfaction with the fix: reporters' 1–5 ratings, asked once a report is verified (bot/services/surveys.py).
    fix_rated: int = 0
    fix_score: float | None = None  # the mean rating, 1–5
    fix_satisfied_share: float | None = None  # share of ratings of 4 or 5

    @property
    def handled(self) -> int:
        """Fixed or closed (verified, or not accepted): no longer waiting for the staff."""
        return self.by_type.get(StatusType.FIXED.value, 0) + self.by_type.get(StatusType.CLOSED.value, 0)


def figures(
    reports: Iterable[Report], now: datetime | None = None, fix_scores: Mapping[int, int] | None = None
) -> Figures:
    """Counts by status type, status and category, and the handling-time figures of the period; with ``now``, how
    many are overdue; with ``fix_scores`` (report id → the reporter's 1–5), the satisfaction with the fix."""
    items = list(reports)
    ratings = [fix_scores[r.id] for r in items if fix_scores and r.id in fix_scores]
    to_resolve = [h for r in items if (h := _hours(r.submitted_at, r.resolved_at)) is not None]
    verified = [r for r in items if r.status is Status.VERIFIED]
    to_verify = [h for r in verified if (h := _hours(r.submitted_at, r.closed_at)) is not None]
    handled = [r for r in items if r.resolved_at is not None and r.deadline is not None]
    types = Counter(r.type.value for r in items)
    # A reopened report has no resolved_at until it is fixed again, but it was fixed once: count it.
    fixed_once = [r for r in items if r.resolved_at is not None or r.reopened]
    on_time = sum(1 for r in handled if r.resolved_at and r.deadline and r.resolved_at <= r.deadline)
    return Figures(
        total=len(items),
        by_type={t.value: types.get(t.value, 0) for t in StatusType},
        by_status=dict(Counter(r.status.value for r in items)),
        by_category=dict(Counter(r.category for r in items).most_common()),
        resolve_median_h=median(to_resolve),
        resolve_p90_h=percentile(to_resolve, 0.9),
        verify_median_h=median(to_verify),
        verify_p90_h=percentile(to_verify, 0.9),
        on_time_share=share(on_time, len(handled)),
        reopened_share=share(sum(1 for r in fixed_once if r.reopened), len(fixed_once)),
        overdue=sum(1 for r in items if is_overdue(r, now)) if now is not None else 0,
        fix_rated=len(ratings),
        fix_score=round(sum(ratings) / len(ratings), 2) if ratings else None,
        fix_satisfied_share=share(sum(1 for v in ratings if v >= 4), len(ratings)),
    )


@dataclass(frozen=True)
class Bucket:
    """Reports of a period over one stretch of it (a day or a week): opened, and handled (fixed or closed)."""

    start: datetime
    opened: int
    handled: int


def handled_at(report: Report) -> datetime | None:
    """When the staff were done with it: fixed (resolved), or closed without a fix (not accepted)."""
    return report.resolved_at or (report.closed_at if report.type is StatusType.CLOSED else None)


def series(reports: Iterable[Report], starts: Sequence[datetime], end: datetime) -> list[Bucket]:
    """Per stretch [starts[i], starts[i+1]) (the last one up to ``end``): reports submitted in it, and reports handled
    in it."""
    items = list(reports)
    bounds = [*starts[1:], end]

    def count(moments: Sequence[datetime | None], start: datetime, stop: datetime) -> int:
        return sum(1 for m in moments if m is not None and start <= m < stop)

    opened = [r.submitted_at for r in items]
    handled = [handled_at(r) for r in items]
    return [
        Bucket(start, count(opened, start, stop), count(handled, start, stop))
        for start, stop in zip(starts, bounds, strict=True)
    ]
