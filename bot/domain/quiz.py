"""Quizzes: the question library, spaced repetition, question selection, option order, round records."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain.errors import DomainError, InvalidInput, NotFound

TRACKS = ("civilised", "sanitary", "garden", "food_safety")
MIXED = "mixed"
# Wrong answers come back after 1 day, then 3, then 7 days of consecutive correct answers; then they rest.
INTERVALS = (timedelta(days=1), timedelta(days=3), timedelta(days=7))
# Options longer than this (Telegram counts UTF-16 units) make unreadable buttons: number them instead.
BUTTON_TEXT_MAX = 20


class UnknownTrack(DomainError):
    template = "quiz/unknown_track"


class NotYourRound(DomainError):
    template = "quiz/not_yours"


class AlreadyAnswered(DomainError):
    template = "quiz/already_answered"


class RoundOver(DomainError):
    template = "quiz/round_over"


class NothingChosen(DomainError):
    template = "quiz/nothing_chosen"


class GroupNotLinked(DomainError):
    template = "quiz/group_not_linked"


class GroupBusy(DomainError):
    template = "quiz/group_busy"


# ---- the library (loaded from content) -------------------------------------------------------


@dataclass(frozen=True)
class QuestionText:
    question: str
    options: tuple[str, ...]
    explanation: str


@dataclass(frozen=True)
class Question:
    id: str
    track: str
    correct: frozenset[int]
    texts: Mapping[str, QuestionText]
    tags: frozenset[str] = frozenset()

    @property
    def multi(self) -> bool:
        return len(self.correct) > 1

    def text(self, locale: str) -> QuestionText:
        """The text in ``locale``, falling back to Chinese."""
        return self.texts.get(locale) or self.texts["zh_Hans"]


@dataclass(frozen=True)
class CardText:
    title: str
    body: str
    source: str


@dataclass(frozen=True)
class Card:
    id: str
    track: str
    texts: Mapping[str, CardText]
    tags: frozenset[str] = frozenset()

    def text(self, locale: str) -> CardText:
        return self.texts.get(locale) or self.texts["zh_Hans"]


@dataclass(frozen=True)
class TrackInfo:
    key: str
    emoji: str
    names: Mapping[str, str]
    descriptions: Mapping[str, str]

    def name(self, locale: str) -> str:
        return self.names.get(locale) or self.names["zh_Hans"]

    def description(self, locale: str) -> str:
        return self.descriptions.get(locale) or self.descriptions["zh_Hans"]


@dataclass(frozen=True)
class Library:
    tracks: tuple[TrackInfo, ...]
    questions: Mapping[str, Question]
    cards: tuple[Card, ...] = ()

    def track(self, key: str) -> TrackInfo:
        """A track by key; UnknownTrack otherwise."""
        found = next((t for t in self.tracks if t.key == key), None)
        if found is None:
            raise UnknownTrack(track=key)
        return found

    def pool(self, track: str, *, single_only: bool = False) -> list[Question]:
        """Questions of a track (every track for ``mixed``), in bank order."""
        if track != MIXED:
            self.track(track)
        return [
            q for q in self.questions.values() if (track == MIXED or q.track == track) and not (single_only and q.multi)
        ]

    def card(self, card_id: str) -> Card:
        found = next((c for c in self.cards if c.id == card_id), None)
        if found is None:
            raise NotFound(what="card")
        return found


# ---- spaced repetition -----------------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    """What a resident did with one question: ``step`` is the repetition step (None: not being repeated)."""

    question_id: str
    track: str
    times: int
    last_correct: bool
    last_at: datetime
    step: int | None = None
    due_at: datetime | None = None


def schedule(previous: Review | None, question: Question, correct: bool, now: datetime) -> Review:
    """The review after answering: wrong restarts the 1-3-7 day ladder, correct climbs it, then it rests."""
    base = previous or Review(question.id, question.track, 0, correct, now)
    step = _next_step(base.step, correct)
    due = None if step is None else now + INTERVALS[step]
    return replace(base, times=base.times + 1, last_correct=correct, last_at=now, step=step, due_at=due)


def _next_step(step: int | None, correct: bool) -> int | None:
    if not correct:
        return 0
    if step is None or step + 1 >= len(INTERVALS):
        return None
    return step + 1


def pick(
    pool: Sequence[Question],
    history: Mapping[str, Review],
    now: datetime,
    count: int,
    seed: str,
    focus: frozenset[str] = frozenset(),
) -> list[Question]:
    """Due repetitions first, then questions never seen (in a per-resident order), then the least recent.

    A question does not come back before every other one was seen, unless it is due for repetition;
    questions waiting for a later repetition are used only when nothing else is left.
    """
    order = {q.id: i for i, q in enumerate(random.Random(seed).sample(list(pool), len(pool)))}

    def rank(q: Question) -> tuple[int, float, int, int]:
        review = history.get(q.id)
        unfocused = 0 if q.tags & focus else 1
        if review is None:
            return (1, 0.0, unfocused, order[q.id])
        if review.due_at is not None and review.due_at <= now:
            return (0, review.due_at.timestamp(), unfocused, order[q.id])
        waiting = review.due_at is not None
        return (3 if waiting else 2, review.last_at.timestamp(), unfocused, order[q.id])

    return sorted(pool, key=rank)[:count]


# ---- showing options -------------------------------------------------------------------------


def option_order(question_id: str, salt: str, count: int) -> tuple[int, ...]:
    """A stable shuffle of option indexes per person (or per group quiz): shown position → bank index."""
    order = list(range(count))
    random.Random(f"{salt}:{question_id}").shuffle(order)
    return tuple(order)


def to_bank(order: Sequence[int], shown: Iterable[int]) -> frozenset[int]:
    """Bank indexes of options chosen by their shown position; InvalidInput for positions not shown."""
    picked = list(shown)
    if any(not 0 <= i < len(order) for i in picked):
        raise InvalidInput(field="option", value=picked)
    return frozenset(order[i] for i in picked)


def to_shown(order: Sequence[int], bank: Iterable[int]) -> tuple[int, ...]:
    """Shown positions of bank indexes, in shown order."""
    wanted = set(bank)
    return tuple(i for i, index in enumerate(order) if index in wanted)


def numbered(options: Sequence[str], limit: int = BUTTON_TEXT_MAX) -> bool:
    """True when options are too long to be buttons: buttons then carry letters, the text the options."""
    return any(len(o.encode("utf-16-le")) // 2 > limit for o in options)


def grade(question: Question, chosen: frozenset[int]) -> bool:
    """All and only the correct options."""
    return chosen == question.correct
