"""The 问题台账 on the dashboard: the list with filters and thumbnails, one report's page (photos, timeline, position,
the forms for its next steps), and those steps.

Every step goes through ``ReportDesk`` with the staff member's telegram id — the same rules, history, audit lines
and notices (through the outbox) as a button in the bot. A person sees what their reach allows
(``bot.domain.report_ledger``): an organiser their communities' reports, a grid worker the reports assigned to them;
any other id gets the same 404 as a missing one. Each form posts the session's CSRF token and answers with a redirect
back to the report and a line saying what happened; a refused step leaves the report as it was and says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import BodyPartReader, web

import content
from bot.app import App
from bot.dashboard import audit, photos
from bot.dashboard.auth import PREFIX
from bot.dashboard.kit import Staff, app_of, check_csrf, query_day, render, staff
from bot.domain.errors import DomainError, Forbidden, InvalidInput, NeedsConsent, NotFound
from bot.domain.media import MAX_PHOTO_BYTES, PhotoRefused
from bot.domain.report_ledger import MAX_PAGE, PER_PAGE, LedgerFilter, Reach, reach_of
from bot.domain.reports import (
    DEADLINE_MAX_DAYS,
    NOTE_MAX,
    NOTE_MIN,
    STATUS_TYPE,
    BadDeadline,
    BadText,
    Move,
    RejectReason,
    Report,
    Status,
    StatusType,
    TransitionRefused,
    clean_note,
)
from bot.domain.residents import Resident
from bot.services.report_notices import name_of
from bot.services.report_stats import LedgerChoices, LedgerEntry, ReportFile
from content.tracks import load_tracks

FIELD_BYTES = 4096  # a text field longer than this is not a note: it is cut here and refused by its length rule
MAX_PARTS = 12  # parts of a posted form: ours have at most four
OPEN = "open"  # the state filter's value for every open status
MOVES = {m.value: m for m in Move}
# What the page offers, in this order (the bot's buttons, plus start and the organiser's close/reopen).
ORDER = (Move.ACCEPT, Move.START, Move.RESOLVE, Move.DEADLINE, Move.REASSIGN, Move.REJECT, Move.VERIFY, Move.REOPEN)
SCATTER_W, SCATTER_H, SCATTER_PAD = 320, 220, 18
SCATTER_MAX = 300  # reports drawn around this one
_SCALE_STEPS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


class TooLarge(Exception):
    """A posted form (or its photo) over the limits."""


# ---- helpers --------------------------------------------------------------------------------------------------


def _zone(app: App) -> tzinfo:
    return ZoneInfo(app.settings.locale.timezone)


def _local(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def _where(report: Report) -> str | None:
    where = report.location
    return f"{where.latitude:.5f}, {where.longitude:.5f}" if where else None


def _reach(person: Staff) -> Reach:
    return reach_of(person.resident_id, person.grants)


def _int(text: str | None, high: int = 2**62) -> int | None:
    """A positive id or number typed into a form or address, or None (never an exception)."""
    if not text or len(text) > 19 or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value <= high else None


def _tracks(locale: str) -> dict[str, str]:
    return {t.key: t.text(locale).name for t in load_tracks(content.ROOT / "tracks.yaml")}


class Words:
    """Names the bot already has for statuses, reasons and categories, in the person's language."""

    def __init__(self, app: App, locale: str) -> None:
        self._app, self.locale = app, locale
        self.tracks = _tracks(locale)

    def label(self, key: str, **context: Any) -> str:
        return self._app.renderer.label(self.locale, key, context)

    def status(self, status: Status | str) -> str:
        return self.label(f"reports.status.{Status(status).value}")

    def reason(self, reason: RejectReason | str) -> str:
        return self.label(f"reports.reject.{RejectReason(reason).value}")

    def category(self, key: str) -> str:
        try:
            return self._app.services.reports.policy.category(key).name(self.locale)
        except InvalidInput:  # a category removed from the content since
            return key

    def track_of(self, key: str) -> str | None:
        try:
            track = self._app.services.reports.policy.category(key).track
        except InvalidInput:
            return None
        return self.tracks.get(track or "")

    def ledger(self, key: str, **context: Any) -> str:
        return self.label(f"dashboard_ledger.{key}", **context)


# ---- the list -------------------------------------------------------------------------------------------------


@dataclass
class Filters:
    """The list's filters as the form shows them (``values``) and as the query runs them (``chosen``)."""

    values: dict[str, str]
    chosen: LedgerFilter
    ignored: list[str] = field(default_factory=list)
    empty: bool = False  # a filter that no report can pass (a track without categories)


def read_filters(query: Mapping[str, str], reach: Reach, choices: LedgerChoices, app: App, now: datetime) -> Filters:
    """The filters from the address, each checked against what this person may choose; a value that is not one of
    the choices is dropped and named in ``ignored`` (the page says so) rather than failing."""
    zone = _zone(app)
    values: dict[str, str] = {}
    ignored: list[str] = []
    policy = app.services.reports.policy

    def pick(name: str, ok: bool) -> bool:
        raw = query.get(name, "")
        if raw == "":
            return False
        if ok:
            values[name] = raw
            return True
        ignored.append(name)
        return False

    communities = {c.id: c for c in choices.communities}
    community = _int(query.get("community"))
    chosen_communities: tuple[int, ...] = ()
    if pick("community", community in communities):
        chosen_communities = (community or 0,)
    statuses: tuple[Status, ...] = ()
    state = query.get("state", "")
    if pick("state", state == OPEN or state in {s.value for s in Status}):
        statuses = (
            tuple(s for s, t in STATUS_TYPE.items() if t is StatusType.OPEN) if state == OPEN else (Status(state),)
        )
    categories: set[str] | None = None
    category = query.get("category", "")
    if pick("category", category in {c.key for c in policy.categories}):
        categories = {category}
    track = query.get("track", "")
    if pick("track", track in _tracks("zh_Hans")):
        in_track = {c.key for c in policy.categories if c.track == track}
        categories = in_track if categories is None else categories & in_track
    buildings = {b.id for c in choices.communities for b in c.buildings if not chosen_communities or c.id == community}
    building = _int(query.get("building"))
    building_id = building if pick("building", building in buildings) else None
    assignee_id, unassigned = None, False
    who = query.get("assignee", "")
    people = {p.id for p in choices.assignees}
    if pick("assignee", who == "none" or _int(who) in people):
        unassigned = who == "none"
        assignee_id = None if unassigned else _int(who)
    overdue = pick("overdue", query.get("overdue", "") == "1")
    start, end = query_day(query.get("from")), query_day(query.get("to"))
    pick("from", start is not None)
    pick("to", end is not None)
    if start and end and start > end:  # typed the wrong way round: the same days, in order
        start, end = end, start
        values["from"], values["to"] = start.isoformat(), end.isoformat()
    chosen = LedgerFilter(
        reach,
        communities=chosen_communities,
        statuses=statuses,
        categories=tuple(sorted(categories or ())),
        building_id=building_id,
        assignee_id=assignee_id,
        unassigned=unassigned,
        overdue_at=now if overdue else None,
        since=datetime.combine(start, time(), zone) if start else None,
        until=datetime.combine(end + timedelta(days=1), time(), zone) if end else None,
    )
    return Filters(values, chosen, ignored, empty=categories is not None and not categories)


def _options(choices: LedgerChoices, words: Words) -> dict[str, list[tuple[str, str]]]:
    several = len(choices.communities) > 1
    policy_categories = words._app.services.reports.policy.categories
    return {
        "communities": [(str(c.id), c.name) for c in choices.communities],
        "states": [(OPEN, words.ledger("filter.open"))] + [(s.value, words.status(s)) for s in Status],
        "categories": [(c.key, c.name(words.locale)) for c in policy_categories],
        "tracks": list(words.tracks.items()),
        "buildings": [
            (str(b.id), f"{c.name} · {b.name}" if several else b.name) for c in choices.communities for b in c.buildings
        ],
        "assignees": [("none", words.ledger("filter.unassigned"))]
        + [(str(p.id), name_of(p)) for p in choices.assignees],
    }


def _active(values: Mapping[str, str], options: Mapping[str, list[tuple[str, str]]], words: Words) -> list[str]:
    """The filters in use, in words, for the summary line of the (folded) filter form."""
    lists = {"community": "communities", "state": "states", "category": "categories", "track": "tracks",
             "building": "buildings", "assignee": "assignees"}  # fmt: skip
    shown = []
    for name, value in values.items():
        if name in lists:
            shown.append(dict(options[lists[name]]).get(value, value))
        elif name == "overdue":
            shown.append(words.ledger("overdue"))
        else:
            shown.append(words.ledger(f"filter.{name}_short", day=value))
    return shown


def _row(entry: LedgerEntry, words: Words, zone: tzinfo) -> dict[str, Any]:
    r = entry.report
    return {
        "id": r.id,
        "url": f"{PREFIX}/reports/{r.id}",
        "ticket": r.ticket,
        "category": words.category(r.category),
        "track": words.track_of(r.category),
        "community": entry.community.name,
        "place": entry.building or r.address or (_where(r) or "—"),
        "status": r.status.value,
        "status_label": words.status(r.status),
        "assignee": name_of(entry.assignee) if entry.assignee else "",
        "submitted": _local(r.submitted_at, zone),
        "deadline": _local(r.deadline, zone) if r.is_open else "",  # a closed report's deadline is history
        "overdue": entry.overdue,
        "description": r.description if len(r.description) <= 80 else r.description[:79] + "…",
        "thumb": photos.photo_url(r.id, "b0", thumb=True) if r.photos else None,
        "photos": len(r.photos),
    }


async def reports_list(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    reach = _reach(person)
    words = Words(app, person.locale)
    choices = await app.services.report_stats.choices(reach)
    filters = read_filters(request.query, reach, choices, app, app.services.report_stats.now())
    raw = request.query.get("page", "")
    page = MAX_PAGE if raw.isdigit() and len(raw) > len(str(MAX_PAGE)) else (_int(raw) or 1)  # huge: the last page
    if filters.empty:
        found_rows: list[dict[str, Any]] = []
        total, page, pages = 0, 1, 1
    else:
        found = await app.services.report_stats.page(filters.chosen, page, PER_PAGE)
        zone = _zone(app)
        found_rows = [_row(e, words, zone) for e in found.entries]
        total, page, pages = found.total, found.page, found.pages

    def link(number: int) -> str:
        return f"{PREFIX}/reports?" + urlencode({**filters.values, "page": str(number)})

    options = _options(choices, words)
    active = _active(filters.values, options, words)

    return render(
        request,
        "reports",
        rows=found_rows,
        total=total,
        page_no=page,
        pages=pages,
        first=(page - 1) * PER_PAGE + 1 if total else 0,
        last=min(page * PER_PAGE, total),
        prev_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if page < pages else None,
        filters=filters.values,
        filtered=bool(filters.values),
        active=active,
        ignored=[words.ledger(f"filter.{name}") for name in filters.ignored],
        options=options,
        several=len(choices.communities) > 1,
        export_url=f"{PREFIX}/exports",
    )


# ---- one report -----------------------------------------------------------------------------------------------


def _people(people: Iterable[Resident]) -> list[tuple[int, str]]:
    return [(p.id, name_of(p)) for p in people]


async def _actions(app: App, person: Staff, found: ReportFile, words: Words, zone: tzinfo) -> dict[str, Any]:
    """The forms this person gets for the report now (each step is checked again when it is posted)."""
    desk = app.services.report_desk
    report = found.report
    moves = await desk.moves(person.telegram_id, report.id)
    actions: dict[str, Any] = {m.value: None for m in ORDER}  # None: not offered
    for move in ORDER:
        if move not in moves:
            continue
        if move is Move.ACCEPT:
            _, people = await desk.assignees(person.telegram_id, report.id)
            mine = next((p.id for p in people if p.id == person.resident_id), None)
            actions["accept"] = {"people": _people(people), "default": mine}
        elif move is Move.REASSIGN:
            _, people = await desk.reassign_choices(person.telegram_id, report.id)
            actions["reassign"] = {"people": _people(people)}
        elif move is Move.REJECT:
            _, originals = await desk.duplicates(person.telegram_id, report.id)
            reasons = [(r.value, words.reason(r)) for r in RejectReason]
            actions["reject"] = {"reasons": reasons, "originals": [(o.id, o.ticket) for o in originals]}
        elif move is Move.DEADLINE:
            _, options = await desk.deadline_choices(person.telegram_id, report.id)
            today = app.services.report_stats.now().astimezone(zone).date()
            actions["deadline"] = {
                "options": [(days, until.strftime("%Y-%m-%d %H:%M")) for days, until in options],
                "min": (today + timedelta(days=1)).isoformat(),
                "max": (today + timedelta(days=DEADLINE_MAX_DAYS)).isoformat(),
            }
        elif move is Move.RESOLVE:
            actions["resolve"] = {"min": NOTE_MIN, "max": NOTE_MAX, "limit_mb": MAX_PHOTO_BYTES // (1024 * 1024)}
        else:
            actions[move.value] = True
    return actions


def _timeline(found: ReportFile, words: Words, zone: tzinfo) -> list[dict[str, Any]]:
    lines = []
    for index, line in enumerate(found.timeline):
        event = line.event
        note = event.note
        if event.action == Move.REJECT.value and note in {r.value for r in RejectReason}:
            note = words.reason(note or "")
        action = event.action if words_has(words, f"dashboard_ledger.action.{event.action}") else "other"
        lines.append(
            {
                "at": _local(event.at, zone),
                "action": event.action,
                "label": words.ledger(f"action.{action}", action=event.action),
                "actor": line.actor,
                "to": words.status(event.to_status),
                "changed": event.from_status is not None and event.from_status != event.to_status,
                "note": note,
                "photo": photos.photo_url(found.report.id, f"h{index}") if event.photo else None,
                "thumb": photos.photo_url(found.report.id, f"h{index}", thumb=True) if event.photo else None,
            }
        )
    return lines


def words_has(words: Words, key: str) -> bool:
    return words._app.renderer.has_label(words.locale, key)


def _nice(metres: float) -> int:
    return next((s for s in _SCALE_STEPS if s >= metres), _SCALE_STEPS[-1])


def scatter(current: Report, others: list[Report]) -> dict[str, Any] | None:
    """The report among the community's reports (those the person sees) by their coordinates, on a plane in
    metres around their middle: no map, only where they are relative to each other. None without coordinates."""
    if current.location is None:
        return None
    around = [r for r in others if r.location is not None and r.id != current.id][: SCATTER_MAX - 1]
    located = [*around, current]
    lat0 = sum(r.location.latitude for r in located if r.location) / len(located)
    lon0 = sum(r.location.longitude for r in located if r.location) / len(located)
    east = math.cos(math.radians(lat0)) * 111_320.0
    metres = [
        (r, (r.location.longitude - lon0) * east, (r.location.latitude - lat0) * 110_540.0)
        for r in located
        if r.location
    ]
    xs, ys = [m[1] for m in metres], [m[2] for m in metres]
    span_x, span_y = max(max(xs) - min(xs), 1.0), max(max(ys) - min(ys), 1.0)
    width, height = SCATTER_W - 2 * SCATTER_PAD, SCATTER_H - 2 * SCATTER_PAD
    scale = min(width / span_x, height / span_y, width / 60.0)  # at least 60 m across: one report is not a dot field
    mid_x, mid_y = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    bar = _nice(width / scale / 4)
    points: list[dict[str, Any]] = [
        {
            "id": r.id,
            "ticket": r.ticket,
            "x": round(SCATTER_W / 2 + (x - mid_x) * scale, 1),
            "y": round(SCATTER_H / 2 - (y - mid_y) * scale, 1),
            "east_m": round(x, 1),
            "north_m": round(y, 1),
            "current": r.id == current.id,
            "open": r.is_open,
            "url": f"{PREFIX}/reports/{r.id}",
        }
        for r, x, y in metres
    ]
    points.sort(key=lambda p: p["current"])  # the current one drawn last, on top
    return {
        "width": SCATTER_W,
        "height": SCATTER_H,
        "points": points,
        "bar_m": bar,
        "bar_px": round(bar * scale, 1),
        "count": len(points),
    }


def plan(found: ReportFile) -> dict[str, Any] | None:
    """Without coordinates: the community's buildings as a plain grid with the report's building marked."""
    buildings = found.community.buildings
    if found.report.building_id is None or not buildings:
        return None
    columns = min(3, len(buildings))
    cells = [
        {
            "name": b.name,
            "x": 8 + (i % columns) * 102,
            "y": 8 + (i // columns) * 58,
            "current": b.id == found.report.building_id,
        }
        for i, b in enumerate(buildings)
    ]
    return {"cells": cells, "width": 16 + columns * 102 - 8, "height": 16 + -(-len(buildings) // columns) * 58 - 8}


def _facts(found: ReportFile, words: Words, zone: tzinfo) -> dict[str, Any]:
    r = found.report
    return {
        "id": r.id,
        "ticket": r.ticket,
        "status": r.status.value,
        "status_label": words.status(r.status),
        "open": r.is_open,
        "overdue": found.overdue,
        "category": words.category(r.category),
        "track": words.track_of(r.category),
        "community": found.community.name,
        "building": found.building,
        "address": r.address,
        "coordinates": _where(r),
        "description": r.description,
        "reporter": name_of(found.reporter) if found.reporter else "—",
        "anonymous": r.anonymous,
        "assignee": name_of(found.assignee) if found.assignee else None,
        "submitted": _local(r.submitted_at, zone),
        "accepted": _local(r.accepted_at, zone),
        "deadline": _local(r.deadline, zone),
        "resolved": _local(r.resolved_at, zone),
        "closed": _local(r.closed_at, zone),
        "reopened": r.reopened,
        "followers": found.followers,
        "reject_reason": words.reason(r.reject_reason) if r.reject_reason else None,
        "duplicate_of": (
            {"ticket": found.duplicate_of.ticket, "url": f"{PREFIX}/reports/{found.duplicate_of.id}"}
            if found.duplicate_of
            else None
        ),
        "note": r.resolution_note,
        "skip_reason": r.skip_reason,
        "photos": [
            {"url": photos.photo_url(r.id, f"b{i}"), "thumb": photos.photo_url(r.id, f"b{i}", thumb=True)}
            for i in range(len(r.photos))
        ],
        "after": (
            {"url": photos.photo_url(r.id, "a"), "thumb": photos.photo_url(r.id, "a", thumb=True)}
            if r.after_photo
            else None
        ),
    }


async def _report_page(
    request: web.Request,
    person: Staff,
    report_id: int,
    *,
    status: int = 200,
    error: str | None = None,
    flash: str | None = None,
    warning: str | None = None,
    typed: Mapping[str, str] | None = None,
) -> web.Response:
    app = app_of(request)
    words = Words(app, person.locale)
    zone = _zone(app)
    reach = _reach(person)
    try:
        found = await app.services.report_stats.report_file(reach, report_id)
    except NotFound:
        return _missing(request)
    others = []
    if found.report.location is not None:
        chosen = LedgerFilter(reach, communities=(found.report.community_id,), located=True)
        others = [e.report for e in (await app.services.report_stats.page(chosen, 1, SCATTER_MAX)).entries]
    return render(
        request,
        "report",
        status=status,
        r=_facts(found, words, zone),
        timeline=_timeline(found, words, zone),
        actions=await _actions(app, person, found, words, zone),
        scatter=scatter(found.report, others),
        plan=plan(found),
        flash=flash,
        warning=warning,
        error=error,
        typed=dict(typed or {}),
        back=f"{PREFIX}/reports",
    )


def _missing(request: web.Request) -> web.Response:
    return render(request, "report_missing", status=404, back=f"{PREFIX}/reports")


async def report_page(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    report_id = _int(request.match_info["report"])
    if report_id is None:
        return _missing(request)
    app = app_of(request)
    words = Words(app, person.locale)
    done = request.query.get("done", "")
    flash = warning = None
    if done in MOVES:
        try:
            found = await app.services.report_stats.report_file(_reach(person), report_id)
        except NotFound:
            return _missing(request)
        assignee = name_of(found.assignee) if found.assignee else "—"
        last = found.timeline[-1].event.action if found.timeline else None
        if last == done:  # only right after the step (a link kept for later says nothing stale)
            flash = words.ledger(f"flash.{done}", ticket=found.report.ticket, assignee=assignee)
            if request.query.get("unreached") == "1":
                warning = words.ledger("flash.unreached", assignee=assignee)
    return await _report_page(request, person, report_id, flash=flash, warning=warning)


# ---- the steps ------------------------------------------------------------------------------------------------


@dataclass
class Posted:
    fields: dict[str, str]
    photo: bytes | None = None
    photo_too_large: bool = False


async def read_form(request: web.Request) -> Posted:
    """A posted form, urlencoded or multipart (the resolution with its photo), read within limits: text fields are
    cut at ``FIELD_BYTES``, a photo over the bot's limit is flagged, not read on. ``TooLarge``: the body itself is
    over the server's limit."""
    if not request.content_type.startswith("multipart/"):
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise TooLarge() from None
        return Posted({k: str(v)[:FIELD_BYTES] for k, v in form.items() if isinstance(v, str)})
    posted = Posted({})
    reader = await request.multipart()
    for _ in range(MAX_PARTS):
        part = await reader.next()
        if part is None:
            return posted
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise TooLarge()  # nested multipart: no form of ours sends one
        photo = part.filename is not None
        limit = MAX_PHOTO_BYTES if photo else FIELD_BYTES
        data = bytearray()
        while chunk := await part.read_chunk(65536):
            data.extend(chunk)
            if len(data) > limit:
                break
        if photo and part.name == "photo":
            posted.photo_too_large = len(data) > limit
            if posted.photo_too_large:
                return posted  # the rest is not read: the answer says the photo is too large
            posted.photo = bytes(data) or None
        elif not photo:
            posted.fields[part.name] = bytes(data[:limit]).decode("utf-8", errors="ignore")
    raise TooLarge()


def explain(error: DomainError, words: Words) -> tuple[int, str]:
    """The status and the words for a refused step."""
    context = error.context
    if isinstance(error, TransitionRefused):
        status = words.status(context["status"]) if context.get("status") in {s.value for s in Status} else ""
        return 409, words.ledger("error.transition", status=status)
    if isinstance(error, Forbidden):
        return 403, words.ledger("error.not_allowed")
    if isinstance(error, NeedsConsent):
        return 403, words.ledger("error.consent")
    if isinstance(error, NotFound):
        what = context.get("what")
        return 400, words.ledger("error.assignee" if what == "assignee" else "error.original")
    if isinstance(error, BadText):
        return 400, words.ledger("error.note", low=context.get("low"), high=context.get("high"),
                                 length=context.get("length"))  # fmt: skip
    if isinstance(error, BadDeadline):
        reason = context.get("reason", "format")
        return 400, words.ledger(f"error.deadline_{reason}", days=context.get("days", DEADLINE_MAX_DAYS))
    if isinstance(error, PhotoRefused):
        reason = context.get("reason", "not_image")
        return 400, words.ledger(f"error.photo_{reason}", limit_mb=context.get("limit_mb"),
                                 megapixels=context.get("megapixels"))  # fmt: skip
    return 400, words.ledger("error.invalid")


async def _step(request: web.Request, person: Staff, report_id: int, move: Move, posted: Posted) -> tuple[str, bool]:
    """Make the step through the desk; returns the flash key and whether the assignee can be told."""
    app = app_of(request)
    desk = app.services.report_desk
    tid, fields = person.telegram_id, posted.fields
    if move is Move.ACCEPT or move is Move.REASSIGN:
        assignee = _int(fields.get("assignee"))
        if assignee is None:
            raise InvalidInput(field="assignee")
        make = desk.accept if move is Move.ACCEPT else desk.reassign
        outcome = await make(tid, report_id, assignee)
        return move.value, outcome.reached
    if move is Move.REJECT:
        raw = fields.get("reason", "")
        if raw not in {r.value for r in RejectReason}:
            raise InvalidInput(field="reason")
        reason = RejectReason(raw)
        original = _int(fields.get("original")) if reason is RejectReason.DUPLICATE else None
        if reason is RejectReason.DUPLICATE and original is None:
            raise NotFound(what="report")
        await desk.reject(tid, report_id, reason, original)
    elif move is Move.START:
        await desk.start(tid, report_id)
    elif move is Move.RESOLVE:
        await desk.check(tid, report_id, Move.RESOLVE)  # refused before a photo is stored for nothing
        clean_note(fields.get("note"))
        if posted.photo_too_large:
            raise PhotoRefused("too large", reason="too_large", limit_mb=MAX_PHOTO_BYTES // (1024 * 1024))
        if posted.photo is None:
            raise PhotoRefused("no photo", reason="missing")
        key = await photos.keep_upload(request, posted.photo, app.services.report_stats.now())
        await desk.resolve(tid, report_id, key, fields.get("note", ""))
    elif move is Move.VERIFY:
        await desk.verify(tid, report_id)
    elif move is Move.REOPEN:
        await desk.reopen(tid, report_id)
    elif move is Move.DEADLINE:
        days = _int(fields.get("days"), 365)
        if days is not None:
            await desk.move_deadline(tid, report_id, days=days)
        elif fields.get("day"):
            await desk.move_deadline(tid, report_id, typed=fields.get("day", "")[:40])
        else:
            raise BadDeadline("no day", reason="format")
    return move.value, True


async def report_action(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    words = Words(app, person.locale)
    report_id = _int(request.match_info["report"])
    move = MOVES.get(request.match_info["move"])
    try:
        posted = await read_form(request)
    except TooLarge:  # nothing was read, nothing changes: the page says why
        if report_id is None:
            return _missing(request)
        return await _report_page(request, person, report_id, status=413, error=words.ledger("error.too_large"))
    check_csrf(request, posted.fields)
    action = f"dashboard.report.{move.value if move else 'unknown'}"

    async def refused(why: str) -> None:
        details = {"report": report_id or request.match_info["report"][:40], "refusal": why}
        await app.services.access.refused(person.telegram_id, action, details)

    if report_id is None or move is None:
        await refused("NotFound")
        return _missing(request)
    try:
        await app.services.report_stats.report_file(_reach(person), report_id)
    except NotFound:  # someone else's report, or none: audited like a refusal in the bot, answered like a missing one
        await refused("NotFound")
        return _missing(request)
    try:
        flash, reached = await _step(request, person, report_id, move, posted)
    except DomainError as error:
        if isinstance(error, Forbidden):
            await refused(type(error).__name__)
        status, text = explain(error, words)
        typed = {k: v for k, v in posted.fields.items() if k in ("note", "day")}
        return await _report_page(request, person, report_id, status=status, error=text, typed=typed)
    query = {"done": flash} | ({} if reached else {"unreached": "1"})
    raise web.HTTPSeeOther(f"{PREFIX}/reports/{report_id}?{urlencode(query)}")


def add_routes(app: web.Application) -> None:
    """The ledger's pages, the photos and the audit log."""
    app.router.add_get("/reports", reports_list)
    app.router.add_get("/reports/{report}", report_page)
    app.router.add_post("/reports/{report}/{move}", report_action)
    photos.add_routes(app)
    audit.add_routes(app)
