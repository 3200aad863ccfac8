"""满意度测评 on the dashboard (organisers): a survey's answers per question, the satisfaction index per question,
per building (groups of fewer than five respondents are not shown) and over time, and the free-text answers.

Every figure comes from ``SurveyService.results`` and ``index_over_time`` — the same computation as ``/stats
surveys`` in the bot — and the charts carry their numbers as data attributes (bot/dashboard/charts.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.dashboard import charts
from bot.dashboard.kit import CSRF_FIELD, app_of, check_csrf, render, staff, translator
from bot.dashboard.overview import communities_of
from bot.domain.campaigns import AUDIENCE_ROLES, Audience, AudienceKind
from bot.domain.errors import Forbidden
from bot.domain.residents import Community
from bot.domain.roles import Role
from bot.domain.surveys import MIN_GROUP, QuestionKind, Results, Survey, SurveyError, in_locale, parse_questions
from bot.services.surveys import SurveyDraft

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
        "withheld": results.withheld,
        "min_group": MIN_GROUP,
    }


def _listed(survey: Survey, participants: int, locale: str) -> dict[str, Any]:
    return {"id": survey.id, "title": in_locale(survey.title, locale), "status": survey.status.value,
            "participants": participants}  # fmt: skip


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


async def new_form(request: web.Request) -> web.StreamResponse:
    """An organiser's own survey, from scratch: title, times, audience, anonymity and the questions as lines."""
    person = staff(request)
    mine = [c for c in await communities_of(request, person) if person.is_organiser(c.id)]
    community = _community(request.query.get("c", ""), mine)
    return render(request, "surveys_new", communities=mine, community=community, form={}, problem=None)


async def create(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    posted = await request.post()
    check_csrf(request, posted)
    form = {k: str(v) for k, v in posted.items() if k != CSRF_FIELD}
    form["anonymous"] = "1" if form.get("anonymous") else ""
    mine = [c for c in await communities_of(request, person) if person.is_organiser(c.id)]
    community = _community(form.get("c", ""), mine)
    service = app_of(request).services.surveys
    zone = service.zone(community)
    try:
        opens = _when(form.get("opens", ""), zone) or service.now()
        closes = _when(form.get("closes", ""), zone)
        if closes is None:
            raise SurveyError("bad_time")
        title = " ".join(form.get("title", "").split())
        questions = parse_questions(form.get("questions", ""), person.locale)
        audience = _audience(form, community)
        draft = SurveyDraft(community.id, {person.locale: title}, questions, opens, closes, audience,
                            anonymous=bool(form.get("anonymous")))  # fmt: skip
        survey = await service.create(person.telegram_id, draft)
    except SurveyError as error:
        problem = app_of(request).renderer.render(person.locale, error.template, error.context)
        return render(request, "surveys_new", status=400, communities=mine, community=community, form=form,
                      problem=problem)  # fmt: skip
    raise web.HTTPSeeOther(f"/dashboard/surveys?c={community.code}&s={survey.id}")


async def end(request: web.Request) -> web.StreamResponse:
    """End a survey now (an open one closes, a scheduled one is cancelled); see SurveyService.end."""
    person = staff(request)
    posted = await request.post()
    check_csrf(request, posted)
    raw = request.match_info["survey"]
    if not raw.isdigit():
        raise web.HTTPNotFound(text="no such survey")
    service = app_of(request).services.surveys
    try:
        ended = await service.end(person.telegram_id, int(raw))
    except Forbidden:
        raise web.HTTPNotFound(text="no such survey") from None
    except SurveyError as error:
        if error.code == "no_survey":
            raise web.HTTPNotFound(text="no such survey") from None
        raise web.HTTPConflict(
            text=app_of(request).renderer.render(person.locale, error.template, error.context)
        ) from None
    mine = {c.id: c.code for c in await communities_of(request, person)}
    raise web.HTTPSeeOther(f"/dashboard/surveys?c={mine.get(ended.community_id, '')}&s={ended.id}")


def _community(code: str, mine: Sequence[Community]) -> Community:
    """The community asked for among those the person organises (the first when none is named); 404 otherwise."""
    if not mine:
        raise web.HTTPForbidden(text="organisers only")
    found = next((c for c in mine if c.code == code), None) if code else mine[0]
    if found is None:
        raise web.HTTPNotFound(text="no such community")
    return found


def _audience(form: dict[str, str], community: Community) -> Audience:
    """Every resident, the ticked buildings, or a role (volunteers, grid workers) — one of them."""
    chosen = tuple(b.id for b in community.buildings if form.get(f"b{b.id}"))
    role = form.get("role", "")
    if role and chosen:
        raise SurveyError("bad_audience")
    if role:
        if role not in {r.value for r in AUDIENCE_ROLES}:
            raise SurveyError("bad_audience")
        return Audience(AudienceKind.ROLE, role=Role(role))
    return Audience(AudienceKind.BUILDINGS, chosen) if chosen else Audience()


def _when(text: str, zone: ZoneInfo) -> datetime | None:
    """``2026-12-08T09:00`` (a datetime-local field) or ``2026-12-08 09:00`` in the community's zone; "" → None."""
    cleaned = text.strip().replace("T", " ")
    if not cleaned:
        return None
    try:
        return datetime.strptime(cleaned, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        raise SurveyError("bad_time") from None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/surveys", surveys)
    app.router.add_get("/surveys/new", new_form)
    app.router.add_post("/surveys/new", create)
    app.router.add_post("/surveys/{survey}/end", end)
