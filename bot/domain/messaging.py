"""Messages in motion: an update taken into the inbox, a message waiting in the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

# An update interrupted by this many crashes is set aside instead of killing the process again.
MAX_INBOX_ATTEMPTS = 5
# A transient failure (5xx, network) is retried this many times, backing off, before the row fails.
MAX_SEND_ATTEMPTS = 8
# Handled updates are kept this long to recognise a redelivery (Telegram redelivers for up to a day).
KEEP_HANDLED = timedelta(days=2)
# Finished outbox rows are kept this long (the newest row of each ref stays, so a card can still be edited).
KEEP_FINISHED = timedelta(days=7)


class OutboxStatus(Enum):
    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"  # the recipient blocked the bot (or the group removed it)
    FAILED = "failed"  # Telegram refused it for good; ``error`` says why
    CANCELLED = "cancelled"  # an operator or organiser stopped it before it was sent


@dataclass(frozen=True)
class InboxItem:
    id: int
    update_id: int
    payload: dict[str, Any]
    user_id: int | None
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    chat_id: int
    kind: str  # text, photo, poll, edit (of a message named ``ref``), answer (a callback query), rendered kinds
    payload: dict[str, Any]
    priority: int
    ref: str | None
    status: OutboxStatus
    attempts: int = 0
    message_id: int | None = None
    error: str | None = None


# Why a row was skipped: the person or group was marked unreachable before (cause unknown here), or Telegram said why.
UNREACHABLE = "recipient unreachable"
_UNREACHABLE_CAUSES = (
    ("blocked", "blocked"),  # "bot was blocked by the user"
    ("initiate", "never started"),  # "bot can't initiate conversation with a user": never opened the bot
    ("deactivated", "deactivated"),  # "user is deactivated"
    ("kicked", "removed from group"),  # "bot was kicked from the group chat"
    ("not a member", "removed from group"),
)


def unreachable_reason(description: str) -> str:
    """The reason kept on skipped rows for Telegram's 403 ``description``: organisers see why nobody got it."""
    text = description.lower()
    cause = next((name for needle, name in _UNREACHABLE_CAUSES if needle in text), None)
    return f"unreachable: {cause}" if cause else UNREACHABLE


def send_backoff(attempts: int) -> timedelta:
    """2, 4, 8 … seconds (at most 5 minutes) after a transient failure."""
    return timedelta(seconds=min(300, 2 ** max(1, attempts)))
