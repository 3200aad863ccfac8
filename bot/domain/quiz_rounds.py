"""Quiz rounds as stored: private rounds (whose turn, which question) and group quizzes with polls and votes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.domain.quiz import AlreadyAnswered, NotYourRound, RoundOver


class RoundStatus(StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class Round:
    """A private round: ``position`` is the index of the question waiting for an answer."""

    id: int
    resident_id: int
    track: str
    question_ids: tuple[str, ...]
    position: int = 0
    score: int = 0
    selected: tuple[int, ...] = ()
    status: RoundStatus = RoundStatus.ACTIVE

    @property
    def total(self) -> int:
        return len(self.question_ids)

    @property
    def current(self) -> str:
        return self.question_ids[self.position]

    def check_turn(self, resident_id: int, position: int) -> None:
        """Refuse a button of someone else's round, of a question already answered, of a round over."""
        if resident_id != self.resident_id:
            raise NotYourRound()
        if position < self.position:
            raise AlreadyAnswered()
        if self.status is not RoundStatus.ACTIVE or position != self.position:
            raise RoundOver()


class GroupStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(frozen=True)
class GroupQuiz:
    id: int
    chat_id: int
    community_id: int
    track: str
    locale: str
    question_ids: tuple[str, ...]
    open_period: int
    position: int
    status: GroupStatus
    closes_at: datetime

    @property
    def last(self) -> bool:
        return self.position + 1 >= len(self.question_ids)


@dataclass(frozen=True)
class GroupPoll:
    poll_id: str
    quiz_id: int
    position: int
    question_id: str
    correct_option: int


@dataclass(frozen=True)
class PollVote:
    """A poll answer as stored: who (masked name), right or not, and what the ledger credited (None: owed)."""

    id: int
    quiz_id: int
    question_id: str
    telegram_id: int
    name: str
    correct: bool
    resident_id: int | None = None
    points: int | None = None
    answered_at: datetime | None = None
