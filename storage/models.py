"""SQLAlchemy 2 models. Every change here needs an Alembic migration (``storage/migrations``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, FetchedValue, ForeignKey, Index, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import BigIntPK, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class CommunityRow(Base):
    __tablename__ = "community"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    # IANA zone for schedules and quiet hours; NULL: the configured default (Asia/Shanghai).
    timezone: Mapped[str | None] = mapped_column(String(64))
    buildings: Mapped[list[BuildingRow]] = relationship(
        back_populates="community", order_by="BuildingRow.id", lazy="selectin"
    )


class BuildingRow(Base):
    __tablename__ = "building"
    __table_args__ = (UniqueConstraint("community_id", "code", name="uq_building_community_code"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    community: Mapped[CommunityRow] = relationship(back_populates="buildings")


class ResidentRow(Base):
    __tablename__ = "resident"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # NULL after /deleteme: the anonymous row keeps ledger and report history consistent.
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    locale: Mapped[str] = mapped_column(String(8), default="zh_Hans")
    display_name: Mapped[str | None] = mapped_column(String(64))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"))
    consent_version: Mapped[str | None] = mapped_column(String(16))
    consent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
    unreachable_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    # Changed to a new random value by a trigger on every write of the row or of its role grants (migration 0008):
    # the resident cache (storage/repositories.py) compares it to tell whether its copy is current.
    rev: Mapped[int | None] = mapped_column(
        BigInteger, deferred=True, server_default=FetchedValue(), server_onupdate=FetchedValue()
    )
    roles: Mapped[list[RoleGrantRow]] = relationship(lazy="selectin", cascade="all, delete-orphan")


class RoleGrantRow(Base):
    __tablename__ = "role_grant"
    __table_args__ = (Index("ix_role_grant_role_community", "role", "community_id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    # NULL: the role holds in every community (a city-level organiser).
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))


class GroupChatRow(Base):
    __tablename__ = "group_chat"
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(16), default="residents")
    # The bot was removed from the group (403): the outbox skips it until the group writes to the bot again.
    unreachable_at: Mapped[datetime | None]


class DialogStateRow(Base):
    __tablename__ = "dialog_state"
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # A new random value on every write (SqlStateStore sets one; a trigger does when a writer did not), so the
    # state cache can tell whether its copy is current.
    rev: Mapped[int | None] = mapped_column(BigInteger)


class CacheRevRow(Base):
    """A revision per cached set of rows, changed by triggers on every write of them (migration 0008).

    ``communities``: the communities with their buildings (tables community and building).
    """

    __tablename__ = "cache_rev"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    rev: Mapped[int | None] = mapped_column(BigInteger)


class AuditLogRow(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_telegram_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean)
    details: Mapped[dict[str, Any]]
