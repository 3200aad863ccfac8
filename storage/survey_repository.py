"""Satisfaction surveys in SQL: surveys, progress, has-answered marks, responses and reporters' satisfaction."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.campaigns import Audience
from bot.domain.surveys import Progress, Question, Response, Survey, SurveyStatus
from storage.models import BuildingRow, ResidentRow
from storage.report_models import ReportRow
from storage.survey_models import (
    ReportSatisfactionRow,
    SurveyParticipationRow,
    SurveyProgressRow,
    SurveyResponseRow,
    SurveyRow,
)

_FIELDS = {c.key for c in SurveyRow.__table__.columns} - {"id"}


class SqlSurveyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def _insert(self) -> Any:
        return postgresql.insert if self._s.get_bind().dialect.name == "postgresql" else sqlite.insert

    # ---- surveys -----------------------------------------------------------------------------------------

    async def add(self, survey: Survey) -> Survey:
        row = SurveyRow(**_columns({name: getattr(survey, name) for name in _FIELDS}))
        self._s.add(row)
        await self._s.flush()
        return _survey(row)

    async def get(self, survey_id: int, *, for_update: bool = False) -> Survey | None:
        query = select(SurveyRow).where(SurveyRow.id == survey_id)
        if for_update:
            query = query.with_for_update()
        row = await self._s.scalar(query)
        return _survey(row) if row else None

    async def move(self, survey_id: int, current: SurveyStatus, new: SurveyStatus, **fields: Any) -> bool:
        """Change the status only if it is still ``current`` (two workers never open one survey twice)."""
        result = await self._s.execute(
            update(SurveyRow)
            .where(SurveyRow.id == survey_id, SurveyRow.status == current.value)
            .values(**(_columns(fields) | {"status": new.value}))
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def mark(self, survey_id: int, column: str, at: datetime) -> bool:
        """Set ``invited_at`` or ``reminded_at`` once (False: it was set already)."""
        target = getattr(SurveyRow, column)
        result = await self._s.execute(
            update(SurveyRow)
            .where(SurveyRow.id == survey_id, target.is_(None))
            .values({column: at})
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def with_status(self, status: SurveyStatus, limit: int = 100) -> list[Survey]:
        query = select(SurveyRow).where(SurveyRow.status == status.value).order_by(SurveyRow.id).limit(limit)
        return [_survey(r) for r in (await self._s.scalars(query)).all()]

    async def in_communities(self, community_ids: Sequence[int] | None, limit: int) -> list[Survey]:
        """Surveys of these communities (None: everywhere), newest opening first."""
        query = select(SurveyRow).order_by(SurveyRow.opens_at.desc(), SurveyRow.id.desc()).limit(limit)
        if community_ids is not None:
            query = query.where(SurveyRow.community_id.in_(list(community_ids)))
        return [_survey(r) for r in (await self._s.scalars(query)).all()]

    # ---- a resident's answers ------------------------------------------------------------------------------

    async def progress(self, survey_id: int, resident_id: int, *, for_update: bool = False) -> Progress | None:
        query = select(SurveyProgressRow).where(
            SurveyProgressRow.survey_id == survey_id, SurveyProgressRow.resident_id == resident_id
        )
        if for_update:
            query = query.with_for_update()
        row = await self._s.scalar(query)
        return Progress.from_json(row.data) if row else None

    async def save_progress(self, survey_id: int, resident_id: int, progress: Progress, now: datetime) -> None:
        insert = self._insert()
        values = {"survey_id": survey_id, "resident_id": resident_id, "data": progress.to_json(), "updated_at": now}
        stmt = insert(SurveyProgressRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["survey_id", "resident_id"], set_={"data": stmt.excluded.data, "updated_at": now}
        )
        await self._s.execute(stmt)

    async def drop_progress(self, survey_id: int, resident_id: int) -> None:
        await self._s.execute(
            delete(SurveyProgressRow).where(
                SurveyProgressRow.survey_id == survey_id, SurveyProgressRow.resident_id == resident_id
            )
        )

    async def participate(self, survey_id: int, resident_id: int, day: date) -> bool:
        """Mark the resident as having answered; False when they had (the primary key decides, also under
        concurrency: a second transaction waits for the first and then inserts nothing)."""
        stmt = (
            self._insert()(SurveyParticipationRow)
            .values(survey_id=survey_id, resident_id=resident_id, submitted_on=day)
            .on_conflict_do_nothing(index_elements=["survey_id", "resident_id"])
        )
        result = await self._s.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def participated(self, survey_id: int, resident_id: int) -> bool:
        query = select(func.count()).where(
            SurveyParticipationRow.survey_id == survey_id, SurveyParticipationRow.resident_id == resident_id
        )
        return bool(await self._s.scalar(query))

    async def participant_chats(self, survey_id: int) -> set[int]:
        query = (
            select(ResidentRow.telegram_id)
            .join(SurveyParticipationRow, SurveyParticipationRow.resident_id == ResidentRow.id)
            .where(SurveyParticipationRow.survey_id == survey_id, ResidentRow.telegram_id.is_not(None))
        )
        return {int(t) for t in (await self._s.scalars(query)).all() if t is not None}

    async def participants(self, survey_id: int) -> int:
        query = select(func.count()).where(SurveyParticipationRow.survey_id == survey_id)
        return int(await self._s.scalar(query) or 0)

    async def add_response(
        self, survey_id: int, answers: dict[str, Any], day: date, building_id: int | None, resident_id: int | None
    ) -> None:
        """Keep submitted answers under a random id (``resident_id`` None in an anonymous survey)."""
        self._s.add(
            SurveyResponseRow(
                id=secrets.token_hex(16),
                survey_id=survey_id,
                resident_id=resident_id,
                building_id=building_id,
                submitted_on=day,
                answers=answers,
            )
        )
        await self._s.flush()

    async def responses(self, survey_id: int) -> list[Response]:
        query = (
            select(SurveyResponseRow, BuildingRow.name)
            .outerjoin(BuildingRow, BuildingRow.id == SurveyResponseRow.building_id)
            .where(SurveyResponseRow.survey_id == survey_id)
            .order_by(SurveyResponseRow.submitted_on, SurveyResponseRow.id)
        )
        rows = (await self._s.execute(query)).all()
        return [Response(dict(r.answers), r.submitted_on, name, r.resident_id) for r, name in rows]

    async def in_progress(self, resident_id: int) -> set[int]:
        query = select(SurveyProgressRow.survey_id).where(SurveyProgressRow.resident_id == resident_id)
        return set((await self._s.scalars(query)).all())

    async def answered_by(self, resident_id: int) -> set[int]:
        query = select(SurveyParticipationRow.survey_id).where(SurveyParticipationRow.resident_id == resident_id)
        return set((await self._s.scalars(query)).all())

    async def named_responses(self, resident_id: int) -> int:
        query = select(func.count()).select_from(SurveyResponseRow).where(SurveyResponseRow.resident_id == resident_id)
        return int(await self._s.scalar(query) or 0)

    async def forget(self, resident_id: int, replacement: str) -> None:
        """/deleteme: answers in progress deleted, named responses kept without the resident, the comments on how
        their reports were handled replaced (the ratings stay: they count in the figures)."""
        await self._s.execute(delete(SurveyProgressRow).where(SurveyProgressRow.resident_id == resident_id))
        await self._s.execute(
            update(SurveyResponseRow)
            .where(SurveyResponseRow.resident_id == resident_id)
            .values(resident_id=None)
            .execution_options(synchronize_session=False)
        )
        theirs = select(ReportRow.id).where(ReportRow.reporter_id == resident_id)
        await self._s.execute(
            update(ReportSatisfactionRow)
            .where(ReportSatisfactionRow.report_id.in_(theirs), ReportSatisfactionRow.comment.is_not(None))
            .values(comment=replacement)
            .execution_options(synchronize_session=False)
        )

    # ---- satisfaction with a report's fix --------------------------------------------------------------------

    async def save_fix(self, report_id: int, score: int, now: datetime) -> bool:
        """The reporter's score (once: False when they had given it)."""
        stmt = (
            self._insert()(ReportSatisfactionRow)
            .values(report_id=report_id, score=score, answered_at=now)
            .on_conflict_do_nothing(index_elements=["report_id"])
        )
        result = await self._s.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def fix_comment(self, report_id: int, comment: str) -> bool:
        result = await self._s.execute(
            update(ReportSatisfactionRow)
            .where(ReportSatisfactionRow.report_id == report_id, ReportSatisfactionRow.comment.is_(None))
            .values(comment=comment)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def fix_scores(self, report_ids: Sequence[int]) -> dict[int, int]:
        if not report_ids:
            return {}
        scores: dict[int, int] = {}
        ids = list(report_ids)
        for start in range(0, len(ids), 500):
            query = select(ReportSatisfactionRow.report_id, ReportSatisfactionRow.score).where(
                ReportSatisfactionRow.report_id.in_(ids[start : start + 500])
            )
            scores |= {int(r): int(s) for r, s in (await self._s.execute(query)).all()}
        return scores


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "status":
            values[name] = SurveyStatus(value).value
        elif name == "audience":
            values[name] = value.to_json()
        elif name == "questions":
            values[name] = [q.to_json() for q in value]
        elif name == "title":
            values[name] = dict(value)
        elif name in _FIELDS:
            values[name] = value
        else:
            raise ValueError(f"not a survey field: {name}")
    return values


def _survey(row: SurveyRow) -> Survey:
    return Survey(
        id=row.id,
        community_id=row.community_id,
        title=dict(row.title),
        questions=tuple(Question.from_json(q) for q in row.questions),
        opens_at=row.opens_at,
        closes_at=row.closes_at,
        audience=Audience.from_json(row.audience),
        anonymous=row.anonymous,
        status=SurveyStatus(row.status),
        template=row.template,
        author_id=row.author_id,
        created_at=row.created_at,
        invited_at=row.invited_at,
        reminded_at=row.reminded_at,
        closed_at=row.closed_at,
    )
