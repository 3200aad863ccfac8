"""Rewards catalogue and redemptions: who may redeem what, the state machine, and the codes."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.domain.errors import DomainError, Forbidden


class OutOfStock(DomainError):
    template = "points/out_of_stock"


class LimitReached(DomainError):
    template = "points/limit_reached"


class RewardUnavailable(DomainError):
    template = "points/unavailable"


class CodeNotFound(DomainError):
    template = "points/code_not_found"


class AlreadyVerified(DomainError):
    template = "points/already_verified"


class OtherCommunity(Forbidden):
    template = "points/other_community"


class RedemptionClosed(DomainError):
    template = "points/closed"


class RedemptionStatus(StrEnum):
    RESERVED = "reserved"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# Only a reserved redemption moves, and it moves once: that is what makes a code usable exactly once.
TRANSITIONS: Mapping[RedemptionStatus, frozenset[RedemptionStatus]] = {
    RedemptionStatus.RESERVED: frozenset(
        {RedemptionStatus.FULFILLED, RedemptionStatus.CANCELLED, RedemptionStatus.EXPIRED}
    ),
}


def can_move(current: RedemptionStatus, target: RedemptionStatus) -> bool:
    """True when a redemption in ``current`` may become ``target``."""
    return target in TRANSITIONS.get(current, frozenset())


def refunds(target: RedemptionStatus) -> bool:
    """Cancelling and expiring give the points and the stock back; fulfilling does not."""
    return target in (RedemptionStatus.CANCELLED, RedemptionStatus.EXPIRED)


@dataclass(frozen=True)
class Reward:
    id: int
    community_id: int
    slug: str
    name: Mapping[str, str]
    cost: int
    stock: int | None = None  # None: unlimited
    per_person_limit: int | None = None
    description: Mapping[str, str] = field(default_factory=dict)
    active: bool = True
    active_from: datetime | None = None
    active_until: datetime | None = None
    service_point: str | None = None

    def title(self, locale: str) -> str:
        """The name in ``locale``, falling back to Chinese."""
        return self.name.get(locale) or self.name.get("zh_Hans") or self.slug

    def available(self, now: datetime) -> bool:
        """Active, inside its window, and not sold out."""
        started = self.active_from is None or self.active_from <= now
        running = self.active_until is None or now < self.active_until
        return self.active and started and running and self.stock != 0

    def check_redeemable(self, now: datetime, already: int) -> None:
        """Raise the domain error that explains why this resident cannot redeem it now."""
        if not self.active or not (self.active_from is None or self.active_from <= now):
            raise RewardUnavailable(reward=self.slug)
        if self.active_until is not None and now >= self.active_until:
            raise RewardUnavailable(reward=self.slug)
        if self.stock == 0:
            raise OutOfStock(reward=self.slug)
        if self.per_person_limit is not None and already >= self.per_person_limit:
            raise LimitReached(limit=self.per_person_limit)


@dataclass(frozen=True)
class Redemption:
    id: int
    code: str
    account_id: int
    community_id: int
    reward_id: int
    cost: int
    status: RedemptionStatus
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None = None
    verified_by: int | None = None
    # Refunded points keep the earliest expiry of the points spent, so cancelling never extends their life.
    refund_expires_at: datetime | None = None

    @property
    def code_shown(self) -> str:
        return show_code(self.code)


# No 0/O, 1/I/L: a code is read aloud at a counter and typed on a phone.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def new_code(rng: random.Random, length: int = CODE_LENGTH) -> str:
    """A random redemption code; pass ``secrets.SystemRandom()`` in production, a seeded RNG in tests."""
    return "".join(rng.choice(CODE_ALPHABET) for _ in range(length))


def normalise_code(text: str) -> str | None:
    """Accept ``abcd-2345`` or ``ABCD 2345``; None when it cannot be one of our codes."""
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def show_code(code: str) -> str:
    """Codes are shown in two groups of four, easier to read out."""
    return f"{code[:4]}-{code[4:]}"
