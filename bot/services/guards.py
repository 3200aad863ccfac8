"""Checks several services make before they act: the actor organises the community (a refusal audited once), and
the community exists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.errors import Forbidden, NotFound
from bot.domain.residents import Community, Resident
from bot.domain.roles import Role
from bot.services.ports import UnitOfWork


async def organiser_of(
    uow: UnitOfWork,
    now: datetime,
    telegram_id: int,
    community_id: int,
    action: str,
    *,
    audit: bool = True,
    details: dict[str, Any] | None = None,
) -> Resident:
    """The actor, who must organise ``community_id`` (a role elsewhere is not enough). A refusal is written to the
    audit log here, committed, and raised as already audited (the core writes nothing more); ``audit=False`` for
    reads that only decide what to show."""
    person = await uow.residents.get_by_telegram_id(telegram_id)
    if person is None or not person.has_role(Role.ORGANISER, community_id):
        refused = Forbidden(role=Role.ORGANISER.value)
        if not audit:
            raise refused
        await uow.audit.add(now, telegram_id, action, False, {"community": community_id, **(details or {})})
        await uow.commit()
        raise refused.audited()
    return person


async def community_by_id(uow: UnitOfWork, community_id: int | None) -> Community:
    community = await uow.communities.get(community_id) if community_id is not None else None
    if community is None:
        raise NotFound(what="community")
    return community
