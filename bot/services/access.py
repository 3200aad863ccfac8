"""Roles: granting, revoking and checking them, with every organiser action audited."""

from __future__ import annotations

from typing import Any

from bot.domain.errors import NotFound
from bot.domain.residents import Resident
from bot.domain.roles import Role
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory


class AccessService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def check(self, telegram_id: int, role: Role, action: str, community_id: int | None = None) -> bool:
        """Read the role from storage (never from a cache) and audit refusals and staff actions.

        A caller that turns a refusal into ``Forbidden`` raises it ``.audited()``: the row is written here.
        """
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            allowed = resident is not None and resident.has_role(role, community_id)
            if not allowed or role != Role.RESIDENT:
                await self._audit(uow, telegram_id, action, allowed, {"role": role.value})
                await uow.commit()
        return allowed

    async def grant(self, telegram_id: int, role: Role, community_code: str | None, actor: int | None) -> bool:
        """Give a role (in one community, or everywhere); False when it was already held."""
        return await self._change(telegram_id, role, community_code, actor, grant=True)

    async def revoke(self, telegram_id: int, role: Role, community_code: str | None, actor: int | None) -> bool:
        """Take a role away; False when it was not held."""
        return await self._change(telegram_id, role, community_code, actor, grant=False)

    async def staff_of(self, community_id: int, role: Role) -> list[Resident]:
        """People holding ``role`` in a community (used to notify staff)."""
        async with self._uow() as uow:
            return await uow.residents.with_role(role, community_id)

    async def audit(self, actor: int | None, action: str, details: dict[str, Any]) -> None:
        """Record an organiser action that succeeded."""
        async with self._uow() as uow:
            await self._audit(uow, actor, action, True, details)
            await uow.commit()

    async def refused(self, actor: int, action: str, details: dict[str, Any]) -> None:
        """Record a refused attempt (the conversation core calls this for every refusal not recorded yet)."""
        async with self._uow() as uow:
            await self._audit(uow, actor, action, False, details)
            await uow.commit()

    async def _change(
        self, telegram_id: int, role: Role, community_code: str | None, actor: int | None, *, grant: bool
    ) -> bool:
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id, for_update=True)
            if resident is None:
                resident = await uow.residents.add(telegram_id, "zh_Hans", self._clock())
            community_id = None
            if community_code:
                community = await uow.communities.get_by_code(community_code)
                if community is None:
                    raise NotFound(what="community", code=community_code)
                community_id = community.id
            change = uow.residents.grant if grant else uow.residents.revoke
            changed = await change(resident.id, role, community_id)
            details = {"target": telegram_id, "role": role.value, "community": community_code}
            await self._audit(uow, actor, "grant" if grant else "revoke", True, details)
            await uow.commit()
        return changed

    async def _audit(
        self, uow: UnitOfWork, actor: int | None, action: str, allowed: bool, details: dict[str, Any]
    ) -> None:
        await uow.audit.add(self._clock(), actor, action, allowed, details)
