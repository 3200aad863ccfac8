"""Campaign notices in SQL: the campaigns, who they reach, and how their deliveries (outbox rows) stand."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, exists, func, literal, null, or_, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.campaigns import (
    DEFAULT_QUIET,
    Audience,
    AudienceKind,
    Campaign,
    CampaignStatus,
    Counts,
    NoticeButton,
    Preferences,
    QuietHours,
    Recipient,
)
from bot.domain.roles import Role
from bot.domain.volunteers import ProfileStatus
from storage.campaign_models import CampaignRow, NoticePreferenceRow, NoticeSubscriptionRow
from storage.direct import Direct
from storage.messaging_models import OutboxRow
from storage.models import GroupChatRow, ResidentRow, RoleGrantRow
from storage.volunteer_models import VolunteerProfileRow

OUTBOX = cast(Table, OutboxRow.__table__)
_FIELDS = {c.key for c in CampaignRow.__table__.columns} - {"id"}
_PREF = cast(Table, NoticePreferenceRow.__table__)
_SUB = cast(Table, NoticeSubscriptionRow.__table__)
_PREFERENCES = union_all(
    select(literal(True).label("settings"), _PREF.c.notices_off, _PREF.c.quiet_from, _PREF.c.quiet_to,
           null().label("track")).where(_PREF.c.resident_id == bindparam("resident")),
    select(literal(False), null(), null(), null(), _SUB.c.track).where(_SUB.c.resident_id == bindparam("resident")),
)  # fmt: skip
_READ_PREFERENCES = Direct(_PREFERENCES)


class SqlCampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, campaign: Campaign) -> Campaign:
        row = CampaignRow(**_values(campaign))
        self._s.add(row)
        await self._s.flush()
        return _campaign(row)

    async def get(self, campaign_id: int, *, for_update: bool = False) -> Campaign | None:
        query = select(CampaignRow).where(CampaignRow.id == campaign_id)
        if for_update:
            query = query.with_for_update()
        row = await self._s.scalar(query)
        return _campaign(row) if row else None

    async def move(self, campaign_id: int, current: CampaignStatus, new: CampaignStatus, **fields: Any) -> bool:
        """Change the status only if it is still ``current`` (two workers never start one campaign twice)."""
        values = _columns(fields) | {"status": new.value}
        result = await self._s.execute(
            update(CampaignRow)
            .where(CampaignRow.id == campaign_id, CampaignRow.status == current.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def update(self, campaign_id: int, **fields: Any) -> None:
        await self._s.execute(
            update(CampaignRow)
            .where(CampaignRow.id == campaign_id)
            .values(**_columns(fields))
            .execution_options(synchronize_session=False)
        )

    async def due(self, now: datetime, limit: int) -> list[int]:
        query = (
            select(CampaignRow.id)
            .where(CampaignRow.status == CampaignStatus.SCHEDULED.value, CampaignRow.send_at <= now)
            .order_by(CampaignRow.send_at, CampaignRow.id)
            .limit(limit)
        )
        return list((await self._s.scalars(query)).all())

    async def with_status(self, status: CampaignStatus, limit: int = 100) -> list[Campaign]:
        query = select(CampaignRow).where(CampaignRow.status == status.value).order_by(CampaignRow.id).limit(limit)
        return [_campaign(r) for r in (await self._s.scalars(query)).all()]

    async def recent(
        self, community_ids: Sequence[int] | None, since: datetime, limit: int, statuses: Sequence[CampaignStatus]
    ) -> list[Campaign]:
        """Campaigns sent since ``since`` or still to come, newest first (``community_ids`` None: everywhere)."""
        query = (
            select(CampaignRow)
            .where(
                CampaignRow.status.in_([s.value for s in statuses]),
                or_(CampaignRow.send_at >= since, CampaignRow.status == CampaignStatus.SCHEDULED.value),
            )
            .order_by(CampaignRow.send_at.desc(), CampaignRow.id.desc())
            .limit(limit)
        )
        if community_ids is not None:
            query = query.where(CampaignRow.community_id.in_(list(community_ids)))
        return [_campaign(r) for r in (await self._s.scalars(query)).all()]

    # ---- audience ----------------------------------------------------------------------------------------

    async def recipients(self, community_id: int, audience: Audience) -> list[Recipient]:
        """Registered residents the audience covers who still take notices, with their language and quiet hours;
        groups for a group audience."""
        if audience.kind is AudienceKind.GROUPS:
            groups = await self._s.scalars(
                select(GroupChatRow.chat_id)
                .where(GroupChatRow.community_id == community_id, GroupChatRow.purpose == "residents")
                .order_by(GroupChatRow.chat_id)
            )
            return [Recipient(int(chat), "", None) for chat in groups.all()]
        pref = NoticePreferenceRow
        query = (
            select(ResidentRow.telegram_id, ResidentRow.locale, pref.resident_id, pref.quiet_from, pref.quiet_to)
            .outerjoin(pref, pref.resident_id == ResidentRow.id)
            .where(
                ResidentRow.community_id == community_id,
                ResidentRow.telegram_id.is_not(None),
                ResidentRow.consent_at.is_not(None),
                ResidentRow.deleted_at.is_(None),
                or_(pref.notices_off.is_(None), pref.notices_off.is_(False)),
            )
            .order_by(ResidentRow.id)
        )
        if audience.kind is AudienceKind.BUILDINGS:
            query = query.where(ResidentRow.building_id.in_(list(audience.buildings)))
        elif audience.kind is AudienceKind.TRACK:
            query = query.where(
                exists().where(
                    NoticeSubscriptionRow.resident_id == ResidentRow.id, NoticeSubscriptionRow.track == audience.track
                )
            )
        elif audience.kind is AudienceKind.ROLE:
            assert audience.role is not None
            roles = {audience.role.value}
            if audience.role is Role.GRID_WORKER:
                roles.add(Role.ORGANISER.value)
            granted = exists().where(
                RoleGrantRow.resident_id == ResidentRow.id,
                RoleGrantRow.role.in_(roles),
                or_(RoleGrantRow.community_id == community_id, RoleGrantRow.community_id.is_(None)),
            )
            if audience.role is Role.VOLUNTEER:  # who registered as a volunteer (and was approved) counts too
                registered = exists().where(
                    VolunteerProfileRow.resident_id == ResidentRow.id,
                    VolunteerProfileRow.status == ProfileStatus.APPROVED.value,
                )
                query = query.where(or_(granted, registered))
            else:
                query = query.where(granted)
        rows = (await self._s.execute(query)).all()
        return [
            Recipient(int(tid or 0), locale, _quiet(pref_of, start, end)) for tid, locale, pref_of, start, end in rows
        ]

    # ---- deliveries ---------------------------------------------------------------------------------------

    async def deliveries(self, campaign_id: int) -> Counts:
        rows = await self._s.execute(
            select(OutboxRow.status, func.count())
            .where(OutboxRow.campaign_id == campaign_id)
            .group_by(OutboxRow.status)
        )
        return Counts.from_statuses({str(status): int(n) for status, n in rows.all()})

    async def waiting(self, campaign_id: int, now: datetime) -> int:
        """Pending deliveries held back (quiet hours, a retry's backoff)."""
        query = (
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.campaign_id == campaign_id, OutboxRow.status == "pending", OutboxRow.not_before > now)
        )
        return int(await self._s.scalar(query) or 0)

    async def failure_reasons(self, campaign_id: int, limit: int = 5) -> dict[str, int]:
        rows = await self._s.execute(
            select(OutboxRow.error, func.count())
            .where(OutboxRow.campaign_id == campaign_id, OutboxRow.status.in_(["failed", "skipped"]))
            .group_by(OutboxRow.error)
            .order_by(func.count().desc())
            .limit(limit)
        )
        return {str(error or "?"): int(n) for error, n in rows.all()}

    async def add_deliveries(self, rows: Sequence[dict[str, Any]]) -> int:
        """Queue many outbox rows at once (one statement per chunk); rows whose key exists are left out."""
        if not rows:
            return 0
        dialect = postgresql if self._s.get_bind().dialect.name == "postgresql" else sqlite
        added = 0
        for start in range(0, len(rows), 500):
            chunk = list(rows[start : start + 500])
            stmt = dialect.insert(OUTBOX).values(chunk).on_conflict_do_nothing(index_elements=["key"])
            result = await self._s.execute(stmt)
            added += int(getattr(result, "rowcount", 0) or 0)
        return added

    async def cancel_deliveries(self, campaign_id: int, at: datetime) -> int:
        """Pending deliveries of a stopped campaign are kept as cancelled (those being sent right now finish)."""
        result = await self._s.execute(
            update(OUTBOX)
            .where(
                OutboxRow.campaign_id == campaign_id,
                OutboxRow.status == "pending",
                or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until <= at),
            )
            .values(status="cancelled", sent_at=at, error="campaign cancelled")
        )
        return int(getattr(result, "rowcount", 0) or 0)

    # ---- residents' settings ---------------------------------------------------------------------------

    async def preferences(self, resident_id: int) -> Preferences:
        # One statement (settings and subscriptions), built once and sent by the driver: /settings reads it on
        # every tap. Rows: (settings?, notices_off, quiet_from, quiet_to, track).
        rows = (await _READ_PREFERENCES.run(self._s, {"resident": resident_id})).rows
        tracks = frozenset(r[4] for r in rows if not r[0])
        row = next((r for r in rows if r[0]), None)
        if row is None:
            return Preferences(tracks=tracks)
        return Preferences(bool(row[1]), _quiet(True, row[2], row[3]), tracks)

    async def save_preferences(self, resident_id: int, preferences: Preferences, now: datetime) -> None:
        row = await self._s.get(NoticePreferenceRow, resident_id)
        if row is None:
            row = NoticePreferenceRow(resident_id=resident_id, updated_at=now)
            self._s.add(row)
        row.notices_off = preferences.notices_off
        row.quiet_from = preferences.quiet.start if preferences.quiet else None
        row.quiet_to = preferences.quiet.end if preferences.quiet else None
        row.updated_at = now
        await self._s.execute(delete(NoticeSubscriptionRow).where(NoticeSubscriptionRow.resident_id == resident_id))
        for track in sorted(preferences.tracks):
            self._s.add(NoticeSubscriptionRow(resident_id=resident_id, track=track))
        await self._s.flush()

    async def forget_preferences(self, resident_id: int) -> None:
        await self._s.execute(delete(NoticeSubscriptionRow).where(NoticeSubscriptionRow.resident_id == resident_id))
        await self._s.execute(delete(NoticePreferenceRow).where(NoticePreferenceRow.resident_id == resident_id))


def _quiet(has_pref: object, start: int | None, end: int | None) -> QuietHours | None:
    if not has_pref:
        return DEFAULT_QUIET
    if start is None or end is None:
        return None
    return QuietHours(start, end)


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "status":
            values[name] = CampaignStatus(value).value
        elif name == "counts" or name == "audience":
            values[name] = value.to_json()
        elif name == "buttons":
            values[name] = [b.to_json() for b in value]
        elif name in _FIELDS:
            values[name] = value
        else:
            raise ValueError(f"not a campaign field: {name}")
    return values


def _values(campaign: Campaign) -> dict[str, Any]:
    fields = {name: getattr(campaign, name) for name in _FIELDS if hasattr(campaign, name)}
    return _columns(fields)


def _campaign(row: CampaignRow) -> Campaign:
    return Campaign(
        id=row.id,
        community_id=row.community_id,
        author_id=row.author_id,
        status=CampaignStatus(row.status),
        body=row.body,
        send_at=row.send_at,
        created_at=row.created_at,
        audience=Audience.from_json(row.audience),
        track=row.track,
        photo=row.photo,
        buttons=tuple(NoticeButton.from_json(b) for b in row.buttons),
        urgent=row.urgent,
        paid=row.paid,
        repeat_weekly=row.repeat_weekly,
        template=row.template,
        series_id=row.series_id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        recipients=row.recipients,
        counts=Counts.from_json(row.counts),
        failures=dict(row.failures or {}),
        progress_chat_id=row.progress_chat_id,
        progress_at=row.progress_at,
    )
