"""Issue reports (问题台账): reports, their history, +1 followers and the yearly ticket counter."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class TicketCounterRow(Base):
    """The last ticket number of a year; bumped with an atomic upsert so concurrent reports never collide."""

    __tablename__ = "report_ticket_counter"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)


class ReportRow(Base):
    __tablename__ = "report"
    __table_args__ = (
        Index("ix_report_community_category_status", "community_id", "category", "status"),
        Index("ix_report_community_submitted_at", "community_id", "submitted_at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    ticket: Mapped[str] = mapped_column(String(16), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    category: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(String(500))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"))
    address: Mapped[str | None] = mapped_column(String(100))
    # Keys in the file store, metadata already stripped.
    photos: Mapped[list[Any]] = mapped_column(JSON)
    skip_reason: Mapped[str | None] = mapped_column(String(16))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"), index=True)
    deadline: Mapped[datetime | None]
    submitted_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(String(12))
    duplicate_of: Mapped[int | None] = mapped_column(ForeignKey("report.id"))
    after_photo: Mapped[str | None] = mapped_column(String(200))
    resolution_note: Mapped[str | None] = mapped_column(String(300))
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None]


class ReportEventRow(Base):
    """History, append-only: every transition (and reminders, escalations) with actor and time."""

    __tablename__ = "report_event"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    # NULL: the system (a timer); a resident id otherwise.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    photo: Mapped[str | None] = mapped_column(String(200))


class ReportFollowerRow(Base):
    """A resident who said "我也遇到了 (+1)" instead of opening a duplicate."""

    __tablename__ = "report_follower"
    __table_args__ = (UniqueConstraint("report_id", "resident_id", name="uq_report_follower_report_resident"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    at: Mapped[datetime]
