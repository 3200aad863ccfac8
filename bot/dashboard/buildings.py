"""Buildings (文明楼栋): the ranking ``/rank`` shows in the bot, and a table and chart of each building's figures over
the period (registered residents, awareness per track, participation, reports, volunteer hours)."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard import charts
from bot.dashboard.kit import app_of, render, staff, translator
from bot.dashboard.overview import (
    communities_of,
    participation,
    pct,
    period_query,
    read_period,
    track_names,
    track_shares,
    verdict,
)
from bot.domain.dashboard import AWARENESS_GOAL, PARTICIPATION_BAND
from bot.domain.quiz import TRACKS
from bot.domain.volunteers import hours

RANKS = ("month", "all")


async def buildings(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    t = translator(request, person.locale)
    mine = await communities_of(request, person)
    if not mine:
        return render(request, "buildings", communities=[], community=None)
    code = request.query.get("c", "") or mine[0].code
    community = next((c for c in mine if c.code == code), None)
    if community is None:
        raise web.HTTPNotFound(text="no such community")
    period, understood = read_period(request)
    rank = request.query.get("rank", "month")
    rank = rank if rank in RANKS else "month"
    services = app.services
    ranking = await services.points.building_ranking(community.id, rank)
    awareness = await services.quiz.stats.for_community(community.code, period.since, period.until)
    reports = dict(await services.report_stats.by_building(community.code, period.since, period.until))
    _, volunteers = await services.volunteer_desk.figures(community.code, period.since, period.until)
    names = track_names(app, person.locale)
    rows = []
    for row in awareness.rows[1:]:
        shares = track_shares(row)
        found = reports.get(row.scope)
        part = participation(row)
        rows.append({
            "name": row.scope,
            "registered": row.registered,
            "tracks": [{"value": pct(shares[k]), "state": verdict(shares[k], AWARENESS_GOAL)} for k in TRACKS],
            "participation": pct(part),
            "participation_state": verdict(part, PARTICIPATION_BAND[0]),
            "opened": found.total if found else 0,
            "handled": found.handled if found else 0,
            "overdue": found.overdue if found else 0,
            "hours": f"{hours(volunteers.minutes_by_building.get(row.scope or '', 0)):.1f}",
        })  # fmt: skip
    top = max([1, *(s.points for s in ranking)])
    ranking_chart = charts.bars(
        [charts.Bar(s.name, s.points, f"{s.points}") for s in ranking], title=t("buildings.chart_rank"), top=top
    )
    items = [charts.Bar(r.scope or "", participation(r), pct(participation(r)), t("none.residents"))
             for r in awareness.rows[1:]]  # fmt: skip
    band = f"{pct(PARTICIPATION_BAND[0])}–{pct(PARTICIPATION_BAND[1])}"
    participation_chart = charts.bars(
        items, title=t("chart.buildings"), band=PARTICIPATION_BAND, goal_label=t("goal.band", v=band)
    )
    return render(
        request,
        "buildings",
        communities=mine,
        community=community,
        period=period,
        understood=understood,
        rank=rank,
        ranking=ranking,
        ranking_chart=ranking_chart,
        participation_chart=participation_chart,
        rows=rows,
        tracks=[names.get(k, k) for k in TRACKS],
        elsewhere=reports.get(None),
        query=period_query(period, community),
        goal_awareness=pct(AWARENESS_GOAL),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/buildings", buildings)
