"""Volunteer service (志愿服务): profiles, activities, shifts, bookings, certificates, community settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class VolunteerProfileRow(Base):
    """A resident who registered as a volunteer (consented extra details only: skills, availability)."""

    __tablename__ = "volunteer_profile"
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    skills: Mapped[str] = mapped_column(String(200), default="")
    availability: Mapped[str] = mapped_column(String(200), default="")
    stars_announced: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(BigInteger)  # telegram id of the organiser


class VolunteerSettingRow(Base):
    """A community's volunteer rules; no row: no approval needed, the common star thresholds."""

    __tablename__ = "volunteer_setting"
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    stars: Mapped[list[int]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class ActivityRow(Base):
    __tablename__ = "volunteer_activity"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    track: Mapped[str | None] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text)
    place: Mapped[str] = mapped_column(String(120))
    contact: Mapped[str] = mapped_column(String(60))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]


class ShiftRow(Base):
    __tablename__ = "volunteer_shift"
    __table_args__ = (
        CheckConstraint("capacity > 0", name="capacity_positive"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_volunteer_shift_starts_at", "starts_at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("volunteer_activity.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    capacity: Mapped[int] = mapped_column(Integer)
    points_per_hour: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str] = mapped_column(String(200), default="")
    cutoff_hours: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(12))
    secret: Mapped[str] = mapped_column(String(64))
    code_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class BookingRow(Base):
    """A volunteer on a shift. At most one active (booked / waiting / offered) booking per person and shift — a
    partial unique index on PostgreSQL and SQLite — and ``position`` keeps the order of arrival."""

    __tablename__ = "volunteer_booking"
    __table_args__ = (
        Index(
            "uq_volunteer_booking_active",
            "shift_id",
            "resident_id",
            unique=True,
            postgresql_where=text("status IN ('booked', 'waiting', 'offered')"),
            sqlite_where=text("status IN ('booked', 'waiting', 'offered')"),
        ),
        Index("ix_volunteer_booking_resident", "resident_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("volunteer_shift.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12))
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    offered_until: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]
    checked_out_at: Mapped[datetime | None]
    hours: Mapped[str] = mapped_column(String(12), default="none")
    minutes: Mapped[int | None] = mapped_column(Integer)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    correction: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    approved_by: Mapped[int | None] = mapped_column(BigInteger)
    code_failures: Mapped[int] = mapped_column(SmallInteger, default=0)


class CertificateRow(Base):
    """An issued 志愿服务记录证明, kept so that its number can be checked (``/checkcert``)."""

    __tablename__ = "volunteer_certificate"
    __table_args__ = (UniqueConstraint("number", name="uq_volunteer_certificate_number"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    number: Mapped[str] = mapped_column(String(40))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id", ondelete="SET NULL"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    period_from: Mapped[datetime]
    period_to: Mapped[datetime]
    minutes: Mapped[int] = mapped_column(Integer)
    services: Mapped[list[Any]] = mapped_column(JSON)
    contact: Mapped[str] = mapped_column(String(60))
    issued_at: Mapped[datetime]
    issued_by: Mapped[int | None] = mapped_column(BigInteger)
