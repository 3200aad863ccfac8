"""Use cases for communities, their buildings and linked group chats."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from bot.domain.errors import GroupLinkedElsewhere, InvalidInput, NotFound
from bot.domain.residents import Building, Community, valid_building_code, valid_community_code
from bot.domain.roles import Role
from bot.services.ports import UnitOfWork, UnitOfWorkFactory

GROUP_PURPOSES = ("residents", "staff")


class CommunityService:
    """Communities change a few times a year but are read on almost every update: storage keeps them in memory and
    checks, by a revision every write changes, that its copy is current (a change by any process, the CLI
    included, is seen by the very next update)."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def list(self) -> list[Community]:
        """All communities with their buildings."""
        async with self._uow() as uow:
            return await uow.communities.list()

    async def get(self, community_id: int) -> Community:
        """One community, or NotFound."""
        community = next((c for c in await self.list() if c.id == community_id), None)
        if community is None:
            raise NotFound(what="community")
        return community

    async def by_code(self, code: str) -> Community | None:
        """The community a poster's code names, if any."""
        return next((c for c in await self.list() if c.code == code), None)

    async def add(self, code: str, name: str, buildings: Iterable[tuple[str, str]] = ()) -> Community:
        """Create a community (and buildings) in one transaction; codes are checked for deep links."""
        if not valid_community_code(code) or not name.strip():
            raise InvalidInput(field="code", value=code)
        async with self._uow() as uow:
            if await uow.communities.get_by_code(code) is not None:
                raise InvalidInput(field="code", value=code, reason="exists")
            community = await uow.communities.add(code, name.strip())
            for b_code, b_name in buildings:
                await self._add_building(uow, community.id, b_code, b_name)
            await uow.commit()
        return await self.get(community.id)

    async def add_building(self, community_code: str, code: str, name: str) -> Building:
        """Add a building to an existing community."""
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community")
            if community.building(code) is not None:
                raise InvalidInput(field="building", value=code, reason="exists")
            building = await self._add_building(uow, community.id, code, name)
            await uow.commit()
        return building

    async def link_group(
        self, chat_id: int, community_code: str, title: str, purpose: str, actor: int | None = None
    ) -> Community:
        """Link a Telegram group to a community: a residents' group, or the staff handling group.

        A group already linked to another community moves only for someone who organises both (or every)
        community (``actor``; None: an operator at the command line); a refused attempt is audited.
        """
        if purpose not in GROUP_PURPOSES:
            raise InvalidInput(field="purpose", value=purpose)
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community")
            current = await uow.groups.get_community_id(chat_id)
            if actor is not None and current is not None and current != community.id:
                person = await uow.residents.get_by_telegram_id(actor)
                if person is None or not person.has_role(Role.ORGANISER, current):
                    other = await uow.communities.get(current)
                    await self._refused(actor, chat_id, community.code, other.code if other else str(current))
                    raise GroupLinkedElsewhere(community=other.name if other else "").audited()
            await uow.groups.link(chat_id, community.id, title, purpose)
            await uow.commit()
        return community

    async def _refused(self, actor: int, chat_id: int, wanted: str, linked: str) -> None:
        async with self._uow() as uow:
            details = {"chat": chat_id, "community": wanted, "linked_to": linked}
            await uow.audit.add(datetime.now(UTC), actor, "linkgroup", False, details)
            await uow.commit()

    async def organised_by(self, telegram_id: int) -> tuple[Community, ...]:
        """The communities this person organises (roles read from storage): the ones they may link groups to."""
        async with self._uow() as uow:
            person = await uow.residents.get_by_telegram_id(telegram_id)
        if person is None:
            return ()
        return tuple(c for c in await self.list() if person.has_role(Role.ORGANISER, c.id))

    async def community_of_group(self, chat_id: int) -> Community | None:
        """The community a group chat belongs to, if linked."""
        async with self._uow() as uow:
            community_id = await uow.groups.get_community_id(chat_id)
            return await uow.communities.get(community_id) if community_id else None

    @staticmethod
    async def _add_building(uow: UnitOfWork, community_id: int, code: str, name: str) -> Building:
        if not valid_building_code(code) or not name.strip():
            raise InvalidInput(field="building", value=code)
        return await uow.communities.add_building(community_id, code, name.strip())
