"""The overview (总览): a community's figures over a period against the programme's goals, with charts; several
communities side by side for someone who serves more than one.

Every figure comes from the services ``sicheng stats`` uses (awareness: ``AwarenessService``; reports:
``ReportStats``; volunteers: ``VolunteerDesk.figures``; points: ``PointsService.figures``): the page only lays them
out. Shares of nobody (no registered residents, no handled reports) are shown as "—" with what is missing, never 0%.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.app import App
from bot.dashboard import charts
from bot.dashboard.kit import Staff, app_of, render, staff, translator
from bot.domain.dashboard import AWARENESS_GOAL, HANDLING_GOAL_DAYS, PARTICIPATION_BAND
from bot.domain.quiz import TRACKS
from bot.domain.quiz_figures import KNOWS_MIN_ANSWERED, KNOWS_MIN_SHARE, AwarenessRow
from bot.domain.report_figures import Bucket, Figures
from bot.domain.residents import Community
from bot.domain.volunteers import PARTICIPATION_GOAL, VolunteerFigures, hours
from bot.services.points import PointsFigures
from bot.services.quiz_stats import AwarenessReport

PERIODS = ("week", "month", "custom")
DAYS = {"week": 7, "month": 30}
DAILY_UP_TO = 62  # longer periods are drawn per week
LONGEST = 3660


@dataclass(frozen=True)
class Period:
    kind: str  # week, month or custom
    first: date  # local dates, both included
    last: date
    since: datetime
    until: datetime | None  # None: up to now
    step_days: int

    @property
    def end(self) -> datetime:
        return self.until or datetime.combine(self.last + timedelta(days=1), time(), self.since.tzinfo)


@dataclass(frozen=True)
class Panel:
    """One community's figures over the period, as the services give them."""

    community: Community
    awareness: AwarenessReport
    reports: Figures
    points: PointsFigures
    volunteers: VolunteerFigures


def zone(app: App) -> ZoneInfo:
    return ZoneInfo(app.settings.locale.timezone)


def read_period(request: web.Request) -> tuple[Period, bool]:
    """The period asked for (default: the last 30 days); False when custom dates were unusable (then the default)."""
    app = app_of(request)
    tz = zone(app)
    today = app.services.report_stats.since_days(1).date()
    kind = request.query.get("period", "month")
    if kind == "custom":
        try:
            first = date.fromisoformat(request.query.get("from", ""))
            last = date.fromisoformat(request.query.get("to", "") or today.isoformat())
        except ValueError:
            return read_period_default(request), False
        first, last = min(first, last), min(max(first, last), today)
        first = max(first, last - timedelta(days=LONGEST))
        since = datetime.combine(first, time(), tz)
        until = datetime.combine(last + timedelta(days=1), time(), tz)
        span = (last - first).days + 1
        return Period("custom", first, last, since, until, 1 if span <= DAILY_UP_TO else 7), True
    if kind not in DAYS:
        kind = "month"
    since = app.services.report_stats.since_days(DAYS[kind])
    return Period(kind, since.date(), today, since, None, 1), True


def read_period_default(request: web.Request) -> Period:
    app = app_of(request)
    since = app.services.report_stats.since_days(DAYS["month"])
    return Period("month", since.date(), app.services.report_stats.since_days(1).date(), since, None, 1)


async def communities_of(request: web.Request, person: Staff) -> list[Community]:
    """The communities the person's roles cover, in the order they were added."""
    everything = await app_of(request).services.communities.list()
    scope = person.community_ids()
    return [c for c in everything if scope is None or c.id in scope]


def chosen(request: web.Request, mine: Sequence[Community]) -> Community | None:
    """The community asked for (``?c=<code>``); None: all of the person's side by side (or their only one). A code
    outside the person's communities is a 404, exactly like one that does not exist."""
    code = request.query.get("c", "")
    if not code:
        return mine[0] if len(mine) == 1 else None
    found = next((c for c in mine if c.code == code), None)
    if found is None:
        raise web.HTTPNotFound(text="no such community")
    return found


async def panel(app: App, community: Community, period: Period) -> Panel:
    services = app.services
    awareness = await services.quiz.stats.for_community(community.code, period.since, period.until)
    reports = await services.report_stats.figures(community.code, period.since, period.until)
    points = await services.points.figures(community.code, period.since, period.until)
    _, volunteers = await services.volunteer_desk.figures(community.code, period.since, period.until)
    return Panel(community, awareness, reports, points, volunteers)


# ---- numbers as the page shows them ----------------------------------------------------------------------------


def pct(share: float | None) -> str:
    return "—" if share is None else f"{round(100 * share)}%"


def days(hours_: float | None) -> str:
    return "—" if hours_ is None else f"{hours_ / 24:.1f}"


def track_shares(row: AwarenessRow) -> dict[str, float | None]:
    return {t: row.share(t) if row.has_residents else None for t in TRACKS}


def participation(row: AwarenessRow) -> float | None:
    return row.participation if row.has_residents else None


def verdict(value: float | None, goal: float, *, lower_is_better: bool = False) -> str:
    """``met``, ``short`` or ``none`` (nothing to measure): the class a figure's badge gets."""
    if value is None:
        return "none"
    return "met" if (value <= goal if lower_is_better else value >= goal) else "short"


def figures_view(p: Panel, t: Any, names: dict[str, str]) -> dict[str, Any]:
    """One community's figures, formatted, with whether each goal is met."""
    row, f, v = p.awareness.total, p.reports, p.volunteers
    shares = track_shares(row)
    part = participation(row)
    median_days = f.resolve_median_h / 24 if f.resolve_median_h is not None else None
    p90_days = f.resolve_p90_h / 24 if f.resolve_p90_h is not None else None
    volunteer_share = v.participation if v.residents else None
    return {
        "community": p.community,
        "registered": row.registered,
        "tracks": [
            {"key": k, "name": names.get(k, k), "value": pct(shares[k]), "state": verdict(shares[k], AWARENESS_GOAL)}
            for k in TRACKS
        ],
        "participation": pct(part),
        "participation_state": verdict(part, PARTICIPATION_BAND[0]),
        "participants": row.participants,
        "opened": f.total,
        "handled": f.handled,
        "overdue": f.overdue,
        "median": days(f.resolve_median_h),
        "median_state": verdict(median_days, HANDLING_GOAL_DAYS, lower_is_better=True),
        "p90": days(f.resolve_p90_h),
        "p90_state": verdict(p90_days, HANDLING_GOAL_DAYS, lower_is_better=True),
        "on_time": pct(f.on_time_share),
        "rework": pct(f.reopened_share),
        "fix_satisfied": pct(f.fix_satisfied_share),
        "fix_score": "—" if f.fix_score is None else f"{f.fix_score:.1f}",
        "fix_rated": f.fix_rated,
        "issued": p.points.issued,
        "redeemed": p.points.redeemed,
        "volunteers": v.volunteers,
        "volunteer_share": pct(volunteer_share),
        "volunteer_state": verdict(volunteer_share, PARTICIPATION_GOAL),
        "volunteer_hours": f"{hours(sum(v.minutes_by_track.values())):.1f}",
        "shifts": v.shifts,
    }


def awareness_chart(p: Panel, t: Any, names: dict[str, str]) -> Any:
    row = p.awareness.total
    shares = track_shares(row)
    items = [charts.Bar(names.get(k, k), shares[k], pct(shares[k]), t("none.residents")) for k in TRACKS]
    return charts.bars(
        items, title=t("chart.awareness"), goal=AWARENESS_GOAL, goal_label=t("goal.line", v=pct(AWARENESS_GOAL))
    )


def buildings_chart(p: Panel, t: Any) -> Any:
    """Participation per building against the 60–70% band; a building nobody registered in says so."""
    items = [
        charts.Bar(r.scope or "", participation(r), pct(participation(r)), t("none.residents"))
        for r in p.awareness.rows[1:]
    ]
    band = f"{pct(PARTICIPATION_BAND[0])}–{pct(PARTICIPATION_BAND[1])}"
    return charts.bars(items, title=t("chart.buildings"), band=PARTICIPATION_BAND, goal_label=t("goal.band", v=band))


def timeline_chart(buckets: Sequence[Bucket], period: Period, t: Any) -> Any:
    ticks = [f"{b.start.month}/{b.start.day}" for b in buckets]
    lines = [
        charts.Series("opened", t("series.opened"), [b.opened for b in buckets]),
        charts.Series("handled", t("series.handled"), [b.handled for b in buckets]),
    ]
    return charts.columns(lines, ticks, title=t("chart.timeline_week" if period.step_days > 1 else "chart.timeline"))


def compare_chart(views: Sequence[dict[str, Any]], panels: Sequence[Panel], t: Any) -> Any:
    """Several communities: participation side by side against the band."""
    items = [
        charts.Bar(p.community.name, participation(p.awareness.total), pct(participation(p.awareness.total)),
                   t("none.residents"))
        for p in panels
    ]  # fmt: skip
    band = f"{pct(PARTICIPATION_BAND[0])}–{pct(PARTICIPATION_BAND[1])}"
    return charts.bars(items, title=t("chart.compare"), band=PARTICIPATION_BAND, goal_label=t("goal.band", v=band))


def track_names(app: App, locale: str) -> dict[str, str]:
    return {track.key: track.name(locale) for track in app.services.quiz.library.tracks}


def period_query(period: Period, community: Community | None = None) -> str:
    """The query string that asks for the same period (links between pages keep it)."""
    parts = [f"c={community.code}"] if community else []
    parts.append(f"period={period.kind}")
    if period.kind == "custom":
        parts += [f"from={period.first.isoformat()}", f"to={period.last.isoformat()}"]
    return "&".join(parts)


async def overview(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    mine = await communities_of(request, person)
    period, understood = read_period(request)
    community = chosen(request, mine)

    t = translator(request, person.locale)
    names = track_names(app, person.locale)
    context: dict[str, Any] = {
        "communities": mine,
        "community": community,
        "period": period,
        "understood": understood,
        "goal": {
            "awareness": pct(AWARENESS_GOAL),
            "band": f"{pct(PARTICIPATION_BAND[0])}–{pct(PARTICIPATION_BAND[1])}",
            "days": t("goal.days", v=f"{HANDLING_GOAL_DAYS:g}"),
            "volunteers": pct(PARTICIPATION_GOAL),
        },
        "query": period_query(period, community),
        "knows": {"answered": KNOWS_MIN_ANSWERED, "share": pct(KNOWS_MIN_SHARE)},
    }  # fmt: skip
    if community is not None:
        one = await panel(app, community, period)
        buckets = await app.services.report_stats.series(community.code, period.since, period.end, period.step_days)
        context |= {
            "view": figures_view(one, t, names),
            "awareness_chart": awareness_chart(one, t, names),
            "timeline_chart": timeline_chart(buckets, period, t),
            "buildings_chart": buildings_chart(one, t),
            "quiet": sum(b.opened for b in buckets) == 0,
        }
    elif mine:
        panels = [await panel(app, c, period) for c in mine]
        views = [figures_view(p, t, names) for p in panels]
        context |= {"views": views, "compare_chart": compare_chart(views, panels, t), "track_keys": TRACKS}
    return render(request, "overview", **context)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", overview)
