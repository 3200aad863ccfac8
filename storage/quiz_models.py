"""Quiz models: private rounds and their answers, spaced-repetition reviews, group quizzes with polls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class QuizRoundRow(Base):
    """A private round; its progress lives here (not in dialog state) so it survives restarts."""

    __tablename__ = "quiz_round"
    __table_args__ = (Index("ix_quiz_round_resident_status", "resident_id", "status"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    track: Mapped[str] = mapped_column(String(16))
    question_ids: Mapped[list[Any]] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[int] = mapped_column(Integer, default=0)
    # Shown positions ticked so far on the current multi-answer question.
    selected: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(12), default="active")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class QuizAnswerRow(Base):
    """One answer in a private round; the unique pair makes a second press of an old button score nothing."""

    __tablename__ = "quiz_answer"
    __table_args__ = (
        UniqueConstraint("round_id", "question_id", name="uq_quiz_answer_round_question"),
        Index("ix_quiz_answer_resident_at", "resident_id", "answered_at"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("quiz_round.id", ondelete="CASCADE"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"))
    question_id: Mapped[str] = mapped_column(String(16))
    track: Mapped[str] = mapped_column(String(16))
    chosen: Mapped[list[Any]] = mapped_column(JSON)
    correct: Mapped[bool] = mapped_column(Boolean)
    # NULL until the ledger was asked (then what it credited, 0 when capped).
    points: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime]


class QuizReviewRow(Base):
    """A resident's history with one question: what spaced repetition and the awareness figures read."""

    __tablename__ = "quiz_review"
    __table_args__ = (Index("ix_quiz_review_resident_track", "resident_id", "track"),)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    question_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    track: Mapped[str] = mapped_column(String(16))
    times: Mapped[int] = mapped_column(Integer)
    last_correct: Mapped[bool] = mapped_column(Boolean)
    last_at: Mapped[datetime]
    step: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime | None]


class GroupQuizRow(Base):
    """A quiz in a community group: one poll open at a time; ``closes_at`` is the durable timer."""

    __tablename__ = "group_quiz"
    __table_args__ = (
        Index("ix_group_quiz_status_closes_at", "status", "closes_at"),
        Index("ix_group_quiz_chat_status", "chat_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    organiser_telegram_id: Mapped[int | None] = mapped_column(BigInteger)
    track: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(8))
    question_ids: Mapped[list[Any]] = mapped_column(JSON)
    open_period: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default="running")
    closes_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class GroupQuizPollRow(Base):
    __tablename__ = "group_quiz_poll"
    __table_args__ = (UniqueConstraint("quiz_id", "position", name="uq_group_quiz_poll_quiz_position"),)
    poll_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("group_quiz.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    question_id: Mapped[str] = mapped_column(String(16))
    # Index of the correct option as posted (options are shuffled per quiz).
    correct_option: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[datetime]


class GroupQuizAnswerRow(Base):
    """A poll answer; correct ones without ``points`` are credits still owed (e.g. to someone unregistered)."""

    __tablename__ = "group_quiz_answer"
    __table_args__ = (
        UniqueConstraint("poll_id", "telegram_id", name="uq_group_quiz_answer_poll_telegram"),
        Index("ix_group_quiz_answer_quiz_id", "quiz_id"),
        Index("ix_group_quiz_answer_telegram_pending", "telegram_id", "points"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    poll_id: Mapped[str] = mapped_column(ForeignKey("group_quiz_poll.poll_id", ondelete="CASCADE"))
    quiz_id: Mapped[int] = mapped_column(ForeignKey("group_quiz.id", ondelete="CASCADE"))
    question_id: Mapped[str] = mapped_column(String(16))
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    # Masked at write time (李**): people who never registered gave no consent to store their name.
    name: Mapped[str] = mapped_column(String(8))
    correct: Mapped[bool] = mapped_column(Boolean)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"))
    points: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime] = mapped_column(index=True)
