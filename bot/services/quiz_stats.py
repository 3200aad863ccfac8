"""Awareness figures (知晓率) per community and building: who knows each track, participation, average score."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.errors import NotFound
from bot.domain.quiz_figures import AwarenessRow, awareness
from bot.domain.residents import Community
from bot.domain.roles import Role
from bot.services.points import member, require_role
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

WINDOW_DAYS = 30


@dataclass(frozen=True)
class AwarenessReport:
    """Who knows each track (all their answers so far) and who took part in the window (the last ``days`` days, or
    a chosen period)."""

    community: Community
    rows: list[AwarenessRow]
    days: int = WINDOW_DAYS

    @property
    def total(self) -> AwarenessRow:
        return self.rows[0]

    def building(self, name: str) -> AwarenessRow | None:
        return next((r for r in self.rows[1:] if r.scope == name), None)


class AwarenessService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def for_community(
        self, code: str, since: datetime | None = None, until: datetime | None = None
    ) -> AwarenessReport:
        """Figures of the community with this code (the command line, the dashboard); participation counts the
        answers of [since, until) when given, else of the last 30 days."""
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(code)
            if community is None:
                raise NotFound(what="community")
            return await self._report(uow, community, since, until)

    async def for_organiser(self, telegram_id: int) -> AwarenessReport:
        """Figures of the organiser's own community (role re-checked for that community)."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            assert resident.community_id is not None
            await require_role(uow, telegram_id, Role.ORGANISER, resident.community_id)
            community = await uow.communities.get(resident.community_id)
            if community is None:
                raise NotFound(what="community")
            return await self._report(uow, community)

    async def _report(
        self, uow: UnitOfWork, community: Community, since: datetime | None = None, until: datetime | None = None
    ) -> AwarenessReport:
        now = self._clock()
        start = since or now - timedelta(days=WINDOW_DAYS)
        people = await uow.quiz.progress(community.id, start, until)
        days = WINDOW_DAYS if since is None else max(1, round(((until or now) - start).total_seconds() / 86400))
        return AwarenessReport(community, awareness(people, [b.name for b in community.buildings]), days)
