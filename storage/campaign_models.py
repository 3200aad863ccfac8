"""Campaign notices (通知公告) and residents' notice settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class CampaignRow(Base):
    """One notice an organiser composed. Its deliveries are outbox rows with ``campaign_id`` set; when it is done
    their final counts are kept here (finished outbox rows are purged after a week)."""

    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_status_send_at", "status", "send_at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12))
    body: Mapped[str] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(String(64))
    photo: Mapped[str | None] = mapped_column(String(256))
    track: Mapped[str | None] = mapped_column(String(16))
    buttons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    audience: Mapped[dict[str, Any]]
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    paid: Mapped[bool] = mapped_column(Boolean, default=False)
    repeat_weekly: Mapped[bool] = mapped_column(Boolean, default=False)
    series_id: Mapped[int | None] = mapped_column(BigInteger)
    send_at: Mapped[datetime]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]]
    failures: Mapped[dict[str, Any]]
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_at: Mapped[datetime | None]


class NoticePreferenceRow(Base):
    """A resident's notice settings; no row means the defaults (notices on, quiet 22:00–08:00)."""

    __tablename__ = "notice_preference"
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    notices_off: Mapped[bool] = mapped_column(Boolean, default=False)
    # Local minutes of the day; both NULL: no quiet hours.
    quiet_from: Mapped[int | None] = mapped_column(SmallInteger)
    quiet_to: Mapped[int | None] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime]


class NoticeSubscriptionRow(Base):
    """A resident follows a track's notices."""

    __tablename__ = "notice_subscription"
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    track: Mapped[str] = mapped_column(String(16), primary_key=True)
    __table_args__ = (Index("ix_notice_subscription_track", "track"),)
