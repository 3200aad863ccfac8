"""居民提案制: residents propose, residents support, residents vote, organisers decide and account for the money.

A proposal moves through these states (``MOVES`` lists every allowed step; nothing else is possible):

    submitted ─accept─▶ collecting ─threshold reached─▶ voting ─window closes─▶ voted ─decide─▶ accepted
        │                   │                                                        └────────▶ not_accepted
        └─reject─▶ rejected └─period ends below the threshold─▶ expired

An accepted proposal gets an accountability record: milestones (a note, a date, an optional photo) and the money
planned and spent (资金使用公示). Money is kept in fen (integers), shown in yuan.

Everything here is pure: checks of what a resident typed, the state machine, the tally of votes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from bot.domain.errors import DomainError

TRACKS = ("civilised", "sanitary", "garden", "food_safety")  # the four tracks (content/tracks.yaml)

TITLE_MIN, TITLE_MAX = 4, 60
DESCRIPTION_MIN, DESCRIPTION_MAX = 10, 1000
REASON_MIN, REASON_MAX = 2, 300
NOTE_MIN, NOTE_MAX = 2, 300
PURPOSE_MIN, PURPOSE_MAX = 2, 100
# A community project's estimate: anything above 10 million yuan is not a resident's proposal but a typo.
COST_MAX_FEN = 10_000_000 * 100
THRESHOLD_MIN, THRESHOLD_MAX = 1, 5000
COLLECT_DAYS_MAX = 90
VOTE_DAYS_MAX = 30


class ProposalStatus(StrEnum):
    SUBMITTED = "submitted"  # waiting for an organiser's review
    REJECTED = "rejected"  # not taken for collection (the resident is told why)
    COLLECTING = "collecting"  # open for support until the collection period ends
    EXPIRED = "expired"  # the period ended below the threshold
    VOTING = "voting"  # the vote window is open
    VOTED = "voted"  # the window closed; the organiser records the decision
    ACCEPTED = "accepted"  # carried out, with its accountability record
    NOT_ACCEPTED = "not_accepted"  # decided against (the reason is public)


S = ProposalStatus
MOVES: dict[ProposalStatus, frozenset[ProposalStatus]] = {
    S.SUBMITTED: frozenset({S.COLLECTING, S.REJECTED}),
    S.COLLECTING: frozenset({S.VOTING, S.EXPIRED}),
    S.VOTING: frozenset({S.VOTED}),
    S.VOTED: frozenset({S.ACCEPTED, S.NOT_ACCEPTED}),
    S.REJECTED: frozenset(),
    S.EXPIRED: frozenset(),
    S.ACCEPTED: frozenset(),
    S.NOT_ACCEPTED: frozenset(),
}
# What residents see in /proposals (the author also sees their own, whatever its state).
PUBLIC = frozenset({S.COLLECTING, S.VOTING, S.VOTED, S.ACCEPTED, S.NOT_ACCEPTED})


class Choice(StrEnum):
    FOR = "for"
    AGAINST = "against"
    ABSTAIN = "abstain"


CHOICES = (Choice.FOR, Choice.AGAINST, Choice.ABSTAIN)


class ProposalError(DomainError):
    """A proposal step that cannot be taken; ``code`` names the reason in ``proposals/problem``."""

    template = "proposals/problem"

    def __init__(self, code: str, **context: Any) -> None:
        super().__init__(code, code=code, **context)
        self.code = code


def can_move(current: ProposalStatus, target: ProposalStatus) -> bool:
    return target in MOVES[current]


def check_move(current: ProposalStatus, target: ProposalStatus) -> None:
    """Refuse a step the state machine does not allow (a stale button, a second organiser)."""
    if not can_move(current, target):
        raise ProposalError("wrong_state", status=current.value)


@dataclass(frozen=True)
class Rules:
    """A community's proposal rules (organisers change them; defaults come from content)."""

    threshold: int
    collect_days: int
    vote_days: int

    def __post_init__(self) -> None:
        if not THRESHOLD_MIN <= self.threshold <= THRESHOLD_MAX:
            raise ProposalError("bad_threshold", low=THRESHOLD_MIN, high=THRESHOLD_MAX)
        if not 1 <= self.collect_days <= COLLECT_DAYS_MAX:
            raise ProposalError("bad_days", low=1, high=COLLECT_DAYS_MAX)
        if not 1 <= self.vote_days <= VOTE_DAYS_MAX:
            raise ProposalError("bad_days", low=1, high=VOTE_DAYS_MAX)


@dataclass(frozen=True)
class Draft:
    """What a resident submits (already checked with the functions below)."""

    title: str
    description: str
    cost_fen: int
    track: str
    photo: str | None = None

    def __post_init__(self) -> None:
        clean_title(self.title)
        clean_description(self.description)
        check_cost(self.cost_fen)
        check_track(self.track)


@dataclass(frozen=True)
class Tally:
    for_: int = 0
    against: int = 0
    abstain: int = 0

    @property
    def total(self) -> int:
        return self.for_ + self.against + self.abstain

    @property
    def carried(self) -> bool:
        """More residents voted for than against (abstentions count for turnout only)."""
        return self.for_ > self.against

    def to_json(self) -> dict[str, int]:
        return {"for": self.for_, "against": self.against, "abstain": self.abstain, "total": self.total}


@dataclass(frozen=True)
class Proposal:
    id: int
    community_id: int
    author_id: int | None
    title: str
    description: str
    cost_fen: int
    track: str
    status: ProposalStatus
    created_at: datetime
    photo: str | None = None
    threshold: int = 0  # fixed when collection starts
    supports: int = 0
    reason: str | None = None  # why rejected, or not accepted
    reviewed_at: datetime | None = None
    collect_ends_at: datetime | None = None
    vote_starts_at: datetime | None = None
    vote_ends_at: datetime | None = None
    closed_at: datetime | None = None
    decided_at: datetime | None = None
    tally: Tally = field(default_factory=Tally)
    budget_fen: int | None = None  # planned (set when accepted: the estimate unless the organiser changes it)

    def vote_open(self, now: datetime) -> bool:
        return (
            self.status is S.VOTING
            and self.vote_starts_at is not None
            and self.vote_ends_at is not None
            and self.vote_starts_at <= now < self.vote_ends_at
        )

    def collecting(self, now: datetime) -> bool:
        return self.status is S.COLLECTING and self.collect_ends_at is not None and now < self.collect_ends_at


@dataclass(frozen=True)
class Milestone:
    id: int
    proposal_id: int
    note: str
    at: datetime
    photo: str | None = None


@dataclass(frozen=True)
class Expense:
    id: int
    proposal_id: int
    amount_fen: int
    purpose: str
    at: datetime


@dataclass(frozen=True)
class Accountability:
    """An accepted proposal's record: milestones and the money (资金使用公示)."""

    milestones: tuple[Milestone, ...] = ()
    expenses: tuple[Expense, ...] = ()
    budget_fen: int | None = None

    @property
    def spent_fen(self) -> int:
        return sum(e.amount_fen for e in self.expenses)

    @property
    def over_budget(self) -> bool:
        return self.budget_fen is not None and self.spent_fen > self.budget_fen


# ---- checks of what people type ---------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")


def _clean(text: str | None, low: int, high: int, what: str, *, one_line: bool) -> str:
    value = (text or "").strip()
    if one_line:
        value = _SPACES.sub(" ", value)
    if not value:
        raise ProposalError("empty", field=what)
    if len(value) > high:
        raise ProposalError("too_long", field=what, limit=high, length=len(value))
    if len(value) < low:
        raise ProposalError("too_short", field=what, limit=low)
    return value


def clean_title(text: str | None) -> str:
    return _clean(text, TITLE_MIN, TITLE_MAX, "title", one_line=True)


def clean_description(text: str | None) -> str:
    return _clean(text, DESCRIPTION_MIN, DESCRIPTION_MAX, "description", one_line=False)


def clean_reason(text: str | None) -> str:
    return _clean(text, REASON_MIN, REASON_MAX, "reason", one_line=False)


def clean_note(text: str | None) -> str:
    return _clean(text, NOTE_MIN, NOTE_MAX, "note", one_line=False)


def clean_purpose(text: str | None) -> str:
    return _clean(text, PURPOSE_MIN, PURPOSE_MAX, "purpose", one_line=True)


def check_track(track: str) -> str:
    if track not in TRACKS:
        raise ProposalError("bad_track")
    return track


def check_cost(fen: int) -> int:
    if fen < 0:
        raise ProposalError("cost_negative")
    if fen > COST_MAX_FEN:
        raise ProposalError("cost_absurd", limit=COST_MAX_FEN // 100)
    return fen


_AMOUNT = re.compile(r"^[-+]?\d+(\.\d{1,2})?$")


def parse_yuan(text: str | None) -> int:
    """An amount in yuan as people type it (``5000``, ``5,000.50``, ``¥800``, ``1200元``) → fen.

    Refused with a reason: not a number, negative, more than two decimals, absurdly large.
    """
    raw = (text or "").strip().replace(",", "").replace("，", "").replace(" ", "")
    raw = raw.removeprefix("¥").removeprefix("￥").removesuffix("元").removesuffix("RMB").removesuffix("rmb")
    raw = raw.replace("－", "-").replace("．", ".")
    if not _AMOUNT.match(raw):
        raise ProposalError("cost_not_number")
    try:
        amount = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ProposalError("cost_not_number") from None
    if amount < 0:
        raise ProposalError("cost_negative")
    if amount > COST_MAX_FEN // 100:
        raise ProposalError("cost_absurd", limit=COST_MAX_FEN // 100)
    return int(amount * 100)


def parse_expense(text: str | None) -> tuple[int, str]:
    """``<amount> <what it was spent on>`` (``3200 购买长椅 4 张``) → (fen, purpose)."""
    amount, _, purpose = (text or "").strip().partition(" ")
    fen = parse_yuan(amount)
    if fen == 0:
        raise ProposalError("amount_zero")
    return fen, clean_purpose(purpose)


def yuan(fen: int) -> str:
    """Fen as yuan for people: ``5000``, ``5000.50``."""
    whole, cents = divmod(fen, 100)
    return f"{whole}" if cents == 0 else f"{whole}.{cents:02d}"


# ---- time ------------------------------------------------------------------------------------------------------


def collection_ends(now: datetime, rules: Rules) -> datetime:
    return now + timedelta(days=rules.collect_days)


def vote_window(now: datetime, rules: Rules) -> tuple[datetime, datetime]:
    return now, now + timedelta(days=rules.vote_days)


def tally(choices: list[Choice]) -> Tally:
    return Tally(
        sum(1 for c in choices if c is Choice.FOR),
        sum(1 for c in choices if c is Choice.AGAINST),
        sum(1 for c in choices if c is Choice.ABSTAIN),
    )
