"""The audit log as staff read it (the web dashboard's 操作日志): who did what, when, allowed or refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

AUDIT_PER_PAGE = 50


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_telegram_id: int | None  # None: the command line or a timer (or a person who deleted their data)
    action: str
    allowed: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditQuery:
    """Which lines: those of people in ``communities`` (None: everyone's, the command line's too), optionally of one
    person and of actions starting with ``action`` (``report.`` is every report action)."""

    communities: frozenset[int] | None
    actor: int | None = None
    action: str | None = None
