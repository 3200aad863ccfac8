"""Login links and sessions of the organisers' web dashboard in SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.dashboard import LoginLink, WebSession
from storage.dashboard_models import DashboardLinkRow, DashboardSessionRow


class SqlDashboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add_link(self, token_hash: str, resident_id: int, now: datetime, expires_at: datetime) -> None:
        self._s.add(DashboardLinkRow(token_hash=token_hash, resident_id=resident_id, created_at=now,
                                     expires_at=expires_at))  # fmt: skip
        await self._s.flush()

    async def link(self, token_hash: str) -> LoginLink | None:
        row = await self._s.scalar(select(DashboardLinkRow).where(DashboardLinkRow.token_hash == token_hash))
        return _link(row) if row else None

    async def use_link(self, link_id: int, now: datetime) -> bool:
        """Mark the link used, if it still was not and has not expired (two tabs opening it: one wins)."""
        done = await self._s.execute(
            update(DashboardLinkRow)
            .where(
                DashboardLinkRow.id == link_id,
                DashboardLinkRow.used_at.is_(None),
                DashboardLinkRow.expires_at > now,
            )
            .values(used_at=now)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def add_session(
        self, key_hash: str, resident_id: int, csrf: str, now: datetime, expires_at: datetime
    ) -> WebSession:
        row = DashboardSessionRow(key_hash=key_hash, resident_id=resident_id, csrf=csrf, created_at=now,
                                  expires_at=expires_at)  # fmt: skip
        self._s.add(row)
        await self._s.flush()
        return _session(row)

    async def session(self, key_hash: str) -> WebSession | None:
        row = await self._s.scalar(select(DashboardSessionRow).where(DashboardSessionRow.key_hash == key_hash))
        return _session(row) if row else None

    async def end_session(self, session_id: int, now: datetime) -> bool:
        done = await self._s.execute(
            update(DashboardSessionRow)
            .where(DashboardSessionRow.id == session_id, DashboardSessionRow.ended_at.is_(None))
            .values(ended_at=now)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]

    async def purge(self, before: datetime) -> int:
        """Forget links and sessions over (expired or ended) before ``before``."""
        links = await self._s.execute(delete(DashboardLinkRow).where(DashboardLinkRow.expires_at < before))
        sessions = await self._s.execute(
            delete(DashboardSessionRow).where(
                or_(DashboardSessionRow.expires_at < before, DashboardSessionRow.ended_at < before)
            )
        )
        return int(links.rowcount) + int(sessions.rowcount)  # type: ignore[attr-defined]


def _link(row: DashboardLinkRow) -> LoginLink:
    return LoginLink(row.id, row.resident_id, row.created_at, row.expires_at, row.used_at)


def _session(row: DashboardSessionRow) -> WebSession:
    return WebSession(row.id, row.resident_id, row.csrf, row.created_at, row.expires_at, row.ended_at)
