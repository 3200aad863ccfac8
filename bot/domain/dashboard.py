"""The organisers' web dashboard: login links and sessions as storage keeps them (hashes of the secrets only)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.errors import DomainError

# The programme's targets the dashboard draws its figures against (the source plan: awareness 35% → 85%,
# participation in activities at least 60–70%, handling a problem in 2 days instead of 7; volunteers are measured
# against ``bot.domain.volunteers.PARTICIPATION_GOAL``).
AWARENESS_GOAL = 0.85
PARTICIPATION_BAND = (0.60, 0.70)
HANDLING_GOAL_DAYS = 2.0


def digest(secret: str) -> str:
    """What is stored of a link token or a session key: its SHA-256, hex (a leaked table opens nothing)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class LinkState(StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class LoginLink:
    id: int
    resident_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None

    def state(self, now: datetime) -> LinkState:
        if self.used_at is not None:
            return LinkState.USED
        return LinkState.VALID if now < self.expires_at else LinkState.EXPIRED


@dataclass(frozen=True)
class WebSession:
    id: int
    resident_id: int
    csrf: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.ended_at is None and now < self.expires_at


class DashboardOff(DomainError):
    """No public address is configured for the dashboard, so there is no link to give."""

    template = "dashboard/off"
