"""The organisers' web dashboard: one-time login links and browser sessions (only hashes of their secrets)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class DashboardLinkRow(Base):
    """A login link sent by the bot: valid until ``expires_at``, once (``used_at``)."""

    __tablename__ = "dashboard_link"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the token, hex
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class DashboardSessionRow(Base):
    """A logged-in browser: the cookie holds the session key, this row its SHA-256."""

    __tablename__ = "dashboard_session"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
