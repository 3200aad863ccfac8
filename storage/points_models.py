"""Points models: accounts (maintained balance), the append-only ledger, lots, rewards and redemptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class PointsAccountRow(Base):
    """One resident's points in one community; the balance equals the sum of its entries (see check)."""

    __tablename__ = "points_account"
    __table_args__ = (
        UniqueConstraint("resident_id", "community_id", name="uq_points_account_resident_community"),
        # The last line of defence: even a buggy use case cannot spend points that are not there.
        CheckConstraint("balance >= 0", name="balance_not_negative"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    balance: Mapped[int] = mapped_column(Integer, default=0)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)


class PointsEntryRow(Base):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "points_entry"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_points_entry_account_reason_at", "account_id", "reason", "at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_account.id"))
    amount: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(24))
    ref: Mapped[str] = mapped_column(String(64), default="")
    actor_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(index=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)


class PointsLotRow(Base):
    """Points credited together, spent oldest first; ``remaining`` is what expiry can still take."""

    __tablename__ = "points_lot"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
        Index("ix_points_lot_account_remaining", "account_id", "remaining"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_account.id"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("points_entry.id"), unique=True)
    amount: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(index=True)


class RewardRow(Base):
    __tablename__ = "reward"
    __table_args__ = (
        UniqueConstraint("community_id", "slug", name="uq_reward_community_slug"),
        CheckConstraint("cost > 0", name="cost_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    slug: Mapped[str] = mapped_column(String(32))
    name: Mapped[dict[str, Any]]
    description: Mapped[dict[str, Any]]
    cost: Mapped[int] = mapped_column(Integer)
    # NULL: unlimited.
    stock: Mapped[int | None] = mapped_column(Integer)
    per_person_limit: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    active_from: Mapped[datetime | None]
    active_until: Mapped[datetime | None]
    service_point: Mapped[str | None] = mapped_column(String(128))


class RedemptionRow(Base):
    __tablename__ = "redemption"
    __table_args__ = (
        Index("ix_redemption_account_reward_status", "account_id", "reward_id", "status"),
        Index("ix_redemption_status_expires_at", "status", "expires_at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("points_account.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("reward.id"))
    cost: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    verified_by: Mapped[int | None] = mapped_column(BigInteger)
    refund_expires_at: Mapped[datetime | None]
