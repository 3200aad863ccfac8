"""Durable timers: a job is a kind, a due time and a small JSON payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


def retry_delay(attempts: int) -> timedelta:
    """Back off 1, 2, 4, 8… minutes (at most an hour) after a failed run."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))
