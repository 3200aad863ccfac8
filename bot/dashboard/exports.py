"""Spreadsheet downloads of the ledgers: the 问题台账, the 志愿服务时长台账, the 积分台账 and the
兑换记录, written by the very functions the command line uses (``sicheng export reports`` / ``volunteers`` /
``points`` / ``redemptions``), so a download holds what the CLI writes for the same community and days. Organisers
download their communities' ledgers (a role without a community: any); every download is audited.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

import content
from bot.app import App
from bot.dashboard.auth import PREFIX
from bot.dashboard.kit import Staff, app_of, query_day, render, staff
from bot.domain.report_ledger import reach_of
from bot.domain.residents import Community
from bot.export import table, write_xlsx
from bot.points_export import points_rows, redemption_rows, write_points_export, write_redemption_export
from bot.volunteer_export import hours_rows, write_volunteer_export
from content.tracks import load_tracks

KINDS = ("reports", "volunteers", "points", "redemptions")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def organised(app: App, person: Staff) -> list[Community]:
    """The communities whose ledgers this person may download: those they organise."""
    reach = reach_of(person.resident_id, person.grants)
    return [c for c in await app.services.communities.list() if reach.organiser_of(c.id)]


def _tracks(locale: str) -> dict[str, str]:
    return {t.key: t.text(locale).name for t in load_tracks(content.ROOT / "tracks.yaml")}


def _page(request: web.Request, mine: list[Community], status: int = 200, problem: str | None = None) -> web.Response:
    return render(
        request,
        "exports",
        status=status if mine else 403,
        communities=[(c.code, c.name) for c in mine],
        kinds=KINDS,
        problem=problem,
        base=f"{PREFIX}/exports",
    )


async def exports_page(request: web.Request) -> web.StreamResponse:
    return _page(request, await organised(app_of(request), staff(request)))


def _period(query: Mapping[str, str], zone: ZoneInfo) -> tuple[datetime | None, datetime | None, list[str]]:
    """``from``/``to`` as local days (``to`` included) → [since, until), as ``bot.export.period`` reads the CLI's
    ``--from``/``--to``; a day that is not one is named in the list."""
    wrong = [name for name in ("from", "to") if query.get(name) and query_day(query.get(name)) is None]
    start, end = query_day(query.get("from")), query_day(query.get("to"))
    if start and end and start > end:
        start, end = end, start
    since = datetime.combine(start, time(), zone) if start else None
    until = datetime.combine(end + timedelta(days=1), time(), zone) if end else None
    return since, until, wrong


async def download(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    kind = request.match_info["kind"]
    code = request.query.get("community", "")
    mine = {c.code: c for c in await organised(app, person)}
    community = mine.get(code)
    if kind not in KINDS or community is None:
        if kind in KINDS:
            await app.services.access.refused(person.telegram_id, f"dashboard.export.{kind}",
                                              {"community": code[:40]})  # fmt: skip
        return _page(request, list(mine.values()), 404 if kind not in KINDS else 403, "community")
    # The 问题台账 keeps the CLI's zone (the configured one); the others use the community's, as their CLI does.
    zone = ZoneInfo(app.settings.locale.timezone) if kind == "reports" else app.services.volunteers.zone(community)
    since, until, wrong = _period(request.query, zone)
    if wrong:
        return _page(request, list(mine.values()), 400, "day")
    locale = person.locale

    def label(key: str) -> str:
        return app.renderer.label(locale, key)

    if kind == "reports":
        rows: list[Any] = await app.services.report_stats.ledger(community.code, since, until, locale)
        lines = table(rows, label, _tracks(locale))
        data = await asyncio.to_thread(_written, lambda path: write_xlsx(path, lines, label("reports.export.sheet")))
    elif kind == "points":
        rows = points_rows(await app.services.points.ledger(community.code, since, until))
        data = await asyncio.to_thread(
            _written, lambda path: write_points_export(path, rows, fmt="xlsx", label=label, tz=zone)
        )
    elif kind == "redemptions":
        rows = redemption_rows(await app.services.points.redemption_ledger(community.code, since, until), locale)
        data = await asyncio.to_thread(
            _written, lambda path: write_redemption_export(path, rows, fmt="xlsx", label=label, tz=zone)
        )
    else:
        _, entries = await app.services.volunteer_desk.ledger(community.code, since, until)
        rows = hours_rows(entries)
        tracks = _tracks(locale)
        data = await asyncio.to_thread(
            _written,
            lambda path: write_volunteer_export(path, rows, fmt="xlsx", label=label, tz=zone, tracks=tracks),
        )
    details = {
        "community": community.code,
        "from": request.query.get("from") or None,
        "to": request.query.get("to") or None,
        "rows": len(rows),
    }
    await app.services.access.audit(person.telegram_id, f"dashboard.export.{kind}", details)
    day = app.services.report_stats.now().astimezone(zone).date().isoformat()
    response = web.Response(body=data, content_type=XLSX)
    safe = re.sub(r"[^A-Za-z0-9_-]", "", community.code) or "community"
    response.headers["Content-Disposition"] = f'attachment; filename="{kind}-{safe}-{day}.xlsx"'
    return response


def _written(write: Callable[[Path], Path]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="sicheng-export-") as folder:
        return write(Path(folder) / "ledger.xlsx").read_bytes()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/exports", exports_page)
    app.router.add_get("/exports/{kind}.xlsx", download)
