"""Repositories: translate between rows and domain objects. They flush, never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from bot.domain.residents import Building, Community, Resident
from bot.domain.roles import Role, RoleGrant
from storage.models import AuditLogRow, BuildingRow, CommunityRow, GroupChatRow, ResidentRow, RoleGrantRow

_RESIDENT_FIELDS = {
    "telegram_id",
    "locale",
    "display_name",
    "community_id",
    "building_id",
    "consent_version",
    "consent_at",
    "last_seen_at",
    "unreachable_at",
    "deleted_at",
}


def _resident(row: ResidentRow) -> Resident:
    return Resident(
        id=row.id,
        telegram_id=row.telegram_id,
        locale=row.locale,
        display_name=row.display_name,
        community_id=row.community_id,
        building_id=row.building_id,
        consent_version=row.consent_version,
        consent_at=row.consent_at,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        unreachable_at=row.unreachable_at,
        roles=frozenset(RoleGrant(Role(g.role), g.community_id) for g in row.roles),
    )


def _community(row: CommunityRow) -> Community:
    buildings = tuple(Building(b.id, b.code, b.name) for b in row.buildings)
    return Community(row.id, row.code, row.name, buildings, row.timezone)


class SqlResidentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get_by_telegram_id(self, telegram_id: int, *, for_update: bool = False) -> Resident | None:
        row = await self._row_by_telegram_id(telegram_id, for_update=for_update)
        return _resident(row) if row else None

    async def get(self, resident_id: int) -> Resident | None:
        row = await self._s.get(ResidentRow, resident_id)
        return _resident(row) if row else None

    async def add(self, telegram_id: int, locale: str, now: datetime) -> Resident:
        row = ResidentRow(telegram_id=telegram_id, locale=locale, created_at=now, roles=[])
        self._s.add(row)
        await self._s.flush()
        return _resident(row)

    async def update(self, resident_id: int, **fields: Any) -> None:
        unknown = set(fields) - _RESIDENT_FIELDS
        if unknown:
            raise ValueError(f"not resident fields: {sorted(unknown)}")
        row = await self._s.get_one(ResidentRow, resident_id)
        for name, value in fields.items():
            setattr(row, name, value)
        await self._s.flush()

    async def grant(self, resident_id: int, role: Role, community_id: int | None) -> bool:
        row = await self._s.get_one(ResidentRow, resident_id)
        if any(g.role == role.value and g.community_id == community_id for g in row.roles):
            return False
        row.roles.append(RoleGrantRow(role=role.value, community_id=community_id))
        await self._s.flush()
        return True

    async def revoke(self, resident_id: int, role: Role, community_id: int | None) -> bool:
        result = await self._s.execute(
            delete(RoleGrantRow).where(
                RoleGrantRow.resident_id == resident_id,
                RoleGrantRow.role == role.value,
                RoleGrantRow.community_id.is_(None)
                if community_id is None
                else RoleGrantRow.community_id == community_id,
            )
        )
        self._s.expire_all()
        return bool(getattr(result, "rowcount", 0))

    async def revoke_all(self, resident_id: int) -> None:
        await self._s.execute(delete(RoleGrantRow).where(RoleGrantRow.resident_id == resident_id))
        self._s.expire_all()

    async def with_role(self, role: Role, community_id: int) -> list[Resident]:
        roles = {role.value, Role.ORGANISER.value} if role == Role.GRID_WORKER else {role.value}
        query = (
            select(ResidentRow)
            .join(RoleGrantRow)
            .where(
                RoleGrantRow.role.in_(roles),
                (RoleGrantRow.community_id == community_id) | RoleGrantRow.community_id.is_(None),
                ResidentRow.telegram_id.is_not(None),
            )
            .distinct()
            .order_by(ResidentRow.id)
        )
        return [_resident(r) for r in (await self._s.scalars(query)).all()]

    async def _row_by_telegram_id(self, telegram_id: int, *, for_update: bool) -> ResidentRow | None:
        query = select(ResidentRow).where(ResidentRow.telegram_id == telegram_id)
        if for_update:
            # PostgreSQL cannot lock the nullable side of an outer join: roles come by the relationship's selectin.
            return (await self._s.scalars(query.with_for_update())).one_or_none()
        # Every update reads its sender: one round trip with the roles joined instead of two.
        return (await self._s.scalars(query.options(joinedload(ResidentRow.roles)))).unique().one_or_none()


class SqlCommunityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def list(self) -> list[Community]:
        rows = await self._s.scalars(select(CommunityRow).order_by(CommunityRow.id))
        return [_community(r) for r in rows.all()]

    async def get(self, community_id: int) -> Community | None:
        row = await self._s.get(CommunityRow, community_id)
        return _community(row) if row else None

    async def get_by_code(self, code: str) -> Community | None:
        row = (await self._s.scalars(select(CommunityRow).where(CommunityRow.code == code))).one_or_none()
        return _community(row) if row else None

    async def add(self, code: str, name: str) -> Community:
        row = CommunityRow(code=code, name=name, buildings=[])
        self._s.add(row)
        await self._s.flush()
        return _community(row)

    async def add_building(self, community_id: int, code: str, name: str) -> Building:
        row = BuildingRow(community_id=community_id, code=code, name=name)
        self._s.add(row)
        await self._s.flush()
        building = Building(row.id, row.code, row.name)
        # The community's building list was loaded before; reload it on next access.
        self._s.expire_all()
        return building


class SqlGroupChatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get_community_id(self, chat_id: int) -> int | None:
        row = await self._s.get(GroupChatRow, chat_id)
        return row.community_id if row else None

    async def link(self, chat_id: int, community_id: int, title: str, purpose: str) -> None:
        row = await self._s.get(GroupChatRow, chat_id)
        if row is None:
            self._s.add(GroupChatRow(chat_id=chat_id, community_id=community_id, title=title, purpose=purpose))
        else:
            row.community_id, row.title, row.purpose = community_id, title, purpose
        await self._s.flush()


class SqlAuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(
        self, at: datetime, actor_telegram_id: int | None, action: str, allowed: bool, details: dict[str, Any]
    ) -> None:
        self._s.add(
            AuditLogRow(at=at, actor_telegram_id=actor_telegram_id, action=action, allowed=allowed, details=details)
        )
        await self._s.flush()

    async def recent(self, limit: int = 50) -> list[AuditLogRow]:
        """Newest entries first (for operators and tests)."""
        rows = await self._s.scalars(select(AuditLogRow).order_by(AuditLogRow.id.desc()).limit(limit))
        return list(rows.all())
