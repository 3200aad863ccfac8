"""The audit log (操作日志) for organisers: who did what and when, allowed or refused, newest first, filtered by person
and by action, a page at a time. An organiser of some communities sees the lines of the people who live or hold a
role there; a role without a community sees every line (the command line's and the timers' too). Grid workers are
told the page is for organisers (403).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.app import App
from bot.dashboard.auth import PREFIX
from bot.dashboard.kit import Staff, app_of, render, staff
from bot.domain.audit import AUDIT_PER_PAGE, AuditQuery
from bot.domain.roles import Role
from bot.services.report_notices import name_of

DETAILS_SHOWN = 240  # characters of a line's details on the page


def audit_scope(person: Staff) -> frozenset[int] | bool | None:
    """The communities whose lines the person sees (None: all); False: not an organiser anywhere."""
    organiser = [g for g in person.grants if g.role is Role.ORGANISER]
    if not organiser:
        return False
    if any(g.community_id is None for g in organiser):
        return None
    return frozenset(g.community_id for g in organiser if g.community_id is not None)


def _number(text: str | None) -> int | None:
    if not text or len(text) > 19 or not text.lstrip("-").isdigit():
        return None
    return int(text)


def action_label(app: App, locale: str, action: str) -> str | None:
    """Report steps in words ("问题：受理并指派"); other actions are shown by their code only."""
    for prefix, key in (("report.", "report_action"), ("dashboard.report.", "dashboard_action")):
        move = action.removeprefix(prefix)
        name = f"dashboard_ledger.action.{move}"
        if action.startswith(prefix) and app.renderer.has_label(locale, name):
            words = app.renderer.label(locale, name)
            return app.renderer.label(locale, f"dashboard_ledger.audit.{key}", {"action": words})
    return None


def _details(details: dict[str, Any]) -> str:
    text = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= DETAILS_SHOWN else text[: DETAILS_SHOWN - 1] + "…"


async def audit_page(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    scope = audit_scope(person)
    if scope is False:
        return render(request, "audit", status=403, refused=True)
    communities = scope if isinstance(scope, frozenset) else None
    zone = ZoneInfo(app.settings.locale.timezone)
    values: dict[str, str] = {}
    actor = _number(request.query.get("actor"))
    action = request.query.get("action", "")[:64] or None
    page = max(1, min(_number(request.query.get("page")) or 1, 100_000))
    async with app.uow() as uow:
        actions, actors = await uow.audit.choices(AuditQuery(communities))
        if actor is not None and actor in actors:
            values["actor"] = str(actor)
        else:
            actor = None
        if action is not None and action in actions:
            values["action"] = action
        else:
            action = None
        query = AuditQuery(communities, actor, action)
        lines, total = await uow.audit.search(query, (page - 1) * AUDIT_PER_PAGE, AUDIT_PER_PAGE)
        pages = max(1, -(-total // AUDIT_PER_PAGE))
        if page > pages:
            page = pages
            lines, total = await uow.audit.search(query, (page - 1) * AUDIT_PER_PAGE, AUDIT_PER_PAGE)
        names: dict[int, str] = {}
        for tid in {*actors, *(line.actor_telegram_id for line in lines if line.actor_telegram_id)}:
            names[tid] = name_of(await uow.residents.get_by_telegram_id(tid))
            if names[tid] == "—":
                names[tid] = f"ID {tid}"

    def link(number: int) -> str:
        return f"{PREFIX}/audit?" + urlencode({**values, "page": str(number)})

    rows = [
        {
            "at": line.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": names.get(line.actor_telegram_id, "") if line.actor_telegram_id else "",
            "actor_id": line.actor_telegram_id,
            "action": line.action,
            "label": action_label(app, person.locale, line.action),
            "allowed": line.allowed,
            "details": _details(line.details),
            "report": line.details.get("report") if isinstance(line.details.get("report"), str) else None,
        }
        for line in lines
    ]
    return render(
        request,
        "audit",
        refused=False,
        rows=rows,
        total=total,
        page_no=page,
        pages=pages,
        prev_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if page < pages else None,
        filters=values,
        actions=actions,
        actors=sorted(((str(a), names.get(a, str(a))) for a in actors), key=lambda p: p[1]),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/audit", audit_page)
