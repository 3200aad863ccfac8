"""满意度测评 on the dashboard (organisers): a survey's answers per question, the satisfaction index per question,
per building (groups of fewer than five respondents are not shown) and over time, and the free-text answers.

Every figure comes from ``SurveyService.results`` and ``index_over_time`` — the same computation as ``/stats
surveys`` in the bot — and the charts carry their numbers as data attributes (bot/dashboard/charts.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.dashboard import charts
from bot.dashboard.kit import app_of, render, staff, translator
from bot.dashboard.overview import communities_of
from bot.domain.surveys import QuestionKind, Results, Survey, in_locale

GOAL = 90.0  # the plan's goal: at least 90% of residents satisfied


async def surveys(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    t = translator(request, person.locale)
    mine = [c for c in await communities_of(request, person) if person.is_organiser(c.id)]
    if not mine:
        return render(request, "surveys", communities=[], community=None, surveys=[], results=None)
    code = request.query.get("c", "") or mine[0].code
    community = next((c for c in mine if c.code == code), None)
    if community is None:
        raise web.HTTPNotFound(text="no such community")
    service = app.services.surveys
    listed = [o for o in await service.for_organiser(person.telegram_id) if o.survey.community_id == community.id]
    chosen = request.query.get("s", "")
    if chosen and not chosen.isdigit():
        raise web.HTTPNotFound(text="no such survey")
    overview = next((o for o in listed if str(o.survey.id) == chosen), None) if chosen else next(iter(listed), None)
    if chosen and overview is None:
        raise web.HTTPNotFound(text="no such survey")
    timeline = await service.index_over_time(person.telegram_id, community.id)
    over_time = charts.bars(
        [charts.Bar(f"{p.day.isoformat()} {in_locale(p.title, person.locale)}", p.satisfied_share,
                    _pct(p.satisfied_share), t("surveys.no_answers")) for p in timeline],
        title=t("surveys.chart_over_time"), top=100, goal=GOAL, goal_label=t("surveys.goal", v=f"{GOAL:.0f}%"),
    )  # fmt: skip
    context: dict[str, Any] = {"results": None}
    if overview is not None:
        results = await service.results(person.telegram_id, overview.survey.id)
        context = view(results, person.locale, t)
    return render(
        request,
        "surveys",
        communities=mine,
        community=community,
        surveys=[
            {
                "id": o.survey.id,
                "title": in_locale(o.survey.title, person.locale),
                "status": o.survey.status.value,
                "participants": o.participants,
            }
            for o in listed
        ],
        chosen=overview.survey.id if overview else None,
        over_time=over_time,
        timeline=timeline,
        **context,
    )


def view(results: Results, locale: str, t: Any) -> dict[str, Any]:
    """The page's figures and charts for one survey."""
    scale = [r for r in results.questions if r.question.kind is QuestionKind.SCALE]
    by_question = charts.bars(
        [charts.Bar(in_locale(r.question.text, locale), r.index, _num(r.index), t("surveys.no_answers"))
         for r in scale],
        title=t("surveys.chart_questions"), top=100,
    )  # fmt: skip
    shown = [g for g in results.buildings if g.shown]
    by_building = charts.bars(
        [charts.Bar(g.name, g.index, _num(g.index), t("surveys.no_answers")) for g in shown],
        title=t("surveys.chart_buildings"), top=100,
    )  # fmt: skip
    questions = [
        {"text": in_locale(r.question.text, locale), "kind": r.question.kind.value, "answered": r.answered,
         "index": _num(r.index), "satisfied": _pct(r.satisfied_share), "texts": list(r.texts),
         "tallies": [{"label": in_locale(x.label, locale), "count": x.count, "share": _pct(x.share)}
                     for x in r.tallies]}
        for r in results.questions
    ]  # fmt: skip
    return {
        "results": results,
        "title": in_locale(results.survey.title, locale),
        "index": _num(results.index),
        "satisfied": _pct(results.satisfied_share),
        "questions": questions,
        "by_question": by_question,
        "by_building": by_building if shown else None,
        "hidden": results.hidden_groups,
    }


def _listed(survey: Survey, participants: int, locale: str) -> dict[str, Any]:
    return {"id": survey.id, "title": in_locale(survey.title, locale), "status": survey.status.value,
            "participants": participants}  # fmt: skip


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/surveys", surveys)
