"""居民提案制 on the dashboard: the proposals board of a community (each state, support against the threshold, the
vote, money planned and spent) and one proposal's accountability view (its timeline, the tally, milestones with their
photos, and every payment: 资金使用公示), for the community's grid workers and organisers.

A proposal outside the person's communities is a 404, exactly like one that does not exist; so is its photo.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.dashboard.auth import PREFIX
from bot.dashboard.kit import Staff, app_of, render, staff
from bot.dashboard.overview import communities_of
from bot.domain.proposals import Accountability, Proposal, ProposalStatus, yuan
from bot.domain.residents import Community

S = ProposalStatus
# The board's order: what needs someone's action first, then what residents are doing, then what is settled.
ORDER = (S.SUBMITTED, S.VOTED, S.VOTING, S.COLLECTING, S.ACCEPTED, S.NOT_ACCEPTED, S.REJECTED, S.EXPIRED)
_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


async def board(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    mine = await communities_of(request, person)
    if not mine:
        return render(request, "proposals", communities=[], community=None, sections=[], totals={})
    code = request.query.get("c", "") or mine[0].code
    community = next((c for c in mine if c.code == code), None)
    if community is None:
        raise web.HTTPNotFound(text="no such community")
    service = app.services.proposals
    zone = service.zone(community)
    found = await service.in_community(community.id)
    spent: dict[int, int] = {}
    for proposal in found:
        if proposal.status is S.ACCEPTED:
            record = await service.record(proposal.id)
            spent[proposal.id] = record[1].spent_fen if record else 0
    sections = [
        {"status": status.value, "rows": [_row(p, zone, spent.get(p.id)) for p in found if p.status is status]}
        for status in ORDER
    ]
    totals = {
        "proposals": len(found),
        "accepted": sum(1 for p in found if p.status is S.ACCEPTED),
        "budget": yuan(sum(p.budget_fen or 0 for p in found if p.status is S.ACCEPTED)),
        "spent": yuan(sum(spent.values())),
    }
    return render(request, "proposals", communities=mine, community=community, sections=sections, totals=totals)


async def one(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    proposal, account, community = await _visible(request, person)
    zone = app.services.proposals.zone(community)
    milestones = [
        {"note": m.note, "at": _local(m.at, zone), "photo": f"{PREFIX}/proposals/{proposal.id}/photos/m{i}"
         if m.photo else None}
        for i, m in enumerate(account.milestones)
    ]  # fmt: skip
    expenses = [
        {"amount": yuan(e.amount_fen), "purpose": e.purpose, "at": _local(e.at, zone)} for e in account.expenses
    ]
    return render(
        request,
        "proposals_one",
        community=community,
        p=_row(proposal, zone, account.spent_fen if proposal.status is S.ACCEPTED else None),
        description=proposal.description,
        reason=proposal.reason,
        photo=f"{PREFIX}/proposals/{proposal.id}/photos/p" if proposal.photo else None,
        timeline=_timeline(proposal, zone),
        milestones=milestones,
        expenses=expenses,
        over_budget=account.over_budget,
    )


async def photo(request: web.Request) -> web.StreamResponse:
    """A proposal's photo (``p``) or a milestone's (``m<n>``), for staff of its community only."""
    person = staff(request)
    proposal, account, _ = await _visible(request, person)
    slot = request.match_info["slot"]
    key: str | None = None
    if slot == "p":
        key = proposal.photo
    elif slot.startswith("m") and slot[1:].isdigit() and len(slot) <= 5 and int(slot[1:]) < len(account.milestones):
        key = account.milestones[int(slot[1:])].photo
    if key is None:
        raise web.HTTPNotFound()
    try:
        data = await app_of(request).services.reports.photos.store.get(key)
    except (FileNotFoundError, ValueError):
        raise web.HTTPNotFound() from None
    response = web.Response(body=data, content_type=_TYPES.get(key[key.rfind(".") :].lower(), "image/jpeg"))
    response.headers["Cache-Control"] = "private, max-age=600"
    return response


async def _visible(request: web.Request, person: Staff) -> tuple[Proposal, Accountability, Community]:
    raw = request.match_info["proposal"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    record = await app_of(request).services.proposals.record(int(raw))
    if record is None:
        raise web.HTTPNotFound()
    proposal, account = record
    community = next((c for c in await communities_of(request, person) if c.id == proposal.community_id), None)
    if community is None or not person.is_grid_worker(community.id):
        raise web.HTTPNotFound()
    return proposal, account, community


def _row(proposal: Proposal, zone: ZoneInfo, spent_fen: int | None) -> dict[str, Any]:
    return {
        "id": proposal.id,
        "title": proposal.title,
        "track": proposal.track,
        "status": proposal.status.value,
        "supports": proposal.supports,
        "threshold": proposal.threshold,
        "votes": proposal.tally.to_json(),
        "cost": yuan(proposal.cost_fen),
        "budget": yuan(proposal.budget_fen) if proposal.budget_fen is not None else None,
        "spent": yuan(spent_fen) if spent_fen is not None else None,
        "created": _local(proposal.created_at, zone),
        "ends": _local(proposal.vote_ends_at if proposal.status is S.VOTING else proposal.collect_ends_at, zone),
    }


def _timeline(proposal: Proposal, zone: ZoneInfo) -> list[tuple[str, str]]:
    steps = [
        ("submitted", proposal.created_at),
        ("reviewed", proposal.reviewed_at),
        ("collect_ends", proposal.collect_ends_at),
        ("vote_starts", proposal.vote_starts_at),
        ("vote_ends", proposal.vote_ends_at),
        ("closed", proposal.closed_at),
        ("decided", proposal.decided_at),
    ]
    return [(name, _local(at, zone)) for name, at in steps if at is not None]


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/proposals", board)
    app.router.add_get("/proposals/{proposal}", one)
    app.router.add_get("/proposals/{proposal}/photos/{slot}", photo)
