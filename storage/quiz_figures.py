"""Quiz figures in SQL: per registered resident, what they answered per track and lately."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.quiz_figures import NOT_RESIDENTS, ResidentProgress
from storage.models import BuildingRow, ResidentRow, RoleGrantRow
from storage.quiz_models import GroupQuizAnswerRow, QuizAnswerRow, QuizReviewRow

_ANSWER = cast(Table, QuizAnswerRow.__table__)
_REVIEW = cast(Table, QuizReviewRow.__table__)
_VOTE = cast(Table, GroupQuizAnswerRow.__table__)


class SqlQuizFigures:
    """Aggregates stay in SQL (one row per resident and track), so a large community is a few queries."""

    _s: AsyncSession

    async def progress(
        self, community_id: int, since: datetime, until: datetime | None = None
    ) -> list[ResidentProgress]:
        """Every registered resident (staff excluded) of a community with answered/correct per track and their
        answers in [since, until) (until None: up to now)."""
        people = (
            select(ResidentRow.id, BuildingRow.name)
            .select_from(ResidentRow)
            .outerjoin(BuildingRow, BuildingRow.id == ResidentRow.building_id)
            .where(*_members(community_id))
        )
        residents = {int(rid): name for rid, name in (await self._s.execute(people)).all()}
        tracks = await self._per_track(community_id)
        recent = await self._recent(community_id, since, until)
        return [
            ResidentProgress(rid, name, tracks.get(rid, {}), *recent.get(rid, (0, 0)))
            for rid, name in sorted(residents.items())
        ]

    async def buildings_of(self, community_id: int, telegram_ids: Sequence[int]) -> dict[int, str]:
        """Telegram id → building name, for those of these people registered in the community with a building."""
        if not telegram_ids:
            return {}
        query = (
            select(ResidentRow.telegram_id, BuildingRow.name)
            .join(BuildingRow, BuildingRow.id == ResidentRow.building_id)
            .where(
                ResidentRow.community_id == community_id,
                ResidentRow.deleted_at.is_(None),
                ResidentRow.telegram_id.in_(list(telegram_ids)),
            )
        )
        return {int(tid): str(name) for tid, name in (await self._s.execute(query)).all() if tid is not None}

    async def _per_track(self, community_id: int) -> dict[int, dict[str, tuple[int, int]]]:
        query = (
            select(_REVIEW.c.resident_id, _REVIEW.c.track, func.count(), _count(_REVIEW.c.last_correct))
            .select_from(_REVIEW.join(ResidentRow, ResidentRow.id == _REVIEW.c.resident_id))
            .where(*_members(community_id))
            .group_by(_REVIEW.c.resident_id, _REVIEW.c.track)
        )
        found: dict[int, dict[str, tuple[int, int]]] = {}
        for rid, track, answered, right in (await self._s.execute(query)).all():
            found.setdefault(int(rid), {})[str(track)] = (int(answered), int(right or 0))
        return found

    async def _recent(self, community_id: int, since: datetime, until: datetime | None) -> dict[int, tuple[int, int]]:
        found: dict[int, tuple[int, int]] = {}
        for table in (_ANSWER, _VOTE):
            ended = [table.c.answered_at < until] if until is not None else []
            query = (
                select(table.c.resident_id, func.count(), _count(table.c.correct))
                .select_from(table.join(ResidentRow, ResidentRow.id == table.c.resident_id))
                .where(*_members(community_id), table.c.answered_at >= since, *ended)
                .group_by(table.c.resident_id)
            )
            for rid, answers, right in (await self._s.execute(query)).all():
                old = found.get(int(rid), (0, 0))
                found[int(rid)] = (old[0] + int(answers), old[1] + int(right or 0))
        return found


def _members(community_id: int) -> list[Any]:
    """Registered residents of a community (consent given, not deleted), staff of the community excluded:
    grid workers, organisers and service points (granted there or everywhere) are not its residents."""
    staff = exists().where(
        RoleGrantRow.resident_id == ResidentRow.id,
        RoleGrantRow.role.in_([role.value for role in NOT_RESIDENTS]),
        or_(RoleGrantRow.community_id == community_id, RoleGrantRow.community_id.is_(None)),
    )
    return [
        ResidentRow.community_id == community_id,
        ResidentRow.consent_at.is_not(None),
        ResidentRow.deleted_at.is_(None),
        ~staff,
    ]


def _count(flag: Any) -> Any:
    return func.sum(case((flag, 1), else_=0))
