"""What an operator sees and selects of the outbox from the command line. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.messaging import OutboxStatus

# Rows changed per transaction by ``sicheng outbox retry|cancel`` (short locks; progress between batches).
ADMIN_BATCH = 500


@dataclass(frozen=True)
class Selection:
    """Outbox rows an operator names: all conditions given must hold. ``statuses`` empty: any status."""

    ids: tuple[int, ...] = ()
    campaign_id: int | None = None
    chat_id: int | None = None
    statuses: tuple[OutboxStatus, ...] = ()

    @property
    def names_rows(self) -> bool:
        """True when something narrows the selection beyond a status (ids, a campaign, a chat)."""
        return bool(self.ids) or self.campaign_id is not None or self.chat_id is not None

    def with_status(self, status: OutboxStatus) -> Selection:
        return Selection(self.ids, self.campaign_id, self.chat_id, (status,))

    def to_json(self) -> dict[str, Any]:
        return {
            "ids": list(self.ids),
            "campaign": self.campaign_id,
            "chat": self.chat_id,
            "statuses": [s.value for s in self.statuses],
        }


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as an operator reads it (``template``: the notice template of a rendered-later row)."""

    id: int
    chat_id: int
    kind: str
    template: str | None
    priority: int
    status: OutboxStatus
    attempts: int
    created_at: datetime
    not_before: datetime | None
    sent_at: datetime | None
    error: str | None
    campaign_id: int | None


@dataclass(frozen=True)
class AdminResult:
    """What ``retry`` or ``cancel`` did: rows selected, rows changed, rows left alone (sent meanwhile, or being sent
    right now), and campaigns reopened so their counts follow the retried rows."""

    matched: int
    changed: int
    campaigns: tuple[int, ...] = ()

    @property
    def left(self) -> int:
        return self.matched - self.changed
