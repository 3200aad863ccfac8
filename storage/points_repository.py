"""The points ledger in SQL: accounts with a locked, maintained balance, append-only entries and FIFO lots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, exists, func, insert, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.points import RANKED, Account, Entry, Lot, Reason
from bot.services.ports import Credit, Holder, LedgerLine
from storage.models import BuildingRow, ResidentRow
from storage.points_models import PointsAccountRow, PointsEntryRow, PointsLotRow

_ACCOUNT = cast(Table, PointsAccountRow.__table__)
_ENTRY = cast(Table, PointsEntryRow.__table__)
_LOT = cast(Table, PointsLotRow.__table__)


def _account(row: Any) -> Account:
    return Account(row.id, row.resident_id, row.community_id, row.balance, row.hidden)


# The award path's statements, built once: building a statement costs more CPU than executing it (measured
# 0.7 of 0.95 ms for the cap read), and an award runs three of them. Parameters are bound by name.
_RESIDENT = cast(Table, ResidentRow.__table__)
_NEVER = datetime(9999, 1, 1, tzinfo=UTC)  # a window start that no entry reaches: no cap, nothing to sum
_ENTRY_COLUMNS = ("account_id", "amount", "reason", "ref", "idempotency_key", "at", "actor_telegram_id", "note")
_ENTRY_PARAMS = {name: bindparam(f"p_{name}", type_=_ENTRY.c[name].type) for name in _ENTRY_COLUMNS}
_EXPIRES = bindparam("p_expires_at", type_=_LOT.c.expires_at.type)
_MEMBERS = (  # (resident, community, 0, false) of the registered residents among :ids: new accounts' values
    select(_RESIDENT.c.id, _RESIDENT.c.community_id, literal(0), literal(False))
    .where(
        _RESIDENT.c.id.in_(bindparam("ids", expanding=True)),
        _RESIDENT.c.consent_at.is_not(None),
        _RESIDENT.c.community_id.is_not(None),
    )
    .order_by(_RESIDENT.c.id)
)
_NEW_ACCOUNT = ["resident_id", "community_id", "balance", "hidden"]
# SQLite: one write takes the database write lock, creates missing accounts and returns them all.
_UPSERT_MEMBERS = (
    sqlite_insert(_ACCOUNT)
    .from_select(_NEW_ACCOUNT, _MEMBERS)
    .on_conflict_do_update(index_elements=["resident_id", "community_id"], set_={"balance": _ACCOUNT.c.balance})
    .returning(*_ACCOUNT.c)
)
_MEMBER_COMMUNITY = (
    select(_RESIDENT.c.community_id)
    .where(_RESIDENT.c.id == bindparam("resident"), _RESIDENT.c.consent_at.is_not(None))
    .scalar_subquery()
)
_OF_MEMBER = (_ACCOUNT.c.resident_id == bindparam("resident")) & (_ACCOUNT.c.community_id == _MEMBER_COMMUNITY)
# What an award reads once its account is locked: whether its key was used, and the day's and week's earnings
# for the caps (:since is the earlier of the two window starts).
_KEY_USED = exists().where(_ENTRY.c.idempotency_key == bindparam("key"))
_OF_REASON = (_ENTRY.c.account_id == _ACCOUNT.c.id) & (_ENTRY.c.reason == bindparam("reason"))
_IN_DAY = case((_ENTRY.c.at >= bindparam("day"), _ENTRY.c.amount), else_=0)
_EARNED = (
    _KEY_USED.label("used"),
    select(func.coalesce(func.sum(_IN_DAY), 0))
    .where(_OF_REASON, _ENTRY.c.at >= bindparam("since"))
    .correlate(_ACCOUNT)
    .scalar_subquery()
    .label("today"),
    select(func.coalesce(func.sum(_ENTRY.c.amount), 0))
    .where(_OF_REASON, _ENTRY.c.at >= bindparam("since"))
    .correlate(_ACCOUNT)
    .scalar_subquery()
    .label("week"),
)
_AWARD_STATE = select(*_EARNED).where(_ACCOUNT.c.id == bindparam("account"))
# PostgreSQL: the account locked, the resident's community and what the award reads in the same statement. Those
# reads see the statement's snapshot, taken before the lock was granted: if another writer committed meanwhile,
# the locked row is a newer version than the snapshot's (every ledger writer updates the account row), so the two
# row versions (xmin) are compared and on a difference the reads are repeated under the lock.
_SEEN = _ACCOUNT.alias("seen")
_PG_LOCK_AND_READ = (
    select(
        *_ACCOUNT.c,
        *_EARNED,
        literal_column("points_account.xmin").label("locked_version"),
        select(literal_column("seen.xmin"))
        .select_from(_SEEN)
        .where(_SEEN.c.id == _ACCOUNT.c.id)
        .correlate(_ACCOUNT)
        .scalar_subquery()
        .label("seen_version"),
    )
    .where(_OF_MEMBER)
    .with_for_update(of=_ACCOUNT)
)
_SQLITE_ENTRY = sqlite_insert(_ENTRY).values(_ENTRY_PARAMS).on_conflict_do_nothing().returning(_ENTRY.c.id)
_ADD_LOT = insert(_LOT)
_ADD_TO_BALANCE = (
    update(_ACCOUNT)
    .where(_ACCOUNT.c.id == bindparam("account"))
    .values(balance=_ACCOUNT.c.balance + bindparam("delta"))
    .returning(_ACCOUNT.c.balance)
)


def _pg_credit() -> Any:
    """Entry (unless its key is taken), its lot and the balance in one statement of data-modifying CTEs."""
    entry = (
        pg_insert(_ENTRY)
        .values(_ENTRY_PARAMS)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_ENTRY.c.id, _ENTRY.c.account_id, _ENTRY.c.amount)
        .cte("new_entry")
    )
    lot = (
        insert(_LOT)
        .from_select(
            ["account_id", "entry_id", "amount", "remaining", "expires_at"],
            select(entry.c.account_id, entry.c.id, entry.c.amount, entry.c.amount, _EXPIRES),
        )
        .cte("new_lot")
    )
    balance = (
        update(_ACCOUNT)
        .where(_ACCOUNT.c.id == entry.c.account_id)
        .values(balance=_ACCOUNT.c.balance + entry.c.amount)
        .returning(_ACCOUNT.c.balance)
        .cte("new_balance")
    )
    return select(balance.c.balance).add_cte(lot)


_PG_CREDIT = _pg_credit()


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

    async def lock_for_award(
        self, resident_id: int, key: str, reason: Reason, windows: tuple[datetime, datetime] | None
    ) -> tuple[Account, bool, int, int] | None:
        """Lock the account of a registered resident in their community (creating it if need be) and read under
        the lock whether ``key`` was used and what ``reason`` earned since the day's and the week's start
        (``windows``; None: no cap applies, 0 and 0): (account, used, today, this week). None: not registered.

        On PostgreSQL one statement as a rule: the resident's community, the lock and the reads together."""
        day, week = windows or (_NEVER, _NEVER)
        params = {"resident": resident_id, "key": key, "reason": reason.value, "day": day, "since": min(day, week)}
        if self._sqlite:  # the upsert takes the database write lock; then read (two statements)
            row = (await self._s.execute(_UPSERT_MEMBERS, {"ids": [resident_id]})).one_or_none()
            if row is None:
                return None
            account = _account(row)
        else:
            row = (await self._s.execute(_PG_LOCK_AND_READ, params)).one_or_none()
            if row is not None and row.locked_version == row.seen_version:
                return _account(row), bool(row.used), int(row.today), int(row.week)
            if row is not None:  # another writer committed while we waited for the lock: read again, under it
                account = _account(row)
            else:  # the first award (no account yet), or not registered
                community_id = await self.community_of(resident_id)
                if community_id is None:
                    return None
                await self._create_account(resident_id, community_id)
                account = await self._select_account(resident_id, community_id, lock=True)
        state = (await self._s.execute(_AWARD_STATE, params | {"account": account.id})).one()
        return account, bool(state.used), int(state.today), int(state.week)

    async def lock_members(self, resident_ids: Sequence[int]) -> dict[int, Account]:
        """Lock the accounts of many residents (created if need be) in resident id order, so two batches, or a
        batch and single awards, never wait for each other in a cycle. Residents not registered are left out."""
        ids = sorted(set(resident_ids))
        if not ids:
            return {}
        if self._sqlite:
            rows = (await self._s.execute(_UPSERT_MEMBERS, {"ids": ids})).all()
            return {int(r.resident_id): _account(r) for r in rows}
        await self._s.execute(
            pg_insert(_ACCOUNT).from_select(_NEW_ACCOUNT, _MEMBERS).on_conflict_do_nothing(), {"ids": ids}
        )
        joined = (_RESIDENT.c.id == _ACCOUNT.c.resident_id) & (_RESIDENT.c.community_id == _ACCOUNT.c.community_id)
        query = (
            select(_ACCOUNT)
            .join(_RESIDENT, joined)
            .where(_RESIDENT.c.id.in_(ids), _RESIDENT.c.consent_at.is_not(None))
            .order_by(_ACCOUNT.c.resident_id)  # applied before the locks are taken: they follow this order
            .with_for_update(of=_ACCOUNT)
        )
        return {int(r.resident_id): _account(r) for r in (await self._s.execute(query)).all()}

    async def add_credit(self, credit: Credit, actor: int | None = None) -> int | None:
        """Entry, lot and balance of a locked account; returns the new balance, or None (nothing written) when
        the key is already used. On PostgreSQL one statement."""
        values = self._entry_values(credit) | {"actor_telegram_id": actor}
        params = {f"p_{name}": value for name, value in values.items()}
        if not self._sqlite:
            found = (await self._s.execute(_PG_CREDIT, params | {"p_expires_at": credit.expires_at})).scalar()
            return None if found is None else int(found)
        entry_id = (await self._s.execute(_SQLITE_ENTRY, params)).scalar()
        if entry_id is None:
            return None
        lot = {"account_id": credit.account_id, "entry_id": entry_id, "amount": credit.amount}
        await self._s.execute(_ADD_LOT, lot | {"remaining": credit.amount, "expires_at": credit.expires_at})
        delta = {"account": credit.account_id, "delta": credit.amount}
        return int((await self._s.execute(_ADD_TO_BALANCE, delta)).scalar_one())

    async def taken_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` the ledger already holds (call with the accounts concerned locked)."""
        if not keys:
            return set()
        query = select(_ENTRY.c.idempotency_key).where(_ENTRY.c.idempotency_key.in_(sorted(set(keys))))
        return {str(k) for k in (await self._s.scalars(query)).all()}

    async def earned_many(
        self, account_ids: Sequence[int], reasons: Sequence[Reason], day: datetime, week: datetime
    ) -> dict[tuple[int, Reason], tuple[int, int]]:
        """(earned today, earned this week) per (account, reason) with any, for the caps of a batch."""
        if not account_ids or not reasons:
            return {}
        in_day = func.sum(case((_ENTRY.c.at >= day, _ENTRY.c.amount), else_=0))
        query = (
            select(_ENTRY.c.account_id, _ENTRY.c.reason, in_day, func.sum(_ENTRY.c.amount))
            .where(
                _ENTRY.c.account_id.in_(sorted(set(account_ids))),
                _ENTRY.c.reason.in_(sorted({r.value for r in reasons})),
                _ENTRY.c.at >= min(day, week),
            )
            .group_by(_ENTRY.c.account_id, _ENTRY.c.reason)
        )
        rows = (await self._s.execute(query)).all()
        return {(int(a), Reason(r)): (int(t or 0), int(w or 0)) for a, r, t, w in rows}

    async def add_credits(self, credits: Sequence[Credit]) -> None:
        """Entries, lots and balances of many locked accounts: three statements whatever the count."""
        if not credits:
            return
        entries = insert(_ENTRY).returning(_ENTRY.c.id, sort_by_parameter_order=True)
        result = await self._s.execute(entries, [self._entry_values(c) for c in credits])
        ids = [int(i) for i in result.scalars().all()]
        lots = [
            {"account_id": c.account_id, "entry_id": i, "amount": c.amount, "remaining": c.amount}
            | {"expires_at": c.expires_at}
            for c, i in zip(credits, ids, strict=True)
        ]
        await self._s.execute(insert(_LOT), lots)
        deltas: dict[int, int] = {}
        for c in credits:
            deltas[c.account_id] = deltas.get(c.account_id, 0) + c.amount
        balances = (
            update(_ACCOUNT)
            .where(_ACCOUNT.c.id == bindparam("account"))
            .values(balance=_ACCOUNT.c.balance + bindparam("delta"))
        )
        await self._s.execute(balances, [{"account": a, "delta": d} for a, d in sorted(deltas.items())])

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

    async def totals(self, community_id: int, since: datetime | None, until: datetime | None) -> dict[str, int]:
        """Points moved in a community over [since, until), summed by reason (debits negative)."""
        where = [_ACCOUNT.c.community_id == community_id]
        if since is not None:
            where.append(_ENTRY.c.at >= since)
        if until is not None:
            where.append(_ENTRY.c.at < until)
        query = (
            select(_ENTRY.c.reason, func.sum(_ENTRY.c.amount))
            .select_from(_ENTRY.join(_ACCOUNT))
            .where(*where)
            .group_by(_ENTRY.c.reason)
        )
        return {str(reason): int(total or 0) for reason, total in (await self._s.execute(query)).all()}

    async def ledger(self, community_id: int, since: datetime | None, until: datetime | None) -> list[LedgerLine]:
        """Every entry of the community's accounts made in [since, until), oldest first, with its holder, the
        account's balance after it (the running sum of its entries: the balance is their sum) and its lot's expiry.
        Read only."""
        running = func.sum(_ENTRY.c.amount).over(partition_by=_ENTRY.c.account_id, order_by=_ENTRY.c.id)
        sums = (
            select(_ENTRY.c.id, running.label("balance"))
            .select_from(_ENTRY.join(_ACCOUNT))
            .where(_ACCOUNT.c.community_id == community_id, *([_ENTRY.c.at < until] if until is not None else []))
            .subquery()
        )
        query = (
            select(
                _ENTRY,
                sums.c.balance,
                _ACCOUNT.c.resident_id,
                _RESIDENT.c.display_name,
                _RESIDENT.c.telegram_id,
                BuildingRow.name.label("building"),
                _LOT.c.expires_at.label("lot_expires_at"),
            )
            .select_from(
                _ENTRY.join(sums, sums.c.id == _ENTRY.c.id)
                .join(_ACCOUNT, _ACCOUNT.c.id == _ENTRY.c.account_id)
                .join(_RESIDENT, _RESIDENT.c.id == _ACCOUNT.c.resident_id)
                .outerjoin(BuildingRow, BuildingRow.id == _RESIDENT.c.building_id)
                .outerjoin(_LOT, _LOT.c.entry_id == _ENTRY.c.id)
            )
            .where(*([_ENTRY.c.at >= since] if since is not None else []))
            .order_by(_ENTRY.c.at, _ENTRY.c.id)
        )
        return [
            LedgerLine(
                Entry(r.id, r.amount, Reason(r.reason), r.ref, r.at, r.note),
                Holder(int(r.resident_id), r.display_name, r.telegram_id, r.building),
                int(r.balance),
                r.lot_expires_at,
            )
            for r in (await self._s.execute(query)).all()
        ]

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

    @staticmethod
    def _entry_values(credit: Credit) -> dict[str, Any]:
        return {
            "account_id": credit.account_id,
            "amount": credit.amount,
            "reason": credit.reason.value,
            "ref": credit.ref[:64],
            "idempotency_key": credit.key,
            "at": credit.at,
            "actor_telegram_id": None,
            "note": None,
        }

    async def _create_account(self, resident_id: int, community_id: int) -> None:
        maker = sqlite_insert if self._sqlite else pg_insert
        values = {"resident_id": resident_id, "community_id": community_id, "balance": 0, "hidden": False}
        await self._s.execute(maker(_ACCOUNT).values(**values).on_conflict_do_nothing())

    async def _select_account(self, resident_id: int, community_id: int, *, lock: bool) -> Account:
        where = (_ACCOUNT.c.resident_id == resident_id) & (_ACCOUNT.c.community_id == community_id)
        query = select(_ACCOUNT).where(where)
        return _account((await self._s.execute(query.with_for_update() if lock else query)).one())
