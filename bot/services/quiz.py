"""Private quiz rounds: tracks and cards, picking questions, answering (once), points, spaced repetition.

A round's progress is stored, not kept in dialog state, so it can be resumed after a restart; an answer
is recorded once per (round, question), so an old button pressed again scores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.errors import InvalidInput
from bot.domain.points import AwardResult, Reason
from bot.domain.quiz import (
    AlreadyAnswered,
    Card,
    Library,
    NothingChosen,
    Question,
    Review,
    RoundOver,
    TrackInfo,
    grade,
    numbered,
    option_order,
    pick,
    schedule,
    to_bank,
    to_shown,
)
from bot.domain.quiz_figures import knows
from bot.domain.quiz_rounds import Round, RoundStatus
from bot.domain.residents import Resident
from bot.services.points import PointsService, member
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services.quiz_group import GroupQuizService
from bot.services.quiz_stats import AwarenessService

ROUND_SIZE = 5


@dataclass(frozen=True)
class QuestionView:
    """The question waiting for an answer, with its options in the order this resident sees them."""

    round_id: int
    position: int
    total: int
    track: str
    question_id: str
    question: str
    options: tuple[str, ...]
    multi: bool
    numbered: bool
    selected: tuple[int, ...] = ()


@dataclass(frozen=True)
class Summary:
    round_id: int
    track: str
    score: int
    total: int
    points: int
    cap: int | None


@dataclass(frozen=True)
class Feedback:
    question: str
    correct: bool
    chosen: tuple[str, ...]
    answer: tuple[str, ...]
    explanation: str
    award: AwardResult | None
    next: QuestionView | None
    summary: Summary | None


@dataclass(frozen=True)
class TrackProgress:
    track: TrackInfo
    answered: int
    correct: int
    total: int
    due: int

    @property
    def knows(self) -> bool:
        return knows(self.answered, self.correct)


@dataclass(frozen=True)
class Overview:
    tracks: list[TrackProgress]
    active: Round | None


class QuizService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        points: PointsService,
        library: Library,
        *,
        round_size: int = ROUND_SIZE,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._points = points
        self.library = library
        self.round_size = round_size
        self.group = GroupQuizService(uow, clock, points, library)
        self.stats = AwarenessService(uow, clock)

    async def overview(self, telegram_id: int) -> Overview:
        """Progress per track and the round that can be resumed, for the quiz menu."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            history = await uow.quiz.reviews(resident.id)
            active = await uow.quiz.active_round(resident.id)
        now = self._clock()
        return Overview([self._progress(t, history, now) for t in self.library.tracks], active)

    async def track(self, telegram_id: int, key: str) -> tuple[TrackProgress, list[Card]]:
        """One track's progress and its knowledge cards."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            history = await uow.quiz.reviews(resident.id)
        info = self.library.track(key)
        cards = [c for c in self.library.cards if c.track == key]
        return self._progress(info, history, self._clock()), cards

    async def start(self, telegram_id: int, track: str, card_id: str | None = None) -> QuestionView:
        """A new round (any unfinished one is abandoned); a card's tags put its questions first."""
        focus = self.library.card(card_id).tags if card_id else frozenset()
        pool = self.library.pool(track)
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            history = await uow.quiz.reviews(resident.id)
            picked = pick(pool, history, now, self.round_size, f"{resident.id}:{track}", focus)
            await uow.quiz.abandon_rounds(resident.id, now)
            round_ = await uow.quiz.add_round(resident.id, track, [q.id for q in picked], now)
            await uow.commit()
        return self._view(round_, resident)

    async def again(self, telegram_id: int, finished_round: int) -> tuple[QuestionView, bool]:
        """再来一轮 under a finished round: a new round of its track, unless one was already started after it
        (a second press): then that round, unchanged. Returns (the question waiting, whether a round started)."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            # Locks the finished round: two presses handled at once (other workers) take turns here.
            previous = await uow.quiz.round(finished_round, for_update=True)
            if previous is None or previous.resident_id != resident.id:
                raise RoundOver()
            active = await uow.quiz.active_round(resident.id)
            if active is not None and active.id > previous.id:
                return self._view(active, resident), False
            history = await uow.quiz.reviews(resident.id)
            pool = self.library.pool(previous.track)
            picked = pick(pool, history, now, self.round_size, f"{resident.id}:{previous.track}")
            await uow.quiz.abandon_rounds(resident.id, now)
            round_ = await uow.quiz.add_round(resident.id, previous.track, [q.id for q in picked], now)
            await uow.commit()
        return self._view(round_, resident), True

    async def resume(self, telegram_id: int) -> QuestionView:
        """The question the unfinished round is waiting for."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            round_ = await uow.quiz.active_round(resident.id)
        if round_ is None:
            raise RoundOver()
        return self._view(round_, resident)

    async def toggle(self, telegram_id: int, round_id: int, position: int, shown: int) -> QuestionView:
        """Tick or untick an option of a multi-answer question."""
        async with self._uow() as uow:
            resident, round_, question = await self._turn(uow, telegram_id, round_id, position)
            if not question.multi or not 0 <= shown < len(question.text("zh_Hans").options):
                raise InvalidInput(field="option", value=shown)
            selected = tuple(sorted(set(round_.selected) ^ {shown}))
            await uow.quiz.update_round(round_.id, selected=list(selected))
            await uow.commit()
        return self._view(replace(round_, selected=selected), resident)

    async def answer(self, telegram_id: int, round_id: int, position: int, shown: int | None) -> Feedback:
        """Record an answer (an option, or None to submit the ticked ones), award points, say what's next."""
        now = self._clock()
        async with self._uow() as uow:
            resident, round_, question = await self._turn(uow, telegram_id, round_id, position)
            chosen = self._chosen(question, resident, round_, shown)
            correct = grade(question, chosen)
            answer_id = await uow.quiz.add_answer(round_, question.id, question.track, sorted(chosen), correct, now)
            if answer_id is None:
                raise AlreadyAnswered()
            previous = await uow.quiz.review(resident.id, question.id)
            await uow.quiz.save_review(resident.id, schedule(previous, question, correct, now))
            round_ = await self._advance(uow, round_, correct, now)
            await uow.commit()
        award = await self._award(answer_id, round_.id, resident.id, question.id) if correct else None
        return await self._feedback(resident, round_, question, chosen, award)

    async def credit_pending(self, telegram_id: int) -> int:
        """Credit group-quiz answers given before registering; returns the points credited."""
        return await self.group.credit_owed(telegram_id)

    def card(self, card_id: str) -> Card:
        """A knowledge card (NotFound for an unknown id)."""
        return self.library.card(card_id)

    # ---- helpers -----------------------------------------------------------------------------

    async def _turn(
        self, uow: UnitOfWork, telegram_id: int, round_id: int, position: int
    ) -> tuple[Resident, Round, Question]:
        """The sender's round at ``position``; ownership and turn re-checked against storage."""
        resident = await member(uow, telegram_id)
        round_ = await uow.quiz.round(round_id, for_update=True)
        if round_ is None:
            raise RoundOver()
        round_.check_turn(resident.id, position)
        return resident, round_, self.library.questions[round_.current]

    def _chosen(self, question: Question, resident: Resident, round_: Round, shown: int | None) -> frozenset[int]:
        """Bank indexes of the pressed option (single answer) or of the ticked ones (multi-answer submit)."""
        if shown is not None and question.multi:
            raise InvalidInput(field="option", value=shown)
        chosen = to_bank(self._order(question, resident), round_.selected if shown is None else (shown,))
        if not chosen:
            raise NothingChosen()
        return chosen

    async def _advance(self, uow: UnitOfWork, round_: Round, correct: bool, now: datetime) -> Round:
        position, score = round_.position + 1, round_.score + int(correct)
        done = position >= round_.total
        status = RoundStatus.FINISHED if done else RoundStatus.ACTIVE
        fields = {"position": position, "score": score, "selected": [], "status": status}
        await uow.quiz.update_round(round_.id, **fields, finished_at=now if done else None)
        return replace(round_, position=position, score=score, selected=(), status=status)

    async def _award(self, answer_id: int, round_id: int, resident_id: int, question_id: str) -> AwardResult:
        key = f"{round_id}:{question_id}"
        result = await self._points.award(resident_id, Reason.QUIZ, key, ref=f"round:{round_id}")
        async with self._uow() as uow:
            await uow.quiz.set_answer_points(answer_id, result.credited)
            await uow.commit()
        return result

    async def _feedback(
        self, resident: Resident, round_: Round, question: Question, chosen: frozenset[int], award: AwardResult | None
    ) -> Feedback:
        text = question.text(resident.locale)
        order = self._order(question, resident)
        shown = [text.options[i] for i in order]
        answer = tuple(shown[i] for i in to_shown(order, question.correct))
        mine = tuple(shown[i] for i in to_shown(order, chosen))
        done = round_.status is RoundStatus.FINISHED
        following = None if done else self._view(round_, resident)
        summary = await self._summary(round_) if done else None
        correct = grade(question, chosen)
        return Feedback(text.question, correct, mine, answer, text.explanation, award, following, summary)

    async def _summary(self, round_: Round) -> Summary:
        for answer_id, question_id in await self._unawarded(round_.id):
            # Normally empty: only a crash between recording an answer and crediting it leaves one behind.
            await self._award(answer_id, round_.id, round_.resident_id, question_id)
        async with self._uow() as uow:
            points = await uow.quiz.round_points(round_.id)
        cap = self._points.policy.rule(Reason.QUIZ).daily_cap
        return Summary(round_.id, round_.track, round_.score, round_.total, points, cap)

    async def _unawarded(self, round_id: int) -> list[tuple[int, str]]:
        async with self._uow() as uow:
            return await uow.quiz.unawarded(round_id)

    def _view(self, round_: Round, resident: Resident) -> QuestionView:
        question = self.library.questions[round_.current]
        text = question.text(resident.locale)
        options = tuple(text.options[i] for i in self._order(question, resident))
        return QuestionView(
            round_.id,
            round_.position,
            round_.total,
            round_.track,
            question.id,
            text.question,
            options,
            question.multi,
            numbered(options),
            round_.selected,
        )

    @staticmethod
    def _order(question: Question, resident: Resident) -> tuple[int, ...]:
        return option_order(question.id, f"r{resident.id}", len(question.text("zh_Hans").options))

    def _progress(self, info: TrackInfo, history: dict[str, Review], now: datetime) -> TrackProgress:
        mine = [r for r in history.values() if r.track == info.key]
        due = sum(1 for r in mine if r.due_at is not None and r.due_at <= now)
        total = len(self.library.pool(info.key))
        return TrackProgress(info, len(mine), sum(r.last_correct for r in mine), total, due)
