"""Rewards and redemptions in SQL: stock and status change by conditional UPDATE, so a lost race is 0 rows."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.rewards import Redemption, RedemptionStatus, Reward
from bot.services.ports import Holder, RedemptionLine
from storage.models import BuildingRow, ResidentRow
from storage.points_models import PointsAccountRow, RedemptionRow, RewardRow

_REWARD_FIELDS = {
    "name",
    "description",
    "cost",
    "stock",
    "per_person_limit",
    "active",
    "active_from",
    "active_until",
    "service_point",
}
_HELD = (RedemptionStatus.RESERVED.value, RedemptionStatus.FULFILLED.value)


def _reward(row: RewardRow) -> Reward:
    return Reward(
        id=row.id,
        community_id=row.community_id,
        slug=row.slug,
        name=dict(row.name),
        cost=row.cost,
        stock=row.stock,
        per_person_limit=row.per_person_limit,
        description=dict(row.description),
        active=row.active,
        active_from=row.active_from,
        active_until=row.active_until,
        service_point=row.service_point,
    )


def _redemption(row: RedemptionRow) -> Redemption:
    return Redemption(
        id=row.id,
        code=row.code,
        account_id=row.account_id,
        community_id=row.community_id,
        reward_id=row.reward_id,
        cost=row.cost,
        status=RedemptionStatus(row.status),
        created_at=row.created_at,
        expires_at=row.expires_at,
        closed_at=row.closed_at,
        verified_by=row.verified_by,
        refund_expires_at=row.refund_expires_at,
    )


class SqlRewardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def in_community(self, community_id: int) -> list[Reward]:
        query = select(RewardRow).where(RewardRow.community_id == community_id).order_by(RewardRow.cost, RewardRow.id)
        return [_reward(r) for r in (await self._fresh(query)).all()]

    async def get(self, reward_id: int, *, for_update: bool = False) -> Reward | None:
        query = select(RewardRow).where(RewardRow.id == reward_id)
        row = (await self._fresh(query.with_for_update() if for_update else query)).one_or_none()
        return _reward(row) if row else None

    async def get_by_slug(self, community_id: int, slug: str) -> Reward | None:
        query = select(RewardRow).where(RewardRow.community_id == community_id, RewardRow.slug == slug)
        row = (await self._fresh(query)).one_or_none()
        return _reward(row) if row else None

    async def add(self, reward: Reward) -> Reward:
        fields = asdict(reward)
        fields.pop("id")
        fields["name"], fields["description"] = dict(reward.name), dict(reward.description)
        row = RewardRow(**fields)
        self._s.add(row)
        await self._s.flush()
        return _reward(row)

    async def update(self, reward_id: int, **fields: Any) -> None:
        unknown = set(fields) - _REWARD_FIELDS
        if unknown:
            raise ValueError(f"not reward fields: {sorted(unknown)}")
        await self._s.execute(update(RewardRow).where(RewardRow.id == reward_id).values(**fields))

    async def take_stock(self, reward_id: int) -> bool:
        # Unlimited rewards (NULL stock) always succeed; limited ones only while stock is left.
        statement = (
            update(RewardRow)
            .where(RewardRow.id == reward_id, (RewardRow.stock.is_(None)) | (RewardRow.stock > 0))
            .values(stock=RewardRow.stock - 1)
        )
        return getattr(await self._s.execute(statement), "rowcount", 0) == 1

    async def add_stock(self, reward_id: int, count: int) -> None:
        statement = (
            update(RewardRow)
            .where(RewardRow.id == reward_id, RewardRow.stock.is_not(None))
            .values(stock=RewardRow.stock + count)
        )
        await self._s.execute(statement)

    async def code_taken(self, code: str) -> bool:
        return (await self._s.execute(select(RedemptionRow.id).where(RedemptionRow.code == code))).first() is not None

    async def add_redemption(self, redemption: Redemption) -> Redemption:
        fields = asdict(redemption)
        fields.pop("id")
        fields["status"] = redemption.status.value
        row = RedemptionRow(**fields)
        self._s.add(row)
        await self._s.flush()
        return _redemption(row)

    async def redemption(self, redemption_id: int, *, for_update: bool = False) -> Redemption | None:
        query = select(RedemptionRow).where(RedemptionRow.id == redemption_id)
        row = (await self._fresh(query.with_for_update() if for_update else query)).one_or_none()
        return _redemption(row) if row else None

    async def redemption_by_code(self, code: str, *, for_update: bool = False) -> Redemption | None:
        query = select(RedemptionRow).where(RedemptionRow.code == code)
        row = (await self._fresh(query.with_for_update() if for_update else query)).one_or_none()
        return _redemption(row) if row else None

    async def count_held(self, account_id: int, reward_id: int) -> int:
        query = select(func.count()).where(
            RedemptionRow.account_id == account_id,
            RedemptionRow.reward_id == reward_id,
            RedemptionRow.status.in_(_HELD),
        )
        return int((await self._s.execute(query)).scalar_one())

    async def redemptions_of(self, account_id: int, limit: int) -> list[Redemption]:
        query = (
            select(RedemptionRow)
            .where(RedemptionRow.account_id == account_id)
            .order_by(RedemptionRow.id.desc())
            .limit(limit)
        )
        return [_redemption(r) for r in (await self._fresh(query)).all()]

    async def verified_by(self, telegram_id: int, since: datetime, limit: int) -> list[Redemption]:
        """Redemptions this service point handed over since ``since``, newest first."""
        query = (
            select(RedemptionRow)
            .where(
                RedemptionRow.verified_by == telegram_id,
                RedemptionRow.status == RedemptionStatus.FULFILLED.value,
                RedemptionRow.closed_at >= since,
            )
            .order_by(RedemptionRow.closed_at.desc(), RedemptionRow.id.desc())
            .limit(limit)
        )
        return [_redemption(r) for r in (await self._fresh(query)).all()]

    async def move(
        self,
        redemption_id: int,
        current: RedemptionStatus,
        target: RedemptionStatus,
        at: datetime,
        by: int | None = None,
    ) -> bool:
        statement = (
            update(RedemptionRow)
            .where(RedemptionRow.id == redemption_id, RedemptionRow.status == current.value)
            .values(status=target.value, closed_at=at, verified_by=by)
        )
        return getattr(await self._s.execute(statement), "rowcount", 0) == 1

    async def due(self, now: datetime, limit: int) -> list[int]:
        query = (
            select(RedemptionRow.id)
            .where(RedemptionRow.status == RedemptionStatus.RESERVED.value, RedemptionRow.expires_at <= now)
            .order_by(RedemptionRow.expires_at)
            .limit(limit)
        )
        return [int(i) for i in (await self._s.scalars(query)).all()]

    async def ledger(self, community_id: int, since: datetime | None, until: datetime | None) -> list[RedemptionLine]:
        """Every redemption of the community made in [since, until), oldest first, with its reward, its holder and
        the name of the service point whose code check fulfilled it. Read only."""
        verifier = aliased(ResidentRow)
        where = [RedemptionRow.community_id == community_id]
        if since is not None:
            where.append(RedemptionRow.created_at >= since)
        if until is not None:
            where.append(RedemptionRow.created_at < until)
        query = (
            select(
                RedemptionRow,
                RewardRow,
                PointsAccountRow.resident_id,
                ResidentRow.display_name,
                ResidentRow.telegram_id,
                BuildingRow.name,
                verifier.display_name,
            )
            .join(RewardRow, RewardRow.id == RedemptionRow.reward_id)
            .join(PointsAccountRow, PointsAccountRow.id == RedemptionRow.account_id)
            .join(ResidentRow, ResidentRow.id == PointsAccountRow.resident_id)
            .outerjoin(BuildingRow, BuildingRow.id == ResidentRow.building_id)
            .outerjoin(verifier, verifier.telegram_id == RedemptionRow.verified_by)
            .where(*where)
            .order_by(RedemptionRow.created_at, RedemptionRow.id)
            .execution_options(populate_existing=True)
        )
        return [
            RedemptionLine(_redemption(r), _reward(w), Holder(int(rid), name, tid, building), by)
            for r, w, rid, name, tid, building, by in (await self._s.execute(query)).all()
        ]

    async def _fresh(self, query: Any) -> Any:
        # Conditional UPDATEs bypass the identity map: reload rows instead of trusting cached objects.
        return await self._s.scalars(query.execution_options(populate_existing=True))
