"""Civic points (文明积分): earning rules and caps, FIFO lots with expiry, redemption states, codes."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from bot.domain.errors import DomainError


class Reason(StrEnum):
    QUIZ = "quiz"
    REPORT_ACCEPTED = "report_accepted"
    REPORT_VERIFIED = "report_verified"
    VOLUNTEER_HOURS = "volunteer_hours"
    SURVEY = "survey"
    MANUAL_GRANT = "manual_grant"
    REDEMPTION = "redemption"
    REFUND = "refund"
    EXPIRY = "expiry"
    REVERSAL = "reversal"


# Reasons a feature may award through the rules; the rest are written by the ledger itself.
EARNED = frozenset({Reason.QUIZ, Reason.REPORT_ACCEPTED, Reason.REPORT_VERIFIED, Reason.VOLUNTEER_HOURS, Reason.SURVEY})
# Rankings count merit (what was earned, less corrections), not what is left after spending.
RANKED = EARNED | {Reason.MANUAL_GRANT, Reason.REVERSAL}


class CapKind(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class InsufficientPoints(DomainError):
    template = "points/insufficient"


@dataclass(frozen=True)
class Rule:
    points: int
    daily_cap: int | None = None
    weekly_cap: int | None = None


@dataclass(frozen=True)
class Policy:
    """Earning rules (from content) and the timing of expiry and redemptions."""

    rules: Mapping[Reason, Rule]
    timezone: tzinfo = UTC
    expiry_months: int | None = None
    reminder_days: int = 30
    redemption_valid_days: int = 14

    def rule(self, reason: Reason) -> Rule:
        """The rule for an earning reason; reasons without a rule earn nothing."""
        return self.rules.get(reason, Rule(0))

    def expires_at(self, earned_at: datetime) -> datetime | None:
        """When points earned at ``earned_at`` expire (None: never)."""
        return None if self.expiry_months is None else add_months(earned_at, self.expiry_months)


@dataclass(frozen=True)
class Grant:
    """What an award credits after caps; ``capped_by`` says which cap cut it and ``cap`` its size."""

    requested: int
    amount: int
    capped_by: CapKind | None = None
    cap: int | None = None


def apply_caps(rule: Rule, units: int, earned_today: int, earned_week: int) -> Grant:
    """Points for ``units`` (answers, hours...) limited by what the day and week still allow."""
    requested = max(0, rule.points * units)
    grant = Grant(requested, requested)
    for kind, cap, earned in (
        (CapKind.DAILY, rule.daily_cap, earned_today),
        (CapKind.WEEKLY, rule.weekly_cap, earned_week),
    ):
        if cap is not None and grant.amount > max(0, cap - earned):
            grant = replace(grant, amount=max(0, cap - earned), capped_by=kind, cap=cap)
    return grant


# ---- time windows (local days and weeks) ---------------------------------------------------


def day_start(now: datetime, tz: tzinfo) -> datetime:
    """Start (UTC) of the local day containing ``now``."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def week_start(now: datetime, tz: tzinfo) -> datetime:
    """Start (UTC) of the local week (Monday) containing ``now``."""
    local = now.astimezone(tz)
    monday = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=local.weekday())
    return monday.astimezone(UTC)


def month_start(now: datetime, tz: tzinfo) -> datetime:
    """Start (UTC) of the local calendar month containing ``now``."""
    local = now.astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` later, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


# ---- lots: where a balance came from, spent oldest first -----------------------------------


@dataclass(frozen=True)
class Lot:
    id: int
    remaining: int
    expires_at: datetime | None


def fifo(lots: Iterable[Lot]) -> list[Lot]:
    """Lots in spending order: soonest expiry first, never-expiring last, then by age."""
    return sorted(
        lots,
        key=lambda lot: (lot.expires_at is None, lot.expires_at or datetime.max.replace(tzinfo=UTC), lot.id),
    )


def consume(lots: Iterable[Lot], amount: int) -> list[tuple[int, int]]:
    """(lot id, points taken) covering ``amount`` oldest first; InsufficientPoints when lots fall short."""
    takes: list[tuple[int, int]] = []
    left = amount
    for lot in fifo(lots):
        if left <= 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            takes.append((lot.id, take))
            left -= take
    if left > 0:
        raise InsufficientPoints(balance=amount - left, cost=amount)
    return takes


def expired(lots: Iterable[Lot], now: datetime) -> list[Lot]:
    """Lots whose points have expired and are still on the balance."""
    return [lot for lot in lots if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= now]


def expiring_soon(lots: Iterable[Lot], now: datetime, days: int) -> list[Lot]:
    """Lots that expire within ``days`` (for the reminder), soonest first."""
    limit = now + timedelta(days=days)
    return fifo(
        lot for lot in lots if lot.remaining > 0 and lot.expires_at is not None and now < lot.expires_at <= limit
    )


@dataclass
class Wallet:
    """An in-memory account: the reference model the SQL ledger must agree with (used by property tests)."""

    entries: list[int] = field(default_factory=list)
    lots: dict[int, Lot] = field(default_factory=dict)

    @property
    def balance(self) -> int:
        return sum(self.entries)

    def credit(self, amount: int, expires_at: datetime | None) -> None:
        """Add earned (or refunded) points as a new lot."""
        self.entries.append(amount)
        self.lots[len(self.lots) + 1] = Lot(len(self.lots) + 1, amount, expires_at)

    def debit(self, amount: int) -> None:
        """Spend points oldest first; refuses to go below zero."""
        takes = consume(self.lots.values(), amount)
        for lot_id, take in takes:
            self.lots[lot_id] = replace(self.lots[lot_id], remaining=self.lots[lot_id].remaining - take)
        self.entries.append(-amount)

    def expire(self, now: datetime) -> int:
        """Remove what has expired; returns the points removed."""
        gone = expired(self.lots.values(), now)
        for lot in gone:
            self.lots[lot.id] = replace(lot, remaining=0)
            self.entries.append(-lot.remaining)
        return sum(lot.remaining for lot in gone)


# ---- what the ledger hands out -------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A resident's points in one community; ``hidden`` keeps them out of rankings."""

    id: int
    resident_id: int
    community_id: int
    balance: int
    hidden: bool = False


@dataclass(frozen=True)
class Entry:
    id: int
    amount: int
    reason: Reason
    ref: str
    at: datetime
    note: str | None = None


@dataclass(frozen=True)
class AwardResult:
    """Outcome of an award, for a handler to tell the resident what happened (and why not more)."""

    credited: int
    requested: int
    balance: int
    capped_by: CapKind | None = None
    cap: int | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class Standing:
    """One line of a ranking: a (masked) resident or a building, and their points."""

    name: str
    points: int
    me: bool = False


def mask_name(name: str | None) -> str:
    """Rankings show 李** rather than a full name: enough to recognise oneself, little for others."""
    if not name:
        return "***"
    return name[0] + "**"
