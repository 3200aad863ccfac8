"""Volunteer service in SQL. Booking decisions are made by the service under the shift's row lock
(``shift(..., for_update=True)``); status changes are conditional updates from the expected status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.volunteers import (
    ACTIVE,
    HOLDS_PLACE,
    Activity,
    Booking,
    BookingStatus,
    Certificate,
    HoursStatus,
    Person,
    Profile,
    ProfileStatus,
    ServiceLine,
    Shift,
    ShiftStatus,
    ShiftView,
    Stars,
    VolunteerFigures,
)
from storage.models import BuildingRow, CommunityRow, ResidentRow
from storage.volunteer_models import (
    ActivityRow,
    BookingRow,
    CertificateRow,
    ShiftRow,
    VolunteerProfileRow,
    VolunteerSettingRow,
)

_HOLDS = [s.value for s in HOLDS_PLACE]
_ACTIVE = [s.value for s in ACTIVE]


class SqlVolunteerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    # ---- profiles and settings ----------------------------------------------------------------------------------

    async def profile(self, resident_id: int, *, for_update: bool = False) -> Profile | None:
        query = select(VolunteerProfileRow).where(VolunteerProfileRow.resident_id == resident_id)
        if for_update:
            query = query.with_for_update()
        row = await self._s.scalar(query)
        return _profile(row) if row else None

    async def save_profile(self, profile: Profile, now: datetime, decided_by: int | None = None) -> None:
        row = await self._s.get(VolunteerProfileRow, profile.resident_id)
        if row is None:
            row = VolunteerProfileRow(resident_id=profile.resident_id, created_at=now)
            self._s.add(row)
        old_status = row.status
        row.community_id = profile.community_id
        row.status = profile.status.value
        row.skills = profile.skills
        row.availability = profile.availability
        row.stars_announced = profile.stars_announced
        if old_status != profile.status.value and old_status is not None:
            row.decided_at, row.decided_by = now, decided_by
        await self._s.flush()

    async def set_stars_announced(self, resident_id: int, level: int) -> bool:
        """Record that ``level`` was announced; False when it (or more) was already (announce once)."""
        result = await self._s.execute(
            update(VolunteerProfileRow)
            .where(VolunteerProfileRow.resident_id == resident_id, VolunteerProfileRow.stars_announced < level)
            .values(stars_announced=level)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def profiles(self, community_id: int, status: ProfileStatus | None = None) -> list[tuple[Profile, Person]]:
        query = (
            select(VolunteerProfileRow, ResidentRow, BuildingRow.name)
            .join(ResidentRow, ResidentRow.id == VolunteerProfileRow.resident_id)
            .outerjoin(BuildingRow, BuildingRow.id == ResidentRow.building_id)
            .where(VolunteerProfileRow.community_id == community_id)
            .order_by(VolunteerProfileRow.created_at)
        )
        if status is not None:
            query = query.where(VolunteerProfileRow.status == status.value)
        rows = (await self._s.execute(query)).all()
        return [(_profile(p), _person(r, b)) for p, r, b in rows]

    async def forget_profile(self, resident_id: int) -> None:
        await self._s.execute(delete(VolunteerProfileRow).where(VolunteerProfileRow.resident_id == resident_id))

    async def settings(self, community_id: int) -> tuple[bool, Stars]:
        row = await self._s.get(VolunteerSettingRow, community_id)
        if row is None:
            return False, Stars()
        return row.approval_required, Stars(tuple(row.stars)) if row.stars else Stars()

    async def save_settings(self, community_id: int, approval_required: bool, stars: Stars, now: datetime) -> None:
        row = await self._s.get(VolunteerSettingRow, community_id)
        if row is None:
            row = VolunteerSettingRow(community_id=community_id)
            self._s.add(row)
        row.approval_required, row.stars, row.updated_at = approval_required, list(stars.thresholds), now
        await self._s.flush()

    # ---- activities and shifts ----------------------------------------------------------------------------------

    async def add_activity(self, activity: Activity, now: datetime) -> Activity:
        row = ActivityRow(
            community_id=activity.community_id,
            track=activity.track,
            title=activity.title,
            description=activity.description,
            place=activity.place,
            contact=activity.contact,
            latitude=activity.latitude,
            longitude=activity.longitude,
            created_by=activity.created_by,
            created_at=now,
        )
        self._s.add(row)
        await self._s.flush()
        return _activity(row)

    async def activity(self, activity_id: int) -> Activity | None:
        row = await self._s.get(ActivityRow, activity_id)
        return _activity(row) if row else None

    async def update_activity(self, activity_id: int, **fields: Any) -> None:
        await self._s.execute(
            update(ActivityRow)
            .where(ActivityRow.id == activity_id)
            .values(**fields)
            .execution_options(synchronize_session=False)
        )

    async def activities(self, community_id: int, since: datetime, limit: int = 30) -> list[Activity]:
        """Activities of the community with a shift ending after ``since`` (not cancelled), soonest first."""
        first = (
            select(ShiftRow.activity_id, func.min(ShiftRow.starts_at).label("first"))
            .where(ShiftRow.ends_at > since, ShiftRow.status == ShiftStatus.OPEN.value)
            .group_by(ShiftRow.activity_id)
            .subquery()
        )
        query = (
            select(ActivityRow)
            .join(first, first.c.activity_id == ActivityRow.id)
            .where(ActivityRow.community_id == community_id, ActivityRow.cancelled_at.is_(None))
            .order_by(first.c.first, ActivityRow.id)
            .limit(limit)
        )
        return [_activity(r) for r in (await self._s.scalars(query)).all()]

    async def add_shift(self, shift: Shift, now: datetime) -> Shift:
        row = ShiftRow(
            activity_id=shift.activity_id,
            starts_at=shift.starts_at,
            ends_at=shift.ends_at,
            capacity=shift.capacity,
            points_per_hour=shift.points_per_hour,
            note=shift.note,
            cutoff_hours=shift.cutoff_hours,
            status=shift.status.value,
            secret=shift.secret,
            created_at=now,
        )
        self._s.add(row)
        await self._s.flush()
        return _shift(row)

    async def shift(self, shift_id: int, *, for_update: bool = False) -> Shift | None:
        """The shift; ``for_update`` locks its row: every booking decision on it is made under this lock."""
        query = select(ShiftRow).where(ShiftRow.id == shift_id)
        if for_update:
            query = query.with_for_update()
        row = await self._s.scalar(query)
        return _shift(row) if row else None

    async def update_shift(self, shift_id: int, **fields: Any) -> None:
        values = {k: (v.value if isinstance(v, ShiftStatus) else v) for k, v in fields.items()}
        await self._s.execute(
            update(ShiftRow)
            .where(ShiftRow.id == shift_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def shifts_of(self, activity_id: int) -> list[Shift]:
        query = select(ShiftRow).where(ShiftRow.activity_id == activity_id).order_by(ShiftRow.starts_at, ShiftRow.id)
        return [_shift(r) for r in (await self._s.scalars(query)).all()]

    async def views(
        self,
        community_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        track: str | None = None,
        activity_id: int | None = None,
        shift_ids: Sequence[int] | None = None,
        open_only: bool = True,
        limit: int = 50,
    ) -> list[ShiftView]:
        """Shifts with their activity and counts of places held and waiting, in time order (the counts are read
        for the chosen shifts only)."""
        query = (
            select(ShiftRow, ActivityRow)
            .join(ActivityRow, ActivityRow.id == ShiftRow.activity_id)
            .where(ActivityRow.community_id == community_id)
            .order_by(ShiftRow.starts_at, ShiftRow.id)
            .limit(limit)
        )
        if since is not None:
            query = query.where(ShiftRow.ends_at > since)
        if until is not None:
            query = query.where(ShiftRow.starts_at < until)
        if track is not None:
            query = query.where(ActivityRow.track.is_(None) if track == "general" else ActivityRow.track == track)
        if activity_id is not None:
            query = query.where(ShiftRow.activity_id == activity_id)
        if shift_ids is not None:
            query = query.where(ShiftRow.id.in_(list(shift_ids)))
        if open_only:
            query = query.where(ShiftRow.status == ShiftStatus.OPEN.value, ActivityRow.cancelled_at.is_(None))
        rows = (await self._s.execute(query)).all()
        counts: dict[int, tuple[int, int]] = {}
        if rows:
            held = func.sum(func.cast(BookingRow.status.in_(_HOLDS), Integer()))
            waiting = func.sum(func.cast(BookingRow.status == BookingStatus.WAITING.value, Integer()))
            found = await self._s.execute(
                select(BookingRow.shift_id, held, waiting)
                .where(BookingRow.shift_id.in_([s.id for s, _ in rows]), BookingRow.status.in_(_ACTIVE))
                .group_by(BookingRow.shift_id)
            )
            counts = {shift_id: (int(h or 0), int(w or 0)) for shift_id, h, w in found.all()}
        return [ShiftView(_shift(s), _activity(a), *counts.get(s.id, (0, 0))) for s, a in rows]

    async def showing_codes(self, now: datetime) -> list[Shift]:
        """Shifts whose check-in code an organiser's chat displays and that are still under way."""
        query = select(ShiftRow).where(
            ShiftRow.code_chat_id.is_not(None), ShiftRow.ends_at > now, ShiftRow.status == ShiftStatus.OPEN.value
        )
        return [_shift(r) for r in (await self._s.scalars(query)).all()]

    # ---- bookings -----------------------------------------------------------------------------------------------

    async def bookings(self, shift_id: int) -> list[Booking]:
        query = select(BookingRow).where(BookingRow.shift_id == shift_id).order_by(BookingRow.position)
        return [_booking(r) for r in (await self._s.scalars(query)).all()]

    async def booking(self, booking_id: int) -> Booking | None:
        row = await self._s.get(BookingRow, booking_id, populate_existing=True)
        return _booking(row) if row else None

    async def add_booking(self, shift_id: int, resident_id: int, status: BookingStatus, now: datetime) -> Booking:
        position = await self._s.scalar(
            select(func.coalesce(func.max(BookingRow.position), 0) + 1).where(BookingRow.shift_id == shift_id)
        )
        row = BookingRow(
            shift_id=shift_id,
            resident_id=resident_id,
            status=status.value,
            position=int(position or 1),
            created_at=now,
            updated_at=now,
            hours=HoursStatus.NONE.value,
            late=False,
            code_failures=0,
        )
        self._s.add(row)
        await self._s.flush()
        return _booking(row)

    async def move(self, booking_id: int, current: Sequence[BookingStatus], **fields: Any) -> bool:
        """Change a booking only while its status is one of ``current``."""
        values = {k: (v.value if isinstance(v, (BookingStatus, HoursStatus)) else v) for k, v in fields.items()}
        result = await self._s.execute(
            update(BookingRow)
            .where(BookingRow.id == booking_id, BookingRow.status.in_([s.value for s in current]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def active_of(self, resident_id: int, since: datetime) -> list[tuple[Booking, ShiftView]]:
        """The resident's booked, offered and waiting places on shifts not yet over, soonest first."""
        query = (
            select(BookingRow, ShiftRow, ActivityRow)
            .join(ShiftRow, ShiftRow.id == BookingRow.shift_id)
            .join(ActivityRow, ActivityRow.id == ShiftRow.activity_id)
            .where(
                BookingRow.resident_id == resident_id,
                BookingRow.status.in_(_ACTIVE),
                ShiftRow.ends_at > since,
            )
            .order_by(ShiftRow.starts_at)
        )
        rows = (await self._s.execute(query)).all()
        return [(_booking(b), ShiftView(_shift(s), _activity(a), 0, 0)) for b, s, a in rows]

    async def booked_shifts(self, resident_id: int, since: datetime) -> list[Shift]:
        """Shifts the resident holds a place on (booked or offered) that end after ``since`` (clash checks)."""
        query = (
            select(ShiftRow)
            .join(BookingRow, BookingRow.shift_id == ShiftRow.id)
            .where(
                BookingRow.resident_id == resident_id,
                BookingRow.status.in_(_HOLDS),
                ShiftRow.ends_at > since,
                ShiftRow.status == ShiftStatus.OPEN.value,
            )
        )
        return [_shift(r) for r in (await self._s.scalars(query)).all()]

    async def roster(self, shift_id: int) -> list[tuple[Booking, Person]]:
        query = (
            select(BookingRow, ResidentRow, BuildingRow.name)
            .join(ResidentRow, ResidentRow.id == BookingRow.resident_id)
            .outerjoin(BuildingRow, BuildingRow.id == ResidentRow.building_id)
            .where(BookingRow.shift_id == shift_id)
            .order_by(BookingRow.position)
        )
        rows = (await self._s.execute(query)).all()
        return [(_booking(b), _person(r, n)) for b, r, n in rows]

    # ---- record, figures and export -----------------------------------------------------------------------------

    async def record(
        self, resident_id: int, since: datetime | None = None, until: datetime | None = None
    ) -> list[ServiceLine]:
        query = (
            select(BookingRow, ShiftRow, ActivityRow)
            .join(ShiftRow, ShiftRow.id == BookingRow.shift_id)
            .join(ActivityRow, ActivityRow.id == ShiftRow.activity_id)
            .where(BookingRow.resident_id == resident_id, BookingRow.hours == HoursStatus.APPROVED.value)
            .order_by(ShiftRow.starts_at)
        )
        if since is not None:
            query = query.where(ShiftRow.starts_at >= since)
        if until is not None:
            query = query.where(ShiftRow.starts_at < until)
        rows = (await self._s.execute(query)).all()
        return [
            ServiceLine(s.id, a.title, a.track, s.starts_at, s.ends_at, int(b.minutes or 0),
                        int(b.minutes or 0) * s.points_per_hour // 60)
            for b, s, a in rows
        ]  # fmt: skip

    async def ledger(
        self, community_id: int, since: datetime | None, until: datetime | None
    ) -> list[tuple[Booking, Shift, Activity, Person]]:
        """Every served, pending or missed place of the community's shifts in the period (the 台账)."""
        query = (
            select(BookingRow, ShiftRow, ActivityRow, ResidentRow, BuildingRow.name)
            .join(ShiftRow, ShiftRow.id == BookingRow.shift_id)
            .join(ActivityRow, ActivityRow.id == ShiftRow.activity_id)
            .join(ResidentRow, ResidentRow.id == BookingRow.resident_id)
            .outerjoin(BuildingRow, BuildingRow.id == ResidentRow.building_id)
            .where(
                ActivityRow.community_id == community_id,
                or_(
                    BookingRow.hours != HoursStatus.NONE.value,
                    BookingRow.status == BookingStatus.NO_SHOW.value,
                ),
            )
            .order_by(ShiftRow.starts_at, BookingRow.position)
        )
        if since is not None:
            query = query.where(ShiftRow.starts_at >= since)
        if until is not None:
            query = query.where(ShiftRow.starts_at < until)
        rows = (await self._s.execute(query)).all()
        return [(_booking(b), _shift(s), _activity(a), _person(r, n)) for b, s, a, r, n in rows]

    async def figures(
        self, community_id: int, since: datetime | None, until: datetime | None = None
    ) -> VolunteerFigures:
        """Residents, volunteers, applicants, minutes by track and building, shifts (starting in [since, until)),
        bookings, no-shows."""
        residents = await self._s.scalar(
            select(func.count())
            .select_from(ResidentRow)
            .where(ResidentRow.community_id == community_id, ResidentRow.consent_at.is_not(None))
        )
        statuses = dict(
            (await self._s.execute(
                select(VolunteerProfileRow.status, func.count())
                .where(VolunteerProfileRow.community_id == community_id)
                .group_by(VolunteerProfileRow.status)
            )).all()
        )  # fmt: skip
        base = (
            select(BookingRow, ShiftRow, ActivityRow)
            .join(ShiftRow, ShiftRow.id == BookingRow.shift_id)
            .join(ActivityRow, ActivityRow.id == ShiftRow.activity_id)
            .where(ActivityRow.community_id == community_id)
        )
        if since is not None:
            base = base.where(ShiftRow.starts_at >= since)
        if until is not None:
            base = base.where(ShiftRow.starts_at < until)
        by_track: dict[str, int] = {}
        minutes_by_resident: dict[int, int] = {}
        bookings = no_shows = 0
        shifts: set[int] = set()
        for booking, shift, activity in (await self._s.execute(base)).all():
            shifts.add(shift.id)
            bookings += 1
            no_shows += booking.status == BookingStatus.NO_SHOW.value
            if booking.hours == HoursStatus.APPROVED.value:
                key = activity.track or "general"
                by_track[key] = by_track.get(key, 0) + int(booking.minutes or 0)
                minutes_by_resident[booking.resident_id] = minutes_by_resident.get(booking.resident_id, 0) + int(
                    booking.minutes or 0
                )
        by_building: dict[str, int] = {}
        if minutes_by_resident:
            rows = (
                await self._s.execute(
                    select(ResidentRow.id, BuildingRow.name)
                    .outerjoin(BuildingRow, BuildingRow.id == ResidentRow.building_id)
                    .where(ResidentRow.id.in_(list(minutes_by_resident)))
                )
            ).all()
            for resident_id, building in rows:
                name = building or ""
                by_building[name] = by_building.get(name, 0) + minutes_by_resident[resident_id]
        return VolunteerFigures(
            residents=int(residents or 0),
            volunteers=int(statuses.get(ProfileStatus.APPROVED.value, 0)),
            pending=int(statuses.get(ProfileStatus.PENDING.value, 0)),
            minutes_by_track=by_track,
            minutes_by_building=by_building,
            shifts=len(shifts),
            bookings=bookings,
            no_shows=no_shows,
        )

    # ---- certificates -------------------------------------------------------------------------------------------

    async def add_certificate(self, cert: Certificate) -> int:
        row = CertificateRow(
            number=cert.number,
            resident_id=cert.resident_id,
            community_id=cert.community_id,
            name=cert.name,
            period_from=cert.period_from,
            period_to=cert.period_to,
            minutes=cert.minutes,
            services=list(cert.services),
            contact=cert.contact,
            issued_at=cert.issued_at,
            issued_by=cert.issued_by,
        )
        self._s.add(row)
        await self._s.flush()
        return row.id

    async def set_certificate_number(self, certificate_id: int, number: str) -> None:
        await self._s.execute(
            update(CertificateRow).where(CertificateRow.id == certificate_id).values(number=number)
            .execution_options(synchronize_session=False)
        )  # fmt: skip

    async def certificate(self, number: str) -> tuple[Certificate, str] | None:
        """The certificate with this number and the name of the community that issued it."""
        row = (
            await self._s.execute(
                select(CertificateRow, CommunityRow.name)
                .join(CommunityRow, CommunityRow.id == CertificateRow.community_id)
                .where(CertificateRow.number == number)
            )
        ).first()
        if row is None:
            return None
        cert, community = row
        return _certificate(cert, community), community

    async def anonymise_certificates(self, resident_id: int, replacement: str) -> int:
        result = await self._s.execute(
            update(CertificateRow)
            .where(CertificateRow.resident_id == resident_id)
            .values(name=replacement, resident_id=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def withdraw(self, resident_id: int, now: datetime) -> list[int]:
        """A resident who leaves (``/deleteme``): their active places are cancelled; returns the shifts freed."""
        rows = (
            await self._s.execute(
                select(BookingRow.id, BookingRow.shift_id).where(
                    BookingRow.resident_id == resident_id, BookingRow.status.in_(_ACTIVE)
                )
            )
        ).all()
        for booking_id, _ in rows:
            await self.move(booking_id, list(ACTIVE), status=BookingStatus.CANCELLED, updated_at=now)
        return sorted({shift_id for _, shift_id in rows})


def _profile(row: VolunteerProfileRow) -> Profile:
    return Profile(
        row.resident_id,
        row.community_id,
        ProfileStatus(row.status),
        row.skills,
        row.availability,
        row.created_at,
        row.stars_announced,
    )


def _person(row: ResidentRow, building: str | None) -> Person:
    return Person(row.id, row.telegram_id, row.display_name, row.locale, building)


def _activity(row: ActivityRow) -> Activity:
    return Activity(
        row.id,
        row.community_id,
        row.title,
        row.description,
        row.place,
        row.contact,
        row.track,
        row.latitude,
        row.longitude,
        row.created_by,
        row.cancelled_at,
    )


def _shift(row: ShiftRow) -> Shift:
    return Shift(
        row.id,
        row.activity_id,
        row.starts_at,
        row.ends_at,
        row.capacity,
        row.points_per_hour,
        row.note,
        row.cutoff_hours,
        ShiftStatus(row.status),
        row.secret,
        row.code_chat_id,
    )


def _booking(row: BookingRow) -> Booking:
    return Booking(
        row.id,
        row.shift_id,
        row.resident_id,
        BookingStatus(row.status),
        row.position,
        row.created_at,
        row.offered_until,
        row.checked_in_at,
        row.checked_out_at,
        HoursStatus(row.hours),
        row.minutes,
        row.late,
        row.correction,
        row.code_failures,
    )


def _certificate(row: CertificateRow, community: str) -> Certificate:
    return Certificate(
        row.number,
        row.resident_id,
        row.name,
        community,
        row.contact,
        row.period_from,
        row.period_to,
        row.minutes,
        tuple(row.services),
        row.issued_at,
        row.issued_by,
        community_id=row.community_id,
    )
