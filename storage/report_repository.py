"""Reports, history and followers in SQL. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.geo import GeoPoint
from bot.domain.report_ledger import LedgerFilter
from bot.domain.reports import STATUS_TYPE, Event, RejectReason, Report, Status, StatusType
from storage.models import DialogStateRow, GroupChatRow
from storage.report_models import ReportEventRow, ReportFollowerRow, ReportRow, TicketCounterRow

_MOVABLE = {
    "status",
    "assignee_id",
    "deadline",
    "accepted_at",
    "resolved_at",
    "closed_at",
    "reject_reason",
    "duplicate_of",
    "after_photo",
    "resolution_note",
    "reopened",
    "escalated_at",
}
_OPEN = [s.value for s, t in STATUS_TYPE.items() if t is StatusType.OPEN]


def _report(row: ReportRow) -> Report:
    where = GeoPoint(row.latitude, row.longitude) if row.latitude is not None and row.longitude is not None else None
    return Report(
        id=row.id, ticket=row.ticket, community_id=row.community_id, category=row.category,
        status=Status(row.status), reporter_id=row.reporter_id, description=row.description,
        submitted_at=row.submitted_at, anonymous=row.anonymous, location=where, building_id=row.building_id,
        address=row.address, photos=tuple(row.photos or ()), skip_reason=row.skip_reason,
        assignee_id=row.assignee_id, deadline=row.deadline, accepted_at=row.accepted_at,
        resolved_at=row.resolved_at, closed_at=row.closed_at,
        reject_reason=RejectReason(row.reject_reason) if row.reject_reason else None,
        duplicate_of=row.duplicate_of, after_photo=row.after_photo, resolution_note=row.resolution_note,
        reopened=row.reopened, escalated_at=row.escalated_at,
    )  # fmt: skip


def _event(row: ReportEventRow) -> Event:
    before = Status(row.from_status) if row.from_status else None
    return Event(row.at, row.action, Status(row.to_status), before, row.actor_id, row.note, row.photo)


class SqlReportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def next_number(self, year: int) -> int:
        """Bump the year's counter in one statement: the row lock makes concurrent reports queue, not collide."""
        dialect = postgresql if self._s.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(TicketCounterRow).values(year=year, last=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=[TicketCounterRow.year], set_={"last": TicketCounterRow.last + 1}
        ).returning(TicketCounterRow.last)
        return int((await self._s.execute(stmt)).scalar_one())

    async def add(self, report: Report) -> Report:
        where = report.location
        row = ReportRow(
            ticket=report.ticket, community_id=report.community_id, category=report.category,
            status=report.status.value, reporter_id=report.reporter_id, anonymous=report.anonymous,
            description=report.description, latitude=where.latitude if where else None,
            longitude=where.longitude if where else None, building_id=report.building_id,
            address=report.address, photos=list(report.photos), skip_reason=report.skip_reason,
            submitted_at=report.submitted_at, deadline=report.deadline, reopened=0,
        )  # fmt: skip
        self._s.add(row)
        await self._s.flush()
        return _report(row)

    async def get(self, report_id: int, *, for_update: bool = False) -> Report | None:
        query = select(ReportRow).where(ReportRow.id == report_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._s.scalars(query)).one_or_none()
        return _report(row) if row else None

    async def move(self, report_id: int, current: Status, **fields: Any) -> bool:
        """Conditional update: False when someone else moved the report first."""
        unknown = set(fields) - _MOVABLE
        if unknown:
            raise ValueError(f"not movable report fields: {sorted(unknown)}")
        values = {k: (v.value if isinstance(v, Status | RejectReason) else v) for k, v in fields.items()}
        result = await self._s.execute(
            update(ReportRow)
            .where(ReportRow.id == report_id, ReportRow.status == current.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        self._s.expire_all()
        return bool(getattr(result, "rowcount", 0))

    async def add_event(self, report_id: int, event: Event) -> None:
        self._s.add(
            ReportEventRow(
                report_id=report_id, at=event.at, action=event.action,
                from_status=event.from_status.value if event.from_status else None,
                to_status=event.to_status.value, actor_id=event.actor_id, note=event.note, photo=event.photo,
            )
        )  # fmt: skip
        await self._s.flush()

    async def history(self, report_id: int) -> list[Event]:
        rows = await self._s.scalars(
            select(ReportEventRow).where(ReportEventRow.report_id == report_id).order_by(ReportEventRow.id)
        )
        return [_event(r) for r in rows.all()]

    async def open_in(self, community_id: int, category: str) -> list[Report]:
        rows = await self._s.scalars(
            select(ReportRow)
            .where(
                ReportRow.community_id == community_id,
                ReportRow.category == category,
                ReportRow.status.in_(_OPEN),
            )
            .order_by(ReportRow.id)
        )
        return [_report(r) for r in rows.all()]

    async def follow(self, report_id: int, resident_id: int, at: datetime) -> bool:
        exists = await self._s.scalar(
            select(func.count())
            .select_from(ReportFollowerRow)
            .where(ReportFollowerRow.report_id == report_id, ReportFollowerRow.resident_id == resident_id)
        )
        if exists:
            return False
        self._s.add(ReportFollowerRow(report_id=report_id, resident_id=resident_id, at=at))
        await self._s.flush()
        return True

    async def followers(self, report_id: int) -> list[int]:
        rows = await self._s.scalars(
            select(ReportFollowerRow.resident_id)
            .where(ReportFollowerRow.report_id == report_id)
            .order_by(ReportFollowerRow.id)
        )
        return list(rows.all())

    async def by_reporter(self, resident_id: int, limit: int) -> list[Report]:
        rows = await self._s.scalars(
            select(ReportRow).where(ReportRow.reporter_id == resident_id).order_by(ReportRow.id.desc()).limit(limit)
        )
        return [_report(r) for r in rows.all()]

    async def followed_by(self, resident_id: int, limit: int) -> list[Report]:
        rows = await self._s.scalars(
            select(ReportRow)
            .join(ReportFollowerRow, ReportFollowerRow.report_id == ReportRow.id)
            .where(ReportFollowerRow.resident_id == resident_id)
            .order_by(ReportRow.id.desc())
            .limit(limit)
        )
        return [_report(r) for r in rows.all()]

    async def assigned_to(self, resident_id: int) -> list[Report]:
        """Open reports this person handles (a grid worker's tasks), oldest first."""
        rows = await self._s.scalars(
            select(ReportRow)
            .where(ReportRow.assignee_id == resident_id, ReportRow.status.in_(_OPEN))
            .order_by(ReportRow.id)
        )
        return [_report(r) for r in rows.all()]

    async def staff_chat(self, community_id: int) -> int | None:
        """The community's staff handling group, if one was linked (``/linkgroup <code> staff``)."""
        rows = await self._s.scalars(
            select(GroupChatRow.chat_id)
            .where(GroupChatRow.community_id == community_id, GroupChatRow.purpose == "staff")
            .limit(1)
        )
        return rows.first()

    async def in_period(self, community_id: int | None, since: datetime | None, until: datetime | None) -> list[Report]:
        query = select(ReportRow).order_by(ReportRow.id)
        if community_id is not None:
            query = query.where(ReportRow.community_id == community_id)
        if since is not None:
            query = query.where(ReportRow.submitted_at >= since)
        if until is not None:
            query = query.where(ReportRow.submitted_at < until)
        return [_report(r) for r in (await self._s.scalars(query)).all()]

    async def ledger(self, chosen: LedgerFilter, offset: int, limit: int) -> tuple[list[Report], int]:
        """One page of the reports in reach that pass the filters, newest first, and how many pass in all."""
        where = _ledger_where(chosen)
        total = int(await self._s.scalar(select(func.count()).select_from(ReportRow).where(*where)) or 0)
        query = (
            select(ReportRow)
            .where(*where)
            .order_by(ReportRow.submitted_at.desc(), ReportRow.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_report(r) for r in (await self._s.scalars(query)).all()], total

    async def photo_keys_in_use(self, now: datetime, prefix: str) -> set[str]:
        """File keys something still refers to: reports' photos and after-photos, photos in their history, and any
        string starting with ``prefix`` in a dialog state that has not expired (drafts keep their photos' keys).

        Dialog states are read first: a key only ever moves from a draft to a report, so under READ COMMITTED a
        submission committing between the two reads is still seen in one of them.
        """
        keys: set[str] = set()
        drafts = await self._s.scalars(select(DialogStateRow.data).where(DialogStateRow.expires_at > now))
        for data in drafts:
            keys.update(s for s in _strings(data) if s.startswith(prefix))
        for photos, after in await self._s.execute(select(ReportRow.photos, ReportRow.after_photo)):
            keys.update(str(k) for k in photos or ())
            if after:
                keys.add(after)
        events = await self._s.scalars(select(ReportEventRow.photo).where(ReportEventRow.photo.is_not(None)))
        keys.update(k for k in events if k)
        return keys

    async def anonymise_reporter(
        self, resident_id: int, names: tuple[str, ...], replacement: str
    ) -> tuple[list[str], list[str]]:
        """/deleteme: the person's reports stay in the ledger, anonymous, with their words replaced and their photos
        dropped; returns (the texts they wrote, the photo keys dropped) so that copies elsewhere can be found.

        Their words: each report's description and the notes of the history lines they wrote (a "not fixed" reason);
        their photos: the report's photos and those on their history lines. Staff notes on these reports keep their
        text without the person's name; after-photos are the staff's record of the fix and stay.
        """

        def unnamed(text: str | None) -> str | None:
            for name in names:
                if text and len(name) >= 2:
                    text = text.replace(name, replacement)
            return text

        texts: list[str] = []
        photos: list[str] = []
        reports = (await self._s.scalars(select(ReportRow).where(ReportRow.reporter_id == resident_id))).all()
        for report in reports:
            texts.append(report.description)
            photos.extend(str(k) for k in report.photos or ())
            report.description, report.anonymous, report.photos = replacement, True, []
            report.resolution_note = unnamed(report.resolution_note)
        ids = [r.id for r in reports]
        events = (await self._s.scalars(select(ReportEventRow).where(ReportEventRow.report_id.in_(ids)))).all()
        for event in events:
            if event.actor_id != resident_id:
                event.note = unnamed(event.note)
                continue
            if event.note:
                texts.append(event.note)
                event.note = replacement
            if event.photo:
                photos.append(event.photo)
                event.photo = None
        await self._s.flush()
        return texts, photos


def _ledger_where(chosen: LedgerFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a ledger query: the person's reach, then each filter that is set."""
    reach = chosen.reach
    whole: ColumnElement[bool] = true() if reach.whole is None else ReportRow.community_id.in_(sorted(reach.whole))
    own: ColumnElement[bool] = true() if reach.own is None else ReportRow.community_id.in_(sorted(reach.own))
    mine = and_(ReportRow.assignee_id == reach.person, own) if reach.own != frozenset() else false()
    where: list[ColumnElement[bool]] = [or_(whole, mine) if reach.whole != frozenset() else mine]
    if chosen.communities:
        where.append(ReportRow.community_id.in_(chosen.communities))
    if chosen.statuses:
        where.append(ReportRow.status.in_([s.value for s in chosen.statuses]))
    if chosen.categories:
        where.append(ReportRow.category.in_(chosen.categories))
    if chosen.building_id is not None:
        where.append(ReportRow.building_id == chosen.building_id)
    if chosen.assignee_id is not None:
        where.append(ReportRow.assignee_id == chosen.assignee_id)
    if chosen.unassigned:
        where.append(ReportRow.assignee_id.is_(None))
    if chosen.overdue_at is not None:
        where += [ReportRow.status.in_(_OPEN), ReportRow.deadline.is_not(None), ReportRow.deadline < chosen.overdue_at]
    if chosen.since is not None:
        where.append(ReportRow.submitted_at >= chosen.since)
    if chosen.until is not None:
        where.append(ReportRow.submitted_at < chosen.until)
    if chosen.located:
        where += [ReportRow.latitude.is_not(None), ReportRow.longitude.is_not(None)]
    return where


def _strings(value: object) -> Iterator[str]:
    """Every string anywhere in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
