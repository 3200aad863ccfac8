"""Quiz storage: rounds, answers (unique per round and question), reviews, group quizzes, polls and votes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.quiz import Review
from bot.domain.quiz_rounds import GroupPoll, GroupQuiz, GroupStatus, PollVote, Round, RoundStatus
from storage.quiz_figures import SqlQuizFigures
from storage.quiz_models import (
    GroupQuizAnswerRow,
    GroupQuizPollRow,
    GroupQuizRow,
    QuizAnswerRow,
    QuizReviewRow,
    QuizRoundRow,
)

_ROUND = cast(Table, QuizRoundRow.__table__)
_ANSWER = cast(Table, QuizAnswerRow.__table__)
_REVIEW = cast(Table, QuizReviewRow.__table__)
_QUIZ = cast(Table, GroupQuizRow.__table__)
_POLL = cast(Table, GroupQuizPollRow.__table__)
_VOTE = cast(Table, GroupQuizAnswerRow.__table__)


def _round(r: Any) -> Round:
    return Round(
        r.id,
        r.resident_id,
        r.track,
        tuple(r.question_ids),
        r.position,
        r.score,
        tuple(r.selected),
        RoundStatus(r.status),
    )


def _review(r: Any) -> Review:
    return Review(r.question_id, r.track, r.times, r.last_correct, r.last_at, r.step, r.due_at)


def _quiz(r: Any) -> GroupQuiz:
    return GroupQuiz(
        r.id,
        r.chat_id,
        r.community_id,
        r.track,
        r.locale,
        tuple(r.question_ids),
        r.open_period,
        r.position,
        GroupStatus(r.status),
        r.closes_at,
    )


def _vote(r: Any) -> PollVote:
    return PollVote(
        r.id, r.quiz_id, r.question_id, r.telegram_id, r.name, r.correct, r.resident_id, r.points, r.answered_at
    )


class SqlQuizRepository(SqlQuizFigures):
    """Inserts that must happen once use ON CONFLICT DO NOTHING: a retry or a double press is a no-op."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    @property
    def _insert(self) -> Any:
        return sqlite_insert if self._s.get_bind().dialect.name == "sqlite" else pg_insert

    # ---- private rounds ------------------------------------------------------------------------

    async def active_round(self, resident_id: int) -> Round | None:
        where = (_ROUND.c.resident_id == resident_id) & (_ROUND.c.status == RoundStatus.ACTIVE.value)
        row = (await self._s.execute(select(_ROUND).where(where).order_by(_ROUND.c.id.desc()))).first()
        return _round(row) if row else None

    async def round(self, round_id: int, *, for_update: bool = False) -> Round | None:
        query = select(_ROUND).where(_ROUND.c.id == round_id)
        row = (await self._s.execute(query.with_for_update() if for_update else query)).one_or_none()
        return _round(row) if row else None

    async def add_round(self, resident_id: int, track: str, question_ids: Sequence[str], now: datetime) -> Round:
        values = {
            "resident_id": resident_id,
            "track": track,
            "question_ids": list(question_ids),
            "position": 0,
            "score": 0,
            "selected": [],
            "status": RoundStatus.ACTIVE.value,
            "started_at": now,
        }
        result = await self._s.execute(_ROUND.insert().values(**values).returning(_ROUND.c.id))
        return Round(int(result.scalar_one()), resident_id, track, tuple(question_ids))

    async def update_round(self, round_id: int, **fields: Any) -> None:
        if "status" in fields:
            fields["status"] = RoundStatus(fields["status"]).value
        await self._s.execute(update(_ROUND).where(_ROUND.c.id == round_id).values(**fields))

    async def abandon_rounds(self, resident_id: int, now: datetime) -> None:
        where = (_ROUND.c.resident_id == resident_id) & (_ROUND.c.status == RoundStatus.ACTIVE.value)
        values = {"status": RoundStatus.ABANDONED.value, "finished_at": now}
        await self._s.execute(update(_ROUND).where(where).values(**values))

    async def add_answer(
        self, round_: Round, question_id: str, track: str, chosen: Sequence[int], correct: bool, now: datetime
    ) -> int | None:
        values = {
            "round_id": round_.id,
            "resident_id": round_.resident_id,
            "question_id": question_id,
            "track": track,
            "chosen": sorted(chosen),
            "correct": correct,
            "answered_at": now,
        }
        statement = self._insert(_ANSWER).values(**values).on_conflict_do_nothing().returning(_ANSWER.c.id)
        found = (await self._s.execute(statement)).scalar_one_or_none()
        return int(found) if found is not None else None

    async def set_answer_points(self, answer_id: int, points: int) -> None:
        await self._s.execute(update(_ANSWER).where(_ANSWER.c.id == answer_id).values(points=points))

    async def unawarded(self, round_id: int) -> list[tuple[int, str]]:
        where = (_ANSWER.c.round_id == round_id) & _ANSWER.c.correct & _ANSWER.c.points.is_(None)
        rows = await self._s.execute(select(_ANSWER.c.id, _ANSWER.c.question_id).where(where))
        return [(int(r.id), str(r.question_id)) for r in rows.all()]

    async def round_points(self, round_id: int) -> int:
        query = select(func.coalesce(func.sum(_ANSWER.c.points), 0)).where(_ANSWER.c.round_id == round_id)
        return int((await self._s.execute(query)).scalar_one())

    # ---- reviews (spaced repetition) -------------------------------------------------------------

    async def reviews(self, resident_id: int) -> dict[str, Review]:
        rows = await self._s.execute(select(_REVIEW).where(_REVIEW.c.resident_id == resident_id))
        return {r.question_id: _review(r) for r in rows.all()}

    async def review(self, resident_id: int, question_id: str) -> Review | None:
        where = (_REVIEW.c.resident_id == resident_id) & (_REVIEW.c.question_id == question_id)
        row = (await self._s.execute(select(_REVIEW).where(where))).one_or_none()
        return _review(row) if row else None

    async def save_review(self, resident_id: int, review: Review) -> None:
        values = {
            "track": review.track,
            "times": review.times,
            "last_correct": review.last_correct,
            "last_at": review.last_at,
            "step": review.step,
            "due_at": review.due_at,
        }
        statement = self._insert(_REVIEW).values(resident_id=resident_id, question_id=review.question_id, **values)
        await self._s.execute(
            statement.on_conflict_do_update(index_elements=["resident_id", "question_id"], set_=values)
        )

    async def reviews_of(self, question_id: str, resident_ids: Sequence[int]) -> dict[int, Review]:
        """Many residents' reviews of one question (resident → review; none yet: absent)."""
        if not resident_ids:
            return {}
        where = (_REVIEW.c.question_id == question_id) & _REVIEW.c.resident_id.in_(sorted(set(resident_ids)))
        return {int(r.resident_id): _review(r) for r in (await self._s.execute(select(_REVIEW).where(where))).all()}

    async def save_reviews(self, reviews: Sequence[tuple[int, Review]]) -> None:
        """:meth:`save_review` for many (resident, review), one statement; at most one per resident and question."""
        if not reviews:
            return
        columns = ("track", "times", "last_correct", "last_at", "step", "due_at")
        statement = self._insert(_REVIEW)
        statement = statement.on_conflict_do_update(
            index_elements=["resident_id", "question_id"], set_={c: statement.excluded[c] for c in columns}
        )
        rows = [
            {"resident_id": resident_id, "question_id": r.question_id, "track": r.track, "times": r.times}
            | {"last_correct": r.last_correct, "last_at": r.last_at, "step": r.step, "due_at": r.due_at}
            for resident_id, r in reviews
        ]
        await self._s.execute(statement, rows)

    # ---- group quizzes ---------------------------------------------------------------------------

    async def running_quiz(self, chat_id: int) -> GroupQuiz | None:
        where = (_QUIZ.c.chat_id == chat_id) & (_QUIZ.c.status == GroupStatus.RUNNING.value)
        row = (await self._s.execute(select(_QUIZ).where(where))).first()
        return _quiz(row) if row else None

    async def group_quiz(self, quiz_id: int) -> GroupQuiz | None:
        row = (await self._s.execute(select(_QUIZ).where(_QUIZ.c.id == quiz_id))).one_or_none()
        return _quiz(row) if row else None

    async def used_in_chat(self, chat_id: int) -> dict[str, datetime]:
        query = (
            select(_POLL.c.question_id, func.max(_POLL.c.sent_at))
            .select_from(_POLL.join(_QUIZ))
            .where(_QUIZ.c.chat_id == chat_id)
            .group_by(_POLL.c.question_id)
        )
        return {str(q): at for q, at in (await self._s.execute(query)).all()}

    async def add_group_quiz(self, quiz: GroupQuiz, organiser: int, now: datetime) -> GroupQuiz:
        values = {
            "chat_id": quiz.chat_id,
            "community_id": quiz.community_id,
            "organiser_telegram_id": organiser,
            "track": quiz.track,
            "locale": quiz.locale,
            "question_ids": list(quiz.question_ids),
            "open_period": quiz.open_period,
            "position": 0,
            "status": GroupStatus.RUNNING.value,
            "closes_at": quiz.closes_at,
            "started_at": now,
        }
        result = await self._s.execute(_QUIZ.insert().values(**values).returning(_QUIZ.c.id))
        found = await self.group_quiz(int(result.scalar_one()))
        assert found is not None
        return found

    async def due_quizzes(self, now: datetime, limit: int) -> list[GroupQuiz]:
        where = (_QUIZ.c.status == GroupStatus.RUNNING.value) & (_QUIZ.c.closes_at <= now)
        rows = await self._s.execute(select(_QUIZ).where(where).order_by(_QUIZ.c.closes_at).limit(limit))
        return [_quiz(r) for r in rows.all()]

    async def claim_step(self, quiz: GroupQuiz, closes_at: datetime, now: datetime) -> bool:
        """Move a due quiz on (next poll, or finished) only if nobody else did: the runner may run twice."""
        where = (
            (_QUIZ.c.id == quiz.id)
            & (_QUIZ.c.position == quiz.position)
            & (_QUIZ.c.status == GroupStatus.RUNNING.value)
        )
        values: dict[str, Any] = {"closes_at": closes_at}
        if quiz.last:
            values.update(status=GroupStatus.FINISHED.value, finished_at=now)
        else:
            values.update(position=quiz.position + 1)
        return getattr(await self._s.execute(update(_QUIZ).where(where).values(**values)), "rowcount", 0) == 1

    async def set_closes_at(self, quiz_id: int, position: int, closes_at: datetime) -> None:
        where = (_QUIZ.c.id == quiz_id) & (_QUIZ.c.position == position) & (_QUIZ.c.closes_at < closes_at)
        await self._s.execute(update(_QUIZ).where(where).values(closes_at=closes_at))

    async def add_poll(self, poll: GroupPoll, message_id: int | None, now: datetime) -> bool:
        values = {
            "poll_id": poll.poll_id,
            "quiz_id": poll.quiz_id,
            "position": poll.position,
            "question_id": poll.question_id,
            "correct_option": poll.correct_option,
            "message_id": message_id,
            "sent_at": now,
        }
        result = await self._s.execute(self._insert(_POLL).values(**values).on_conflict_do_nothing())
        return getattr(result, "rowcount", 0) == 1

    async def poll(self, poll_id: str) -> GroupPoll | None:
        row = (await self._s.execute(select(_POLL).where(_POLL.c.poll_id == poll_id))).one_or_none()
        if row is None:
            return None
        return GroupPoll(row.poll_id, row.quiz_id, row.position, row.question_id, row.correct_option)

    async def add_vote(self, poll: GroupPoll, vote: PollVote, now: datetime) -> int | None:
        values = {
            "poll_id": poll.poll_id,
            "quiz_id": poll.quiz_id,
            "question_id": poll.question_id,
            "telegram_id": vote.telegram_id,
            "name": vote.name[:8],
            "correct": vote.correct,
            "resident_id": vote.resident_id,
            "answered_at": now,
        }
        statement = self._insert(_VOTE).values(**values).on_conflict_do_nothing().returning(_VOTE.c.id)
        found = (await self._s.execute(statement)).scalar_one_or_none()
        return int(found) if found is not None else None

    async def set_votes_credit(self, credits: Sequence[tuple[int, int, int]]) -> None:
        """(vote, resident, points) for many votes: one executemany."""
        if credits:
            statement = (
                update(_VOTE)
                .where(_VOTE.c.id == bindparam("vote"))
                .values(resident_id=bindparam("resident"), points=bindparam("credited"))
            )
            rows = [{"vote": v, "resident": r, "credited": p} for v, r, p in credits]
            await self._s.execute(statement, rows)

    async def votes(self, quiz_id: int, position: int | None = None) -> list[PollVote]:
        query = select(_VOTE).where(_VOTE.c.quiz_id == quiz_id)
        if position is not None:
            query = query.join(_POLL).where(_POLL.c.position == position)
        return [_vote(r) for r in (await self._s.execute(query.order_by(_VOTE.c.id))).all()]

    async def owed(
        self,
        *,
        telegram_id: int | None = None,
        quiz_id: int | None = None,
        finished_since: datetime | None = None,
    ) -> list[PollVote]:
        """Correct votes the ledger has not credited yet: of one person, one quiz, or quizzes finished lately."""
        query = select(_VOTE).where(_VOTE.c.correct, _VOTE.c.points.is_(None))
        if telegram_id is not None:
            query = query.where(_VOTE.c.telegram_id == telegram_id)
        if quiz_id is not None:
            query = query.where(_VOTE.c.quiz_id == quiz_id)
        if finished_since is not None:
            query = query.join(_QUIZ).where(_QUIZ.c.finished_at >= finished_since)
        return [_vote(r) for r in (await self._s.execute(query.order_by(_VOTE.c.id))).all()]

    async def forget_votes(self, telegram_id: int) -> None:
        """/deleteme: group answers carry the Telegram id, so they go (the ledger keeps the points, anonymised)."""
        await self._s.execute(delete(GroupQuizAnswerRow).where(GroupQuizAnswerRow.telegram_id == telegram_id))

    async def purge_unclaimed(self, before: datetime) -> int:
        """Answers of people who never registered, older than ``before``: no consent, so not kept for long."""
        result = await self._s.execute(
            delete(GroupQuizAnswerRow).where(
                GroupQuizAnswerRow.resident_id.is_(None), GroupQuizAnswerRow.answered_at < before
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
