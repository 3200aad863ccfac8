"""Satisfaction surveys (满意度测评): the surveys, residents' progress, the has-answered marks, the responses, and
residents' satisfaction with the fix of a report they made.

An anonymous survey's response names nobody: ``survey_response`` has no resident, only the day and a random id
(so it cannot be matched to a ``survey_participation`` row by order or time), and the resident's progress row is
deleted when they submit. ``survey_participation`` (one row per resident and survey, its primary key) is what makes
a second submission impossible, also when two taps arrive at once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class SurveyRow(Base):
    __tablename__ = "survey"
    __table_args__ = (Index("ix_survey_status_opens_at", "status", "opens_at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(12))
    template: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[dict[str, Any]]
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    audience: Mapped[dict[str, Any]]
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    created_at: Mapped[datetime]
    invited_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class SurveyProgressRow(Base):
    """A resident's answers before they submit (deleted at submission)."""

    __tablename__ = "survey_progress"
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class SurveyParticipationRow(Base):
    """A resident has submitted (the only row of an anonymous survey that names them); the date only."""

    __tablename__ = "survey_participation"
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True)
    submitted_on: Mapped[date] = mapped_column(Date)


class SurveyResponseRow(Base):
    """Submitted answers. ``id`` is random; ``resident_id`` is set only in a named survey."""

    __tablename__ = "survey_response"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("survey.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id", ondelete="SET NULL"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"))
    submitted_on: Mapped[date] = mapped_column(Date)
    answers: Mapped[dict[str, Any]]


class ReportSatisfactionRow(Base):
    """How satisfied the reporter is with how their report was handled (asked once it is verified)."""

    __tablename__ = "report_satisfaction"
    report_id: Mapped[int] = mapped_column(
        ForeignKey("report.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    score: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime]
