"""Durable timers (reminders, escalations, expiries): rows polled by the bot process, any feature's kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class JobRow(Base):
    __tablename__ = "job"
    __table_args__ = (Index("ix_job_done_at_due_at", "done_at", "due_at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    # Set for jobs that must exist once (e.g. one reminder per report and deadline); NULL otherwise.
    key: Mapped[str | None] = mapped_column(String(160), unique=True)
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    # A worker that claimed the job holds it until then; a crashed worker's job is claimed again afterwards.
    locked_until: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
