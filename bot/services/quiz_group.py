"""Group quizzes: native quiz polls in a community group, one at a time, credited once per correct answer.

Only one poll of a quiz is open at a time; the next is posted by the periodic runner (:meth:`due`) once
``closes_at`` has passed. That keeps a group far below Telegram's 20 messages a minute without relying on the
channel's send gate, and a restart loses nothing: the timer is a column, not a task in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain.errors import NotFound
from bot.domain.notices import Choice, Notice
from bot.domain.points import Reason
from bot.domain.quiz import MIXED, GroupBusy, GroupNotLinked, Library, Review, option_order, pick, schedule, to_shown
from bot.domain.quiz_figures import Standing, leaderboard, mask
from bot.domain.quiz_rounds import GroupPoll, GroupQuiz, GroupStatus, PollVote
from bot.domain.residents import Resident, make_deep_link
from bot.domain.roles import Role
from bot.services.outbox import queue, queue_poll
from bot.services.points import Award, PointsService, require_role
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

COUNT, MAX_COUNT = 5, 10
SECONDS, MIN_SECONDS, MAX_SECONDS = 30, 10, 600
# Time for the poll to reach Telegram and the last votes to arrive before the next poll is posted.
GRACE = timedelta(seconds=3)
DUE_BATCH = 50
# Correct answers credited per transaction when a poll closes: each batch locks its residents' accounts (in
# resident order) for one short transaction instead of one transaction per answer.
CREDIT_BATCH = 200
POLL_CACHE = 256
# How long after a quiz ends answers still delivered late are credited by the runner.
LATE_WINDOW = timedelta(hours=1)


# How long a correct group answer of an unregistered person waits for them to register and claim it.
UNCLAIMED_DAYS = 30


def vote_key(vote: PollVote, resident_id: int) -> str:
    """The ledger's idempotency key for a correct group answer: one credit per quiz, question and resident."""
    return f"g{vote.quiz_id}:{vote.question_id}:{resident_id}"


@dataclass(frozen=True)
class PollToSend:
    chat_id: int
    quiz_id: int
    position: int
    total: int
    question: str
    options: tuple[str, ...]
    correct_option: int
    explanation: str
    open_period: int

    @property
    def tag(self) -> str:
        """Lets ``poll_sent`` tie the posted poll's id back to this quiz and position."""
        return f"gq:{self.quiz_id}:{self.position}"


@dataclass(frozen=True)
class Leaderboard:
    chat_id: int
    quiz_id: int
    locale: str
    track: str
    questions: int
    standings: list[Standing]
    participants: int
    owed: int
    community_code: str


@dataclass(frozen=True)
class VoteResult:
    correct: bool
    registered: bool
    duplicate: bool = False


class GroupQuizService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, points: PointsService, library: Library) -> None:
        self._uow = uow
        self._clock = clock
        self._points = points
        self.library = library
        # Poll records never change once written: a burst of answers to one poll reads it once.
        self._polls: dict[str, GroupPoll] = {}

    async def start(
        self, chat_id: int, organiser: int, track: str, count: int, seconds: int, locale: str
    ) -> tuple[GroupQuiz, PollToSend]:
        """Start a quiz in a linked group (organiser of that community only); returns the first poll."""
        pool = self.library.pool(track, single_only=True)
        now = self._clock()
        count, seconds = min(max(count, 1), MAX_COUNT), min(max(seconds, MIN_SECONDS), MAX_SECONDS)
        async with self._uow() as uow:
            community_id = await uow.groups.get_community_id(chat_id)
            if community_id is None:
                raise GroupNotLinked()
            await require_role(uow, organiser, Role.ORGANISER, community_id)
            if await uow.quiz.running_quiz(chat_id) is not None:
                raise GroupBusy()
            history = {q: Review(q, "", 1, True, at) for q, at in (await uow.quiz.used_in_chat(chat_id)).items()}
            picked = [q.id for q in pick(pool, history, now, count, f"g{chat_id}")]
            closes = now + timedelta(seconds=seconds) + GRACE
            draft = GroupQuiz(
                0, chat_id, community_id, track, locale, tuple(picked), seconds, 0, GroupStatus.RUNNING, closes
            )
            quiz = await uow.quiz.add_group_quiz(draft, organiser, now)
            await uow.commit()
        return quiz, self._poll(quiz)

    async def poll_sent(self, quiz_id: int, position: int, poll_id: str, message_id: int | None) -> None:
        """Remember which poll carries which question; the poll closes ``open_period`` after it was sent."""
        now = self._clock()
        async with self._uow() as uow:
            quiz = await uow.quiz.group_quiz(quiz_id)
            if quiz is None or not 0 <= position < len(quiz.question_ids):
                return
            poll = self._poll(replace(quiz, position=position))
            record = GroupPoll(poll_id, quiz.id, position, quiz.question_ids[position], poll.correct_option)
            await uow.quiz.add_poll(record, message_id, now)
            closes = now + timedelta(seconds=quiz.open_period) + GRACE
            await uow.quiz.set_closes_at(quiz.id, position, closes)
            await uow.commit()

    async def vote(
        self, telegram_id: int, name: str, poll_id: str, options: tuple[int, ...], resident: Resident | None
    ) -> VoteResult | None:
        """Record a poll answer once: one insert. Points and learning progress follow when the poll closes
        (``due``), off the hot path of a burst of answers.

        ``resident`` is the voter as read from storage for this update (None: unknown). People not registered
        when they answered are credited when they join (``credit_owed``).
        """
        now = self._clock()
        registered = resident is not None and resident.is_registered and resident.telegram_id == telegram_id
        resident_id = resident.id if registered and resident is not None else None
        async with self._uow() as uow:
            poll = await self._poll_record(uow, poll_id)
            if poll is None or not options:
                return None  # not one of our quiz polls (or a retracted vote)
            correct = options == (poll.correct_option,)
            vote = PollVote(0, poll.quiz_id, poll.question_id, telegram_id, mask(name), correct, resident_id)
            if await uow.quiz.add_vote(poll, vote, now) is None:
                return VoteResult(correct, registered, duplicate=True)
            await uow.commit()
        return VoteResult(correct, registered)

    async def due(self, now: datetime | None = None) -> list[PollToSend | Leaderboard]:
        """Move on every quiz whose poll has closed: the next poll, or the final leaderboard.

        Each step is one transaction: the step is claimed, the closed poll's answers are learnt, and the next poll
        (or the leaderboard) is queued in the outbox — so a crash never skips a question or loses the results.
        """
        now = now or self._clock()
        async with self._uow() as uow:
            quizzes = await uow.quiz.due_quizzes(now, DUE_BATCH)
        steps: list[PollToSend | Leaderboard] = []
        for quiz in quizzes:
            step = await self._step(quiz, now)
            if step is not None:
                steps.append(step)
                await self._settle(quiz_id=quiz.id)
        # Answers that arrived after their quiz's last settlement (late deliveries) are credited here.
        await self._settle(finished_since=now - LATE_WINDOW)
        return steps

    async def purge_unclaimed(self, now: datetime) -> int:
        """Forget answers of people who did not register within UNCLAIMED_DAYS (they never consented)."""
        async with self._uow() as uow:
            purged = await uow.quiz.purge_unclaimed(now - timedelta(days=UNCLAIMED_DAYS))
            await uow.commit()
        return purged

    async def credit_owed(self, telegram_id: int) -> int:
        """Credit correct answers given before this person registered; returns the points credited."""
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            if resident is None or not resident.is_registered:
                return 0
            owed = await uow.quiz.owed(telegram_id=telegram_id)
        return await self._credit([(vote, resident.id) for vote in owed])

    # ---- helpers -----------------------------------------------------------------------------

    async def _step(self, quiz: GroupQuiz, now: datetime) -> PollToSend | Leaderboard | None:
        closes = now + timedelta(seconds=quiz.open_period) + GRACE
        async with self._uow() as uow:
            if not await uow.quiz.claim_step(quiz, closes, now):
                return None  # another runner took this step
            await self._learn(uow, quiz, now)
            step: PollToSend | Leaderboard
            if not quiz.last:
                step = self._poll(replace(quiz, position=quiz.position + 1))
                await self.queue_poll(uow, step, now)
            else:
                step = await self._leaderboard(uow, quiz)
                await queue(uow, self.leaderboard_notice(step), now)
            await uow.commit()
        return step

    async def queue_poll(self, uow: UnitOfWork, poll: PollToSend, now: datetime) -> None:
        """The poll goes out through the outbox; once posted, ``poll_sent`` learns its id (by the tag)."""
        await queue_poll(
            uow,
            poll.chat_id,
            question=f"({poll.position + 1}/{poll.total}) {poll.question}",
            options=poll.options,
            correct_option_ids=(poll.correct_option,),
            explanation=poll.explanation,
            open_period=poll.open_period,
            tag=poll.tag,
            now=now,
            key=poll.tag,
        )

    def leaderboard_notice(self, board: Leaderboard) -> Notice:
        """The final standings; people still owed points get a button to join in a private chat."""
        name = None if board.track == MIXED else self.library.track(board.track).name(board.locale)
        choices: tuple[tuple[Choice, ...], ...] = ()
        if board.owed:
            choices = ((Choice("quiz.claim", start=make_deep_link(board.community_code)),),)
        return Notice(
            board.chat_id,
            "quiz/leaderboard",
            {"board": board, "track": name},
            board.locale,
            choices=choices,
            key=f"gq:{board.quiz_id}:board",
        )

    async def _settle(self, *, quiz_id: int | None = None, finished_since: datetime | None = None) -> None:
        """Credit the correct answers of voters who were registered when they answered."""
        async with self._uow() as uow:
            owed = await uow.quiz.owed(quiz_id=quiz_id, finished_since=finished_since)
        await self._credit([(vote, vote.resident_id) for vote in owed if vote.resident_id is not None])

    async def _leaderboard(self, uow: UnitOfWork, quiz: GroupQuiz) -> Leaderboard:
        votes = await uow.quiz.votes(quiz.id)
        community = await uow.communities.get(quiz.community_id)
        if community is None:
            raise NotFound(what="community")
        buildings = await uow.quiz.buildings_of(quiz.community_id, sorted({v.telegram_id for v in votes}))
        standings = leaderboard(((v.telegram_id, v.name, v.correct) for v in votes), buildings=buildings)
        owed = {v.telegram_id for v in votes if v.correct and v.points is None and v.resident_id is None}
        return Leaderboard(
            quiz.chat_id,
            quiz.id,
            quiz.locale,
            quiz.track,
            len(quiz.question_ids),
            standings,
            len({v.telegram_id for v in votes}),
            len(owed),
            community.code,
        )

    async def _credit(self, owed: Sequence[tuple[PollVote, int]]) -> int:
        """Credit correct answers (vote, resident) through the ledger, CREDIT_BATCH a transaction; returns the points.

        A batch's ledger entries and its votes marked credited commit together, so whatever a crash cut short is
        still owed and the next run credits it; each answer's idempotency key (quiz, question, resident) makes
        crediting it again a no-op whichever path (this one, a late run, ``credit_owed``) gets there first. A
        resident no longer registered is skipped (the vote stays owed)."""
        total = 0
        for start in range(0, len(owed), CREDIT_BATCH):
            batch = owed[start : start + CREDIT_BATCH]
            awards = [Award(rid, Reason.QUIZ, vote_key(vote, rid), ref=f"group:{vote.quiz_id}") for vote, rid in batch]
            async with self._uow() as uow:
                results = await self._points.award_many_in(uow, awards)
                marks = [(v.id, rid, r.credited) for (v, rid), r in zip(batch, results, strict=True) if r is not None]
                await uow.quiz.set_votes_credit(marks)
                await uow.commit()
            total += sum(credited for _, _, credited in marks)
        return total

    async def _poll_record(self, uow: UnitOfWork, poll_id: str) -> GroupPoll | None:
        poll = self._polls.get(poll_id)
        if poll is None:
            poll = await uow.quiz.poll(poll_id)
            if poll is not None:
                if len(self._polls) >= POLL_CACHE:
                    self._polls.pop(next(iter(self._polls)))
                self._polls[poll_id] = poll
        return poll

    async def _learn(self, uow: UnitOfWork, quiz: GroupQuiz, now: datetime) -> None:
        """The closed poll's answers count for residents' knowledge and repetition like private ones (one read and
        one write for the whole poll, not two statements per answer)."""
        question = self.library.questions[quiz.question_ids[quiz.position]]
        votes = [v for v in await uow.quiz.votes(quiz.id, quiz.position) if v.resident_id is not None]
        reviews = await uow.quiz.reviews_of(question.id, [v.resident_id for v in votes if v.resident_id is not None])
        for vote in votes:
            if vote.resident_id is not None:
                previous = reviews.get(vote.resident_id)
                reviews[vote.resident_id] = schedule(previous, question, vote.correct, vote.answered_at or now)
        await uow.quiz.save_reviews(list(reviews.items()))  # every one read was a voter's, so every one is new

    def _poll(self, quiz: GroupQuiz) -> PollToSend:
        question = self.library.questions[quiz.question_ids[quiz.position]]
        text = question.text(quiz.locale)
        order = option_order(question.id, f"g{quiz.id}", len(text.options))
        correct = to_shown(order, question.correct)[0]
        return PollToSend(
            quiz.chat_id,
            quiz.id,
            quiz.position,
            len(quiz.question_ids),
            text.question,
            tuple(text.options[i] for i in order),
            correct,
            text.explanation,
            quiz.open_period,
        )
