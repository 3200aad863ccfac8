"""The points ledger in SQL: accounts with a locked, maintained balance, append-only entries and FIFO lots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.points import RANKED, Account, Entry, Lot, Reason
from storage.models import BuildingRow, ResidentRow
from storage.points_models import PointsAccountRow, PointsEntryRow, PointsLotRow

_ACCOUNT = cast(Table, PointsAccountRow.__table__)
_ENTRY = cast(Table, PointsEntryRow.__table__)
_LOT = cast(Table, PointsLotRow.__table__)


def _account(row: Any) -> Account:
    return Account(row.id, row.resident_id, row.community_id, row.balance, row.hidden)


class SqlPointsRepository:
    """Writers lock the account first (SELECT ... FOR UPDATE on PostgreSQL).

    On SQLite the lock is a write: pysqlite opens the transaction at the first write, so starting with one
    takes the database write lock up front (BEGIN IMMEDIATE semantics) and later reads cannot go stale.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    @property
    def _sqlite(self) -> bool:
        return self._s.get_bind().dialect.name == "sqlite"

    async def lock_account(self, resident_id: int, community_id: int) -> Account:
        if self._sqlite:
            return await self._upsert_account(resident_id, community_id)
        where = (_ACCOUNT.c.resident_id == resident_id) & (_ACCOUNT.c.community_id == community_id)
        row = (await self._s.execute(select(_ACCOUNT).where(where).with_for_update())).one_or_none()
        if row is not None:
            return _account(row)
        await self._create_account(resident_id, community_id)
        return await self._select_account(resident_id, community_id, lock=True)

    async def community_of(self, resident_id: int) -> int | None:
        query = select(ResidentRow.community_id).where(
            ResidentRow.id == resident_id, ResidentRow.consent_at.is_not(None)
        )
        return (await self._s.execute(query)).scalar_one_or_none()

    async def lock_account_id(self, account_id: int) -> Account:
        query = select(_ACCOUNT).where(_ACCOUNT.c.id == account_id)
        if self._sqlite:
            await self._s.execute(
                update(_ACCOUNT).where(_ACCOUNT.c.id == account_id).values(balance=_ACCOUNT.c.balance)
            )
        else:
            query = query.with_for_update()
        return _account((await self._s.execute(query)).one())

    async def account(self, resident_id: int, community_id: int) -> Account | None:
        where = (_ACCOUNT.c.resident_id == resident_id) & (_ACCOUNT.c.community_id == community_id)
        row = (await self._s.execute(select(_ACCOUNT).where(where))).one_or_none()
        return _account(row) if row else None

    async def account_by_id(self, account_id: int) -> Account | None:
        """An account without locking it (to learn whose it is)."""
        row = (await self._s.execute(select(_ACCOUNT).where(_ACCOUNT.c.id == account_id))).one_or_none()
        return _account(row) if row else None

    async def search_residents(
        self, community_id: int, text: str, limit: int
    ) -> list[tuple[int, str | None, str | None]]:
        """Registered residents of a community whose name contains ``text``: (telegram id, name, building)."""
        query = (
            select(ResidentRow.telegram_id, ResidentRow.display_name, BuildingRow.name)
            .select_from(ResidentRow.__table__.outerjoin(BuildingRow, BuildingRow.id == ResidentRow.building_id))
            .where(
                ResidentRow.community_id == community_id,
                ResidentRow.consent_at.is_not(None),
                ResidentRow.deleted_at.is_(None),
                ResidentRow.telegram_id.is_not(None),
                ResidentRow.display_name.icontains(text, autoescape=True),
            )
            .order_by(ResidentRow.display_name, ResidentRow.id)
            .limit(limit)
        )
        rows = (await self._s.execute(query)).all()
        return [(tid, name, building) for tid, name, building in rows if tid is not None]

    async def has_entry(self, key: str) -> bool:
        query = select(_ENTRY.c.id).where(_ENTRY.c.idempotency_key == key)
        return (await self._s.execute(query)).first() is not None

    async def entry_ref(self, key: str) -> str | None:
        """The ref of the entry written under ``key`` (None: no such entry)."""
        query = select(_ENTRY.c.ref).where(_ENTRY.c.idempotency_key == key)
        row = (await self._s.execute(query)).first()
        return None if row is None else str(row[0])

    async def earned_since(self, account_id: int, reason: Reason, day: datetime, week: datetime) -> tuple[int, int]:
        # One query for both windows: caps are checked on every award, so this is on the hot path.
        in_day = func.sum(case((_ENTRY.c.at >= day, _ENTRY.c.amount), else_=0))
        query = select(func.coalesce(in_day, 0), func.coalesce(func.sum(_ENTRY.c.amount), 0)).where(
            _ENTRY.c.account_id == account_id, _ENTRY.c.reason == reason.value, _ENTRY.c.at >= min(day, week)
        )
        today, this_week = (await self._s.execute(query)).one()
        return int(today), int(this_week)

    async def add_entry(
        self,
        account_id: int,
        amount: int,
        reason: Reason,
        ref: str,
        key: str,
        at: datetime,
        actor: int | None = None,
        note: str | None = None,
    ) -> int:
        values = {
            "account_id": account_id,
            "amount": amount,
            "reason": reason.value,
            "ref": ref[:64],
            "idempotency_key": key,
            "at": at,
            "actor_telegram_id": actor,
            "note": note[:200] if note else None,
        }
        result = await self._s.execute(insert(_ENTRY).values(**values).returning(_ENTRY.c.id))
        return int(result.scalar_one())

    async def add_lot(self, account_id: int, entry_id: int, amount: int, expires_at: datetime | None) -> None:
        values = {"account_id": account_id, "entry_id": entry_id, "amount": amount, "remaining": amount}
        await self._s.execute(insert(_LOT).values(**values, expires_at=expires_at))

    async def lots(self, account_id: int) -> list[Lot]:
        query = select(_LOT.c.id, _LOT.c.remaining, _LOT.c.expires_at).where(
            _LOT.c.account_id == account_id, _LOT.c.remaining > 0
        )
        return [Lot(r.id, r.remaining, r.expires_at) for r in (await self._s.execute(query)).all()]

    async def take(self, takes: Sequence[tuple[int, int]]) -> None:
        for lot_id, count in takes:
            where = (_LOT.c.id == lot_id) & (_LOT.c.remaining >= count)
            result = await self._s.execute(update(_LOT).where(where).values(remaining=_LOT.c.remaining - count))
            if getattr(result, "rowcount", 0) != 1:
                raise RuntimeError(f"lot {lot_id} changed under a held account lock")

    async def change_balance(self, account_id: int, delta: int) -> bool:
        new = _ACCOUNT.c.balance + delta
        statement = update(_ACCOUNT).where(_ACCOUNT.c.id == account_id, new >= 0).values(balance=new)
        return getattr(await self._s.execute(statement), "rowcount", 0) == 1

    async def set_hidden(self, account_id: int, hidden: bool) -> None:
        await self._s.execute(update(_ACCOUNT).where(_ACCOUNT.c.id == account_id).values(hidden=hidden))

    async def recent(self, account_id: int, limit: int) -> list[Entry]:
        query = select(_ENTRY).where(_ENTRY.c.account_id == account_id).order_by(_ENTRY.c.id.desc()).limit(limit)
        rows = (await self._s.execute(query)).all()
        return [Entry(r.id, r.amount, Reason(r.reason), r.ref, r.at, r.note) for r in rows]

    async def accounts_with_expired_lots(self, now: datetime) -> list[int]:
        query = select(_LOT.c.account_id).where(_LOT.c.remaining > 0, _LOT.c.expires_at <= now).distinct()
        return sorted(int(r) for r in (await self._s.scalars(query)).all())

    async def expiring(self, now: datetime, until: datetime) -> list[tuple[int, int, datetime]]:
        soon = and_(_LOT.c.remaining > 0, _LOT.c.expires_at > now, _LOT.c.expires_at <= until)
        query = (
            select(ResidentRow.telegram_id, func.sum(_LOT.c.remaining), func.min(_LOT.c.expires_at))
            .select_from(_LOT.join(_ACCOUNT).join(ResidentRow, ResidentRow.id == _ACCOUNT.c.resident_id))
            .where(soon, ResidentRow.telegram_id.is_not(None))
            .group_by(ResidentRow.telegram_id)
            .order_by(ResidentRow.telegram_id)
        )
        rows = (await self._s.execute(query)).all()
        return [(int(tid), int(points), first) for tid, points, first in rows]

    async def ranking(
        self, community_id: int, since: datetime | None, limit: int
    ) -> list[tuple[int, str | None, str | None, int]]:
        """(account, display name, building name, points), best first; residents who opted out are left out."""
        points = func.sum(_ENTRY.c.amount).label("points")
        query = (
            select(_ACCOUNT.c.id, ResidentRow.display_name, BuildingRow.name.label("building"), points)
            .select_from(
                _ENTRY.join(_ACCOUNT)
                .join(ResidentRow, ResidentRow.id == _ACCOUNT.c.resident_id)
                .outerjoin(BuildingRow, BuildingRow.id == ResidentRow.building_id)
            )
            .where(
                *self._merit(community_id, since),
                _ACCOUNT.c.hidden.is_(False),
                ResidentRow.deleted_at.is_(None),
            )
            .group_by(_ACCOUNT.c.id, ResidentRow.display_name, BuildingRow.name)
            .having(points > 0)
            .order_by(points.desc(), _ACCOUNT.c.id)
            .limit(limit)
        )
        rows = (await self._s.execute(query)).all()
        return [(int(r.id), r.display_name, r.building, int(r.points)) for r in rows]

    async def building_ranking(self, community_id: int, since: datetime | None, limit: int) -> list[tuple[str, int]]:
        # Buildings are aggregates: residents hidden from the resident ranking still count for their building.
        points = func.sum(_ENTRY.c.amount).label("points")
        query = (
            select(BuildingRow.name, points)
            .select_from(
                _ENTRY.join(_ACCOUNT)
                .join(ResidentRow, ResidentRow.id == _ACCOUNT.c.resident_id)
                .join(BuildingRow, BuildingRow.id == ResidentRow.building_id)
            )
            .where(*self._merit(community_id, since))
            .group_by(BuildingRow.id, BuildingRow.name)
            .having(points > 0)
            .order_by(points.desc(), BuildingRow.id)
            .limit(limit)
        )
        return [(str(r.name), int(r.points)) for r in (await self._s.execute(query)).all()]

    async def mismatches(self) -> list[tuple[int, int, int, int]]:
        entries = select(_ENTRY.c.account_id, func.sum(_ENTRY.c.amount).label("total")).group_by(_ENTRY.c.account_id)
        lots = select(_LOT.c.account_id, func.sum(_LOT.c.remaining).label("left")).group_by(_LOT.c.account_id)
        e, lo = entries.subquery(), lots.subquery()
        total, left = func.coalesce(e.c.total, 0), func.coalesce(lo.c.left, 0)
        query = (
            select(_ACCOUNT.c.id, _ACCOUNT.c.balance, total, left)
            .select_from(
                _ACCOUNT.outerjoin(e, e.c.account_id == _ACCOUNT.c.id).outerjoin(lo, lo.c.account_id == _ACCOUNT.c.id)
            )
            .where((_ACCOUNT.c.balance != total) | (_ACCOUNT.c.balance != left) | (_ACCOUNT.c.balance < 0))
            .order_by(_ACCOUNT.c.id)
        )
        return [(int(a), int(b), int(t), int(lf)) for a, b, t, lf in (await self._s.execute(query)).all()]

    @staticmethod
    def _merit(community_id: int, since: datetime | None) -> list[Any]:
        where = [_ACCOUNT.c.community_id == community_id, _ENTRY.c.reason.in_([r.value for r in RANKED])]
        if since is not None:
            where.append(_ENTRY.c.at >= since)
        return where

    async def _upsert_account(self, resident_id: int, community_id: int) -> Account:
        # A write first: on SQLite it takes the database write lock before anything is read (BEGIN IMMEDIATE).
        values = {"resident_id": resident_id, "community_id": community_id, "balance": 0, "hidden": False}
        statement = (
            sqlite_insert(_ACCOUNT)
            .values(**values)
            .on_conflict_do_update(index_elements=["resident_id", "community_id"], set_={"balance": _ACCOUNT.c.balance})
            .returning(*_ACCOUNT.c)
        )
        return _account((await self._s.execute(statement)).one())

    async def _create_account(self, resident_id: int, community_id: int) -> None:
        maker = sqlite_insert if self._sqlite else pg_insert
        values = {"resident_id": resident_id, "community_id": community_id, "balance": 0, "hidden": False}
        await self._s.execute(maker(_ACCOUNT).values(**values).on_conflict_do_nothing())

    async def _select_account(self, resident_id: int, community_id: int, *, lock: bool) -> Account:
        where = (_ACCOUNT.c.resident_id == resident_id) & (_ACCOUNT.c.community_id == community_id)
        query = select(_ACCOUNT).where(where)
        return _account((await self._s.execute(query.with_for_update() if lock else query)).one())
