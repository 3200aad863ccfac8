"""Volunteer service for organisers: activities and shifts (weekly ones too), changes that everyone booked hears
about, rosters, messages to a shift, no-shows, the rotating check-in code, approving hours (points once), approving
volunteers, the figures and the 台账 export. Every action re-reads the organiser's role for the community concerned
and is written to the audit log."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.errors import Forbidden, NotFound
from bot.domain.notices import Choice, Notice
from bot.domain.residents import Community, Resident
from bot.domain.roles import Role
from bot.domain.telegram_html import escape
from bot.domain.volunteers import (
    ACTIVE,
    CONTACT_MAX,
    DESCRIPTION_MAX,
    HOLDS_PLACE,
    PLACE_MAX,
    REASON_MAX,
    TITLE_MAX,
    Activity,
    Booking,
    BookingStatus,
    HoursStatus,
    Person,
    Profile,
    ProfileStatus,
    Shift,
    ShiftDraft,
    ShiftStatus,
    ShiftView,
    Stars,
    VolunteerError,
    VolunteerFigures,
    checkin_code,
    clean,
    code_valid_until,
    served_minutes,
)
from bot.services.outbox import queue_all
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services.volunteer_actions import OPEN_SHIFT
from bot.services.volunteers import SHIFT_END, VolunteerService, shift_context

MESSAGE_MAX = 1000
CORRECT_MAX_MINUTES = 24 * 60


@dataclass(frozen=True)
class Roster:
    view: ShiftView
    lines: list[tuple[Booking, Person]]
    zone: ZoneInfo
    now: datetime

    def having(self, *statuses: BookingStatus) -> list[tuple[Booking, Person]]:
        return [(b, p) for b, p in self.lines if b.status in statuses]

    @property
    def checked_in(self) -> list[tuple[Booking, Person]]:
        return [(b, p) for b, p in self.lines if b.checked_in_at is not None and b.status is BookingStatus.BOOKED]

    @property
    def pending_hours(self) -> list[tuple[Booking, Person]]:
        return [(b, p) for b, p in self.lines if b.hours is HoursStatus.PENDING and b.status is BookingStatus.BOOKED]


@dataclass(frozen=True)
class CodeDisplay:
    code: str
    valid_until: datetime


class VolunteerDesk:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, volunteers: VolunteerService) -> None:
        self._uow = uow
        self._clock = clock
        self._v = volunteers
        self._codes_minute: int | None = None  # the minute whose codes refresh_codes last queued

    # ---- who may act -------------------------------------------------------------------------------------------

    async def _organiser(
        self, uow: UnitOfWork, telegram_id: int, action: str, community_id: int | None = None
    ) -> tuple[Resident, Community]:
        """The organiser and the community they act in (their own one, or the one the thing belongs to)."""
        actor = await uow.residents.get_by_telegram_id(telegram_id)
        target = community_id if community_id is not None else (actor.community_id if actor else None)
        if actor is None or target is None or not actor.has_role(Role.ORGANISER, target):
            await uow.audit.add(self._clock(), telegram_id, action, False, {"community": target})
            await uow.commit()  # the refusal is kept, whatever else this unit of work would have done
            raise Forbidden(role=Role.ORGANISER.value).audited()
        community = await uow.communities.get(target)
        if community is None:
            raise NotFound(what="community")
        return actor, community

    async def _shift(self, uow: UnitOfWork, telegram_id: int, shift_id: int, action: str) -> tuple[Shift, Activity]:
        shift = await uow.volunteers.shift(shift_id, for_update=True)
        activity = await uow.volunteers.activity(shift.activity_id) if shift else None
        if shift is None or activity is None:
            raise NotFound(what="shift")
        await self._organiser(uow, telegram_id, action, activity.community_id)
        return shift, activity

    async def _booking(self, uow: UnitOfWork, telegram_id: int, booking_id: int, action: str) -> tuple[Shift, Booking]:
        """A booking on a shift of the organiser's community, re-read under the shift's lock."""
        found = await uow.volunteers.booking(booking_id)
        if found is None:
            raise NotFound(what="booking")
        shift, _ = await self._shift(uow, telegram_id, found.shift_id, action)
        booking = await uow.volunteers.booking(booking_id)
        assert booking is not None
        return shift, booking

    async def is_organiser(self, telegram_id: int) -> bool:
        async with self._uow() as uow:
            actor = await uow.residents.get_by_telegram_id(telegram_id)
        return bool(actor and actor.community_id and actor.has_role(Role.ORGANISER, actor.community_id))

    # ---- activities and shifts ---------------------------------------------------------------------------------

    async def create_activity(
        self,
        telegram_id: int,
        *,
        title: str,
        description: str,
        place: str,
        contact: str,
        track: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
    ) -> Activity:
        now = self._clock()
        draft = Activity(
            id=0,
            community_id=0,
            title=clean(title, TITLE_MAX),
            description=clean(description, DESCRIPTION_MAX, required=False),
            place=clean(place, PLACE_MAX),
            contact=clean(contact, CONTACT_MAX),
            track=track,
            latitude=latitude,
            longitude=longitude,
            created_by=telegram_id,
        )
        async with self._uow() as uow:
            _, community = await self._organiser(uow, telegram_id, "volunteer.activity")
            activity = await uow.volunteers.add_activity(
                Activity(**{**draft.__dict__, "community_id": community.id}), now
            )
            await uow.audit.add(now, telegram_id, "volunteer.activity", True, {"activity": activity.id})
            await uow.commit()
        return activity

    async def add_shifts(self, telegram_id: int, activity_id: int, draft: ShiftDraft) -> list[Shift]:
        """One shift, or one per week for ``draft.repeat_weeks`` weeks (a weekly rota from one template)."""
        now = self._clock()
        draft.check(now)
        async with self._uow() as uow:
            activity = await uow.volunteers.activity(activity_id)
            if activity is None or activity.cancelled_at is not None:
                raise NotFound(what="activity")
            await self._organiser(uow, telegram_id, "volunteer.shift", activity.community_id)
            shifts = []
            for starts_at, ends_at in draft.occurrences():
                shift = Shift(0, activity_id, starts_at, ends_at, draft.capacity, draft.points_per_hour, draft.note,
                              draft.cutoff_hours, ShiftStatus.OPEN, secrets.token_hex(16))  # fmt: skip
                added = await uow.volunteers.add_shift(shift, now)
                await _schedule_end(uow, added, now)
                shifts.append(added)
            details = {"activity": activity_id, "shifts": [s.id for s in shifts]}
            await uow.audit.add(now, telegram_id, "volunteer.shift", True, details)
            await uow.commit()
        return shifts

    async def activities(self, telegram_id: int) -> tuple[ZoneInfo, list[ShiftView]]:
        """The organiser's community's shifts not over yet (cancelled ones too, so they can be seen)."""
        now = self._clock()
        async with self._uow() as uow:
            _, community = await self._organiser(uow, telegram_id, "volunteer.list")
            views = await uow.volunteers.views(community.id, since=now - timedelta(hours=12), limit=40)
        return self._v.zone(community), views

    async def activity(self, telegram_id: int, activity_id: int) -> tuple[Activity, list[ShiftView], ZoneInfo]:
        now = self._clock()
        async with self._uow() as uow:
            activity = await uow.volunteers.activity(activity_id)
            if activity is None:
                raise NotFound(what="activity")
            _, community = await self._organiser(uow, telegram_id, "volunteer.list", activity.community_id)
            views = await uow.volunteers.views(community.id, activity_id=activity_id, since=now - timedelta(hours=12))
        return activity, views, self._v.zone(community)

    async def move_shift(self, telegram_id: int, shift_id: int, starts_at: datetime, ends_at: datetime) -> Shift:
        """New times: every booked, offered and waiting volunteer is told what changed; reminders follow."""
        now = self._clock()
        async with self._uow() as uow:
            shift, activity = await self._shift(uow, telegram_id, shift_id, "volunteer.move")
            if shift.status is ShiftStatus.CANCELLED:
                raise VolunteerError("shift_cancelled")
            ShiftDraft(starts_at, ends_at, shift.capacity, shift.points_per_hour, shift.note,
                       shift.cutoff_hours).check(now)  # fmt: skip
            await uow.volunteers.update_shift(shift.id, starts_at=starts_at, ends_at=ends_at)
            moved = await uow.volunteers.shift(shift.id)
            assert moved is not None
            await _schedule_end(uow, moved, now)
            zone = await self._v.zone_of(uow, activity)
            change = {"old_start": shift.starts_at.astimezone(zone), "old_end": shift.ends_at.astimezone(zone)}
            notices = await self._tell_booked(uow, moved, activity, "volunteers/changed_time", change, now)
            for booking in await uow.volunteers.bookings(shift.id):
                if booking.status is BookingStatus.BOOKED:
                    resident = await uow.residents.get(booking.resident_id)
                    if resident is not None:
                        await self._v.schedule_reminders(uow, resident, moved, booking, now)
            await queue_all(uow, notices, now)
            details = {"shift": shift.id, "from": shift.starts_at.isoformat(), "to": starts_at.isoformat()}
            await uow.audit.add(now, telegram_id, "volunteer.move", True, details)
            await uow.commit()
        return moved

    async def move_place(
        self,
        telegram_id: int,
        activity_id: int,
        place: str,
        latitude: float | None = None,
        longitude: float | None = None,
    ) -> Activity:
        """A new place: volunteers of every shift not yet over are told."""
        now = self._clock()
        place = clean(place, PLACE_MAX)
        async with self._uow() as uow:
            activity = await uow.volunteers.activity(activity_id)
            if activity is None:
                raise NotFound(what="activity")
            await self._organiser(uow, telegram_id, "volunteer.place", activity.community_id)
            await uow.volunteers.update_activity(activity_id, place=place, latitude=latitude, longitude=longitude)
            moved = await uow.volunteers.activity(activity_id)
            assert moved is not None
            notices = []
            for shift in await uow.volunteers.shifts_of(activity_id):
                if shift.ends_at > now and shift.status is ShiftStatus.OPEN:
                    notices += await self._tell_booked(uow, shift, moved, "volunteers/changed_place",
                                                       {"old_place": activity.place}, now)  # fmt: skip
            await queue_all(uow, notices, now)
            await uow.audit.add(now, telegram_id, "volunteer.place", True, {"activity": activity_id})
            await uow.commit()
        return moved

    async def cancel_shift(self, telegram_id: int, shift_id: int) -> int:
        """Cancel one shift: everyone booked or waiting is told and the waitlist is cleared. Returns how many."""
        now = self._clock()
        async with self._uow() as uow:
            shift, activity = await self._shift(uow, telegram_id, shift_id, "volunteer.cancel_shift")
            told = await self._cancel(uow, shift, activity, now)
            await uow.audit.add(now, telegram_id, "volunteer.cancel_shift", True, {"shift": shift.id})
            await uow.commit()
        return told

    async def cancel_activity(self, telegram_id: int, activity_id: int) -> int:
        now = self._clock()
        async with self._uow() as uow:
            activity = await uow.volunteers.activity(activity_id)
            if activity is None:
                raise NotFound(what="activity")
            await self._organiser(uow, telegram_id, "volunteer.cancel_activity", activity.community_id)
            told = 0
            for shift in await uow.volunteers.shifts_of(activity_id):
                locked = await uow.volunteers.shift(shift.id, for_update=True)
                if locked is not None and locked.status is ShiftStatus.OPEN and locked.ends_at > now:
                    told += await self._cancel(uow, locked, activity, now)
            await uow.volunteers.update_activity(activity_id, cancelled_at=now)
            await uow.audit.add(now, telegram_id, "volunteer.cancel_activity", True, {"activity": activity_id})
            await uow.commit()
        return told

    async def _cancel(self, uow: UnitOfWork, shift: Shift, activity: Activity, now: datetime) -> int:
        if shift.status is ShiftStatus.CANCELLED:
            return 0
        notices = await self._tell_booked(uow, shift, activity, "volunteers/cancelled", {}, now, buttons=False)
        for booking in await uow.volunteers.bookings(shift.id):
            if booking.status in ACTIVE:
                await uow.volunteers.move(booking.id, [booking.status], status=BookingStatus.CANCELLED,
                                          offered_until=None, updated_at=now)  # fmt: skip
        await uow.volunteers.update_shift(shift.id, status=ShiftStatus.CANCELLED, code_chat_id=None)
        await queue_all(uow, notices, now)
        return len(notices)

    async def _tell_booked(
        self,
        uow: UnitOfWork,
        shift: Shift,
        activity: Activity,
        template: str,
        change: Mapping[str, object],
        now: datetime,
        *,
        buttons: bool = True,
    ) -> list[Notice]:
        """One notice to each volunteer booked, offered or waiting on ``shift``."""
        zone = await self._v.zone_of(uow, activity)
        notices = []
        stamp = now.isoformat()
        for booking, person in await uow.volunteers.roster(shift.id):
            if booking.status not in ACTIVE or person.telegram_id is None:
                continue
            context = shift_context(ShiftView(shift, activity, 0, 0), zone) | dict(change) | {"status": booking.status}
            choices = ((Choice("volunteers.btn.open_shift", OPEN_SHIFT, (shift.id,)),),) if buttons else ()
            notices.append(Notice(person.telegram_id, template, context, person.locale, choices=choices,
                                  key=f"vchg:{template}:{booking.id}:{stamp}"))  # fmt: skip
        return notices

    # ---- the shift under way -------------------------------------------------------------------------------------

    async def roster(self, telegram_id: int, shift_id: int) -> Roster:
        now = self._clock()
        async with self._uow() as uow:
            shift, activity = await self._shift(uow, telegram_id, shift_id, "volunteer.roster")
            lines = await uow.volunteers.roster(shift.id)
            zone = await self._v.zone_of(uow, activity)
        held = sum(1 for b, _ in lines if b.status in HOLDS_PLACE)
        waiting = sum(1 for b, _ in lines if b.status is BookingStatus.WAITING)
        return Roster(ShiftView(shift, activity, held, waiting), lines, zone, now)

    async def message(self, telegram_id: int, shift_id: int, text: str) -> int:
        """A message from the organiser to everyone holding a place on the shift; returns how many."""
        body = clean(text, MESSAGE_MAX)
        now = self._clock()
        async with self._uow() as uow:
            shift, activity = await self._shift(uow, telegram_id, shift_id, "volunteer.message")
            zone = await self._v.zone_of(uow, activity)
            notices = []
            for booking, person in await uow.volunteers.roster(shift.id):
                if booking.status in HOLDS_PLACE and person.telegram_id is not None:
                    context = shift_context(ShiftView(shift, activity, 0, 0), zone) | {"text": escape(body)}
                    notices.append(Notice(person.telegram_id, "volunteers/message", context, person.locale,
                                          key=f"vmsg:{shift.id}:{booking.id}:{now.isoformat()}"))  # fmt: skip
            await queue_all(uow, notices, now)
            await uow.audit.add(now, telegram_id, "volunteer.message", True, {"shift": shift.id, "to": len(notices)})
            await uow.commit()
        return len(notices)

    async def no_show(self, telegram_id: int, booking_id: int) -> Booking:
        """Mark a booked volunteer who did not come (after the start; not once checked in)."""
        now = self._clock()
        async with self._uow() as uow:
            shift, booking = await self._booking(uow, telegram_id, booking_id, "volunteer.no_show")
            if now < shift.starts_at:
                raise VolunteerError("not_started")
            if booking.status is not BookingStatus.BOOKED or booking.checked_in_at is not None:
                raise VolunteerError("not_no_show")
            await uow.volunteers.move(booking.id, [BookingStatus.BOOKED], status=BookingStatus.NO_SHOW, updated_at=now)
            await uow.audit.add(now, telegram_id, "volunteer.no_show", True, {"booking": booking.id})
            await uow.commit()
        return booking

    async def show_code(self, telegram_id: int, shift_id: int, chat_id: int) -> CodeDisplay:
        """Start showing the rotating check-in code in ``chat_id``: the message is edited every minute until the
        shift ends (``refresh_codes``)."""
        now = self._clock()
        async with self._uow() as uow:
            shift, activity = await self._shift(uow, telegram_id, shift_id, "volunteer.code")
            if not shift.checkin_open(now):
                raise VolunteerError("checkin_closed")
            await uow.volunteers.update_shift(shift.id, code_chat_id=chat_id)
            organiser = await uow.residents.get_by_telegram_id(telegram_id)
            locale = organiser.locale if organiser else "zh_Hans"
            notice = self._code_notice(shift, activity, chat_id, locale, now, await self._v.zone_of(uow, activity))
            await queue_all(uow, [notice], now)
            await uow.audit.add(now, telegram_id, "volunteer.code", True, {"shift": shift.id})
            await uow.commit()
        return CodeDisplay(checkin_code(shift.secret, shift.id, now), code_valid_until(now))

    async def refresh_codes(self, now: datetime) -> int:
        """The ticker's step: each displayed code message shows this minute's code (one edit per minute; the ticks
        in between do nothing)."""
        minute = int(now.timestamp()) // 60
        if minute == self._codes_minute:
            return 0
        async with self._uow() as uow:
            notices = []
            for shift in await uow.volunteers.showing_codes(now):
                activity = await uow.volunteers.activity(shift.activity_id)
                if activity is None or shift.code_chat_id is None:
                    continue
                people = await uow.residents.get_by_telegram_id(shift.code_chat_id)
                locale = people.locale if people else "zh_Hans"
                zone = await self._v.zone_of(uow, activity)
                notices.append(self._code_notice(shift, activity, shift.code_chat_id, locale, now, zone, edit=True))
            await queue_all(uow, notices, now)
            await uow.commit()
        self._codes_minute = minute
        return len(notices)

    @staticmethod
    def _code_notice(
        shift: Shift,
        activity: Activity,
        chat_id: int,
        locale: str,
        now: datetime,
        zone: ZoneInfo,
        *,
        edit: bool = False,
    ) -> Notice:
        minute = int(now.timestamp()) // 60
        context = shift_context(ShiftView(shift, activity, 0, 0), zone) | {
            "code": checkin_code(shift.secret, shift.id, now),
            "valid_until": code_valid_until(now).astimezone(zone),
        }
        return Notice(chat_id, "volunteers/desk/code", context, locale, ref=f"vcode:{shift.id}", edit=edit,
                      key=f"vcode:{shift.id}:{chat_id}:{minute}:{int(edit)}")  # fmt: skip

    # ---- hours ---------------------------------------------------------------------------------------------------

    async def approve_all(self, telegram_id: int, shift_id: int) -> tuple[int, int]:
        """Approve the checked time of everyone waiting for approval; returns (volunteers, minutes)."""
        now = self._clock()
        async with self._uow() as uow:
            shift, _ = await self._shift(uow, telegram_id, shift_id, "volunteer.approve")
            if now < shift.starts_at:
                raise VolunteerError("not_started")
            notices: list[Notice] = []
            count = minutes = 0
            for booking in await uow.volunteers.bookings(shift.id):
                if booking.status is BookingStatus.BOOKED and booking.hours is HoursStatus.PENDING:
                    assert booking.checked_in_at is not None
                    served = booking.minutes
                    if served is None or booking.checked_out_at is None:
                        served = served_minutes(
                            shift, booking.checked_in_at, booking.checked_out_at or min(now, shift.ends_at)
                        )
                    notices += await self._v.approve_minutes(uow, shift, booking, served, telegram_id, None)
                    count, minutes = count + 1, minutes + served
            await queue_all(uow, notices, now)
            await uow.audit.add(now, telegram_id, "volunteer.approve", True, {"shift": shift.id, "count": count})
            await uow.commit()
        return count, minutes

    async def correct(self, telegram_id: int, booking_id: int, minutes: int, reason: str) -> Booking:
        """Approve a volunteer's hours with another figure than the checked one (a reason is required)."""
        reason = clean(reason, REASON_MAX, "too_long")
        if not 0 <= minutes <= CORRECT_MAX_MINUTES:
            raise VolunteerError("bad_minutes", limit=CORRECT_MAX_MINUTES // 60)
        now = self._clock()
        async with self._uow() as uow:
            shift, booking = await self._booking(uow, telegram_id, booking_id, "volunteer.correct")
            if booking.hours is HoursStatus.APPROVED:
                raise VolunteerError("already_approved")
            if booking.status is not BookingStatus.BOOKED or now < shift.starts_at:
                raise VolunteerError("not_served")
            if minutes > shift.minutes:
                raise VolunteerError("over_shift", limit=shift.minutes)
            notices = await self._v.approve_minutes(uow, shift, booking, minutes, telegram_id, reason)
            await queue_all(uow, notices, now)
            details = {"booking": booking.id, "minutes": minutes, "reason": reason}
            await uow.audit.add(now, telegram_id, "volunteer.correct", True, details)
            await uow.commit()
        return booking

    # ---- volunteers and settings -------------------------------------------------------------------------------

    async def applicants(self, telegram_id: int) -> list[tuple[Profile, Person]]:
        async with self._uow() as uow:
            _, community = await self._organiser(uow, telegram_id, "volunteer.applicants")
            return await uow.volunteers.profiles(community.id, ProfileStatus.PENDING)

    async def decide(self, telegram_id: int, resident_id: int, approve: bool) -> Person:
        """Approve (or decline) a volunteer's registration; they are told either way."""
        now = self._clock()
        async with self._uow() as uow:
            profile = await uow.volunteers.profile(resident_id, for_update=True)
            resident = await uow.residents.get(resident_id)
            if profile is None or resident is None:
                raise NotFound(what="volunteer")
            await self._organiser(uow, telegram_id, "volunteer.decide", profile.community_id)
            person = Person(resident.id, resident.telegram_id, resident.display_name, resident.locale)
            status = ProfileStatus.APPROVED if approve else ProfileStatus.SUSPENDED
            if profile.status is status:
                return person
            await uow.volunteers.save_profile(Profile(profile.resident_id, profile.community_id, status, profile.skills,
                                                      profile.availability, profile.created_at,
                                                      profile.stars_announced), now, telegram_id)  # fmt: skip
            if resident.telegram_id is not None:
                template = "volunteers/approved" if approve else "volunteers/declined"
                key = f"vdecide:{resident.id}:{status.value}:{now.isoformat()}"
                await queue_all(uow, [Notice(resident.telegram_id, template, {}, resident.locale, key=key)], now)
            await uow.audit.add(now, telegram_id, "volunteer.decide", True, {"resident": resident_id, "ok": approve})
            await uow.commit()
        return person

    async def settings(self, telegram_id: int) -> tuple[bool, Stars]:
        async with self._uow() as uow:
            _, community = await self._organiser(uow, telegram_id, "volunteer.settings")
            return await uow.volunteers.settings(community.id)

    async def set_approval(self, telegram_id: int, required: bool) -> None:
        now = self._clock()
        async with self._uow() as uow:
            _, community = await self._organiser(uow, telegram_id, "volunteer.settings")
            _, stars = await uow.volunteers.settings(community.id)
            await uow.volunteers.save_settings(community.id, required, stars, now)
            await uow.audit.add(now, telegram_id, "volunteer.settings", True, {"approval": required})
            await uow.commit()

    # ---- figures -------------------------------------------------------------------------------------------------

    async def figures_for(self, telegram_id: int, since: datetime | None) -> tuple[Community, VolunteerFigures]:
        async with self._uow() as uow:
            _, community = await self._organiser(uow, telegram_id, "volunteer.stats")
            figures = await uow.volunteers.figures(community.id, since)
        return community, figures

    async def figures(
        self, community_code: str, since: datetime | None, until: datetime | None = None
    ) -> tuple[Community, VolunteerFigures]:
        """For operators (``sicheng stats volunteers``) and the dashboard: shifts starting in [since, until)."""
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community")
            figures = await uow.volunteers.figures(community.id, since, until)
        return community, figures

    # ---- for operators (``sicheng volunteers ...``): no organiser to check, changes audited with no actor ----------

    async def configure(
        self, community_code: str, approval: bool | None = None, stars: Stars | None = None
    ) -> tuple[Community, bool, Stars]:
        """Set a community's approval rule and star thresholds (None: keep); returns the settings as they stand."""
        now = self._clock()
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community", code=community_code)
            before = await uow.volunteers.settings(community.id)
            after = (before[0] if approval is None else approval, before[1] if stars is None else stars)
            if after != before:
                await uow.volunteers.save_settings(community.id, after[0], after[1], now)
                details = {"community": community.code, "approval": after[0], "stars": list(after[1].thresholds)}
                await uow.audit.add(now, None, "volunteer.settings", True, details)
                await uow.commit()
        return community, after[0], after[1]

    async def member(self, telegram_id: int) -> tuple[Resident, Community] | None:
        """A registered resident and their community, by Telegram id (nothing is marked as seen)."""
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            if resident is None or not resident.is_registered or resident.community_id is None:
                return None
            community = await uow.communities.get(resident.community_id)
        return (resident, community) if community is not None else None

    async def ledger(
        self, community_code: str, since: datetime | None, until: datetime | None
    ) -> tuple[Community, list[tuple[Booking, Shift, Activity, Person]]]:
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community")
            return community, await uow.volunteers.ledger(community.id, since, until)


async def _schedule_end(uow: UnitOfWork, shift: Shift, now: datetime) -> None:
    payload = {"shift": shift.id, "ends_at": shift.ends_at.isoformat()}
    await uow.jobs.add(SHIFT_END, shift.ends_at, payload, f"{SHIFT_END}:{shift.id}:{shift.ends_at.isoformat()}", now)
