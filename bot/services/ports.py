"""Ports: what the services need from storage and the outside world. ``storage`` implements them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, Self

from bot.domain.residents import Building, Community, Resident
from bot.domain.roles import Role


class ResidentRepository(Protocol):
    async def get_by_telegram_id(self, telegram_id: int, *, for_update: bool = False) -> Resident | None: ...

    async def get(self, resident_id: int) -> Resident | None: ...

    async def add(self, telegram_id: int, locale: str, now: datetime) -> Resident: ...

    async def update(self, resident_id: int, **fields: Any) -> None: ...

    async def grant(self, resident_id: int, role: Role, community_id: int | None) -> bool: ...

    async def revoke(self, resident_id: int, role: Role, community_id: int | None) -> bool: ...

    async def revoke_all(self, resident_id: int) -> None: ...

    async def with_role(self, role: Role, community_id: int) -> list[Resident]: ...


class CommunityRepository(Protocol):
    async def list(self) -> list[Community]: ...

    async def get(self, community_id: int) -> Community | None: ...

    async def get_by_code(self, code: str) -> Community | None: ...

    async def add(self, code: str, name: str) -> Community: ...

    async def add_building(self, community_id: int, code: str, name: str) -> Building: ...


class GroupChatRepository(Protocol):
    async def get_community_id(self, chat_id: int) -> int | None: ...

    async def link(self, chat_id: int, community_id: int, title: str, purpose: str) -> None: ...


class AuditRepository(Protocol):
    async def add(
        self,
        at: datetime,
        actor_telegram_id: int | None,
        action: str,
        allowed: bool,
        details: dict[str, Any],
    ) -> None: ...


class UnitOfWork(Protocol):
    """One transaction. Repositories never commit; the service that opened the unit of work does."""

    residents: ResidentRepository
    communities: CommunityRepository
    groups: GroupChatRepository
    audit: AuditRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]
