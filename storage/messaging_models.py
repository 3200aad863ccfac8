"""Messages in motion: the inbox (every update, durably taken before Telegram is told) and the outbox (every
message the bot sends on its own, written in the transaction of the change that causes it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class InboxRow(Base):
    """One update as Telegram sent it. ``status``: pending → done, or set_aside when it cannot be handled.

    A redelivered update has the same ``update_id`` *and* the same payload (digest); Telegram may reuse an id after
    a week without updates (and a restarted emulator starts again at 1), so the id alone does not identify one.
    """

    __tablename__ = "inbox_update"
    __table_args__ = (
        UniqueConstraint("update_id", "digest", name="uq_inbox_update_update_id_digest"),
        Index("ix_inbox_update_status_id", "status", "id"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime]
    not_before: Mapped[datetime | None]
    handled_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(300))


class OutboxRow(Base):
    """One message to send. ``payload`` holds either a rendered message (a reply to an update) or a notice
    (template, context, locale, buttons by action reference) that the dispatcher renders when it sends it.

    ``status``: pending → sent (with ``message_id``), skipped (recipient unreachable), failed (Telegram refused it
    for good; ``error`` says why). A claim (``claimed_until``) lets one dispatcher send a row at a time.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_status_priority_id", "status", "priority", "id"),
        Index("ix_outbox_message_ref_chat_id", "ref", "chat_id"),
        Index("ix_outbox_message_chat_id_status", "chat_id", "status"),
        Index("ix_outbox_message_campaign_id_status", "campaign_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(SmallInteger, default=10)
    # Once per key: the same cause never queues the same message twice.
    key: Mapped[str | None] = mapped_column(String(160), unique=True)
    # A name for the message so a later row can edit it (e.g. a report's card in the staff group).
    ref: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    not_before: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(300))
    # The campaign notice this row delivers (its progress and report count these rows).
    campaign_id: Mapped[int | None] = mapped_column(BigInteger)
