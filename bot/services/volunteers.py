"""Volunteer service for volunteers: register, browse shifts, book (or wait), cancel, confirm an offered place,
check in and out, and see hours, stars and certificates.

Every decision about a shift's places is taken under the shift's row lock (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite has one writer), re-reading its bookings first: two volunteers pressing "book" for the last
place at the same moment get one place and one waitlist position, never two places. A freed place is offered to
the first on the waitlist in the same transaction as the cancellation that freed it, with a durable timer for the
offer; reminders are durable timers too. Whatever a volunteer or organiser is told goes through the outbox in the
transaction of the change.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from bot.domain.errors import NeedsConsent, NotFound
from bot.domain.geo import GeoPoint, distance_m
from bot.domain.jobs import Job
from bot.domain.notices import Choice, Notice
from bot.domain.points import Reason
from bot.domain.residents import Community, Resident
from bot.domain.roles import Role
from bot.domain.volunteers import (
    ACTIVE,
    CHECKIN_RADIUS_M,
    CODE_ATTEMPTS,
    DETAILS_MAX,
    HOLDS_PLACE,
    Activity,
    Booking,
    BookingStatus,
    Certificate,
    HoursStatus,
    NotYours,
    Outcome,
    Person,
    Profile,
    ProfileStatus,
    Record,
    Shift,
    ShiftStatus,
    ShiftView,
    Stars,
    VolunteerError,
    can_cancel,
    certificate_number,
    check_no_clash,
    clean,
    code_matches,
    decide_booking,
    next_in_line,
    normalise_number,
    offer_until,
    points_for,
    reminder_times,
    served_minutes,
    waitlist_position,
)
from bot.services.jobs import JobRunner
from bot.services.outbox import queue_all
from bot.services.points import PointsService, member
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services.volunteer_actions import CANT_COME, HOURS, MY_HOURS, OFFER_CONFIRM, OFFER_DECLINE, OPEN_SHIFT

OFFER_EXPIRE, REMIND, SHIFT_END = "volunteer.offer", "volunteer.remind", "volunteer.end"
BROWSE_DAYS = 14
BROWSE_LIMIT = 30


@dataclass(frozen=True)
class Standing:
    """A volunteer's registration as the menu shows it."""

    profile: Profile | None
    approval_required: bool
    community: str


@dataclass(frozen=True)
class BookResult:
    booking: Booking
    view: ShiftView
    position: int = 0  # on the waitlist; 0 when booked


@dataclass(frozen=True)
class Card:
    """A shift as one volunteer sees it: places, their own booking and waitlist position."""

    view: ShiftView
    mine: Booking | None
    position: int
    zone: ZoneInfo
    now: datetime

    @property
    def can_book(self) -> bool:
        # ``mine`` may be an earlier booking that was cancelled or lapsed: booking again is allowed then.
        free_to_book = self.mine is None or self.mine.status not in ACTIVE
        return free_to_book and self.view.shift.status is ShiftStatus.OPEN and self.now < self.view.shift.cutoff

    @property
    def can_cancel(self) -> bool:
        return self.mine is not None and can_cancel(self.view.shift, self.mine, self.now)

    @property
    def can_check_in(self) -> bool:
        return (
            self.mine is not None
            and self.mine.status is BookingStatus.BOOKED
            and self.mine.checked_in_at is None
            and self.view.shift.checkin_open(self.now)
        )

    @property
    def can_check_out(self) -> bool:
        return (
            self.mine is not None
            and self.mine.checked_in_at is not None
            and self.mine.checked_out_at is None
            and self.view.shift.starts_at <= self.now < self.view.shift.ends_at
        )


@dataclass(frozen=True)
class Presence:
    """A check-in or check-out: the booking as it now stands, or why not (a wrong code is counted, so it is an
    answer, not an error that would undo the count)."""

    booking: Booking | None
    problem: VolunteerError | None = None


@dataclass(frozen=True)
class Hours:
    """``/myhours``: approved service, stars and what is still waiting for approval."""

    record: Record
    stars: Stars
    pending_minutes: int
    zone: ZoneInfo
    community: str
    upcoming: list[tuple[Booking, ShiftView]] = field(default_factory=list)

    @property
    def level(self) -> int:
        return self.stars.level(self.record.minutes)


class VolunteerService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        points: PointsService,
        *,
        timezone: str,
        documents: Callable[[Certificate, str, tzinfo], str] | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._points = points
        self._default_zone = timezone
        self._documents = documents  # draws a certificate as a PDF file and returns its path (bot.certificate_files)

    def now(self) -> datetime:
        return self._clock()

    def zone(self, community: Community | None) -> ZoneInfo:
        return ZoneInfo((community.timezone if community else None) or self._default_zone)

    # ---- registration ---------------------------------------------------------------------------------------

    async def standing(self, telegram_id: int) -> Standing:
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident)
            profile = await _profile(uow, resident, self._clock())
            approval, _ = await uow.volunteers.settings(community.id)
        return Standing(profile, approval, community.name)

    async def register(self, telegram_id: int, skills: str, availability: str) -> Profile:
        """Become a volunteer of one's community (approved at once unless the community asks organisers first,
        who are then told with buttons to approve or decline)."""
        skills = clean(skills, DETAILS_MAX, required=False)
        availability = clean(availability, DETAILS_MAX, required=False)
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident)
            existing = await uow.volunteers.profile(resident.id, for_update=True)
            if existing is not None and existing.status is not ProfileStatus.SUSPENDED:
                profile = Profile(resident.id, community.id, existing.status, skills, availability,
                                  existing.created_at, existing.stars_announced)  # fmt: skip
                await uow.volunteers.save_profile(profile, now)
                await uow.commit()
                return profile
            if existing is not None:
                raise VolunteerError("suspended")
            approval, _ = await uow.volunteers.settings(community.id)
            status = ProfileStatus.PENDING if approval else ProfileStatus.APPROVED
            profile = Profile(resident.id, community.id, status, skills, availability, now)
            await uow.volunteers.save_profile(profile, now)
            if status is ProfileStatus.PENDING:
                await queue_all(uow, await self._ask_organisers(uow, resident, profile), now)
            await uow.audit.add(now, telegram_id, "volunteer.register", True, {"status": status.value})
            await uow.commit()
        return profile

    async def _ask_organisers(self, uow: UnitOfWork, resident: Resident, profile: Profile) -> list[Notice]:
        from bot.services.volunteer_actions import APPROVE_VOLUNTEER, REFUSE_VOLUNTEER

        notices = []
        for organiser in await uow.residents.with_role(Role.ORGANISER, profile.community_id):
            if organiser.telegram_id is None:
                continue
            choices = ((Choice("volunteers.btn.approve", APPROVE_VOLUNTEER, (resident.id,)),
                        Choice("volunteers.btn.refuse", REFUSE_VOLUNTEER, (resident.id,))),)  # fmt: skip
            context = {"name": resident.display_name, "skills": profile.skills, "availability": profile.availability}
            key = f"vapply:{resident.id}:{profile.created_at}:{organiser.id}"
            notices.append(Notice(organiser.telegram_id, "volunteers/desk/applied", context, organiser.locale,
                                  choices=choices, key=key))  # fmt: skip
        return notices

    # ---- browsing ------------------------------------------------------------------------------------------

    async def browse(self, telegram_id: int, day: date | None = None, track: str | None = None) -> list[Card]:
        """Upcoming shifts of the volunteer's community (the next two weeks, or one local ``day``), by time."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident)
            zone = self.zone(community)
            if day is not None:
                since = max(now, datetime.combine(day, time(), zone))
                until = datetime.combine(day + timedelta(days=1), time(), zone)
            else:
                since, until = now, now + timedelta(days=BROWSE_DAYS)
            views = await uow.volunteers.views(community.id, since=since, until=until, track=track,
                                               limit=BROWSE_LIMIT)  # fmt: skip
            mine = {b.shift_id: b for b, _ in await uow.volunteers.active_of(resident.id, now)}
        return [Card(v, mine.get(v.shift.id), 0, zone, now) for v in views if v.shift.starts_at > now]

    async def card(self, telegram_id: int, shift_id: int) -> Card:
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            view = await _view(uow, resident, shift_id)
            bookings = await uow.volunteers.bookings(shift_id)
            community = await _community(uow, resident)
        mine = _mine(bookings, resident.id)
        position = waitlist_position(bookings, mine.id) if mine else 0
        return Card(view, mine, position, self.zone(community), now)

    async def booking_card(self, telegram_id: int, booking_id: int) -> Card:
        """The card of the shift a booking of the sender's is on (someone else's booking is refused)."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            booking = await uow.volunteers.booking(booking_id)
        if booking is None:
            raise NotFound(what="booking")
        if booking.resident_id != resident.id:
            raise NotYours(what="booking")
        return await self.card(telegram_id, booking.shift_id)

    async def activity(self, telegram_id: int, activity_id: int) -> tuple[Activity, list[Card]]:
        """An activity (a notice's button opens it) with its upcoming shifts."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            activity = await uow.volunteers.activity(activity_id)
            if activity is None or activity.community_id != resident.community_id:
                raise NotFound(what="activity")
            community = await _community(uow, resident)
            views = await uow.volunteers.views(community.id, since=now, activity_id=activity_id)
            mine = {b.shift_id: b for b, _ in await uow.volunteers.active_of(resident.id, now)}
        zone = self.zone(community)
        return activity, [Card(v, mine.get(v.shift.id), 0, zone, now) for v in views]

    async def mine(self, telegram_id: int) -> list[Card]:
        """The volunteer's places (booked, offered, waiting with position) on shifts not over yet."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident)
            cards = []
            for booking, view in await uow.volunteers.active_of(resident.id, now):
                bookings = await uow.volunteers.bookings(view.shift.id)
                held = sum(1 for b in bookings if b.status in HOLDS_PLACE)
                waiting = sum(1 for b in bookings if b.status is BookingStatus.WAITING)
                full = ShiftView(view.shift, view.activity, held, waiting)
                cards.append(Card(full, booking, waitlist_position(bookings, booking.id), self.zone(community), now))
        return cards

    # ---- booking ------------------------------------------------------------------------------------------

    async def book(self, telegram_id: int, shift_id: int, *, waitlist: bool = True) -> BookResult:
        """A place, or a waitlist position when the shift is full (or a refusal naming the reason)."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            shift = await uow.volunteers.shift(shift_id, for_update=True)  # every decision on it waits here
            if shift is None:
                raise NotFound(what="shift")
            view = await _view(uow, resident, shift_id)
            profile = await _profile(uow, resident, now, store=True)
            bookings = await uow.volunteers.bookings(shift_id)
            others = await uow.volunteers.booked_shifts(resident.id, now)
            decision = decide_booking(shift, bookings, resident.id, profile, others, now, waitlist=waitlist)
            status = BookingStatus.BOOKED if decision.outcome is Outcome.BOOKED else BookingStatus.WAITING
            booking = await uow.volunteers.add_booking(shift_id, resident.id, status, now)
            if status is BookingStatus.BOOKED:
                await self.schedule_reminders(uow, resident, shift, booking, now)
            await uow.commit()
        return BookResult(booking, view, decision.position)

    async def cancel(self, telegram_id: int, booking_id: int) -> Booking:
        """Step back before the cut-off (a waiting or offered volunteer may always); the place goes to the next."""
        now = self._clock()
        async with self._uow() as uow:
            resident, shift, booking = await self._own(uow, telegram_id, booking_id)
            if booking.status not in (BookingStatus.BOOKED, BookingStatus.WAITING, BookingStatus.OFFERED):
                raise VolunteerError("not_active")
            if not can_cancel(shift, booking, now):
                zone = await self._zone(uow, resident)
                raise VolunteerError("cancel_past_cutoff", cutoff=shift.cutoff.astimezone(zone), booking=booking.id)
            await uow.volunteers.move(booking.id, [booking.status], status=BookingStatus.CANCELLED, updated_at=now)
            await queue_all(uow, await self._promote(uow, shift, now), now)
            await uow.audit.add(now, telegram_id, "volunteer.cancel", True, {"shift": shift.id})
            await uow.commit()
        return booking

    async def cant_come(self, telegram_id: int, booking_id: int) -> Booking:
        """ "I can't come" (from a reminder, or after the cut-off): the place is freed and offered on; after the
        cut-off it counts as a late cancellation and the organiser is told."""
        now = self._clock()
        async with self._uow() as uow:
            resident, shift, booking = await self._own(uow, telegram_id, booking_id)
            if booking.status not in (BookingStatus.BOOKED, BookingStatus.OFFERED, BookingStatus.WAITING):
                raise VolunteerError("not_active")
            if now >= shift.starts_at:
                raise VolunteerError("started")
            late = now >= shift.cutoff and booking.status is BookingStatus.BOOKED
            await uow.volunteers.move(booking.id, [booking.status], status=BookingStatus.CANCELLED, late=late,
                                      updated_at=now)  # fmt: skip
            notices = await self._promote(uow, shift, now)
            if late:
                context: dict[str, object] = {"name": resident.display_name}
                notices += await self._tell_organisers(uow, shift, "volunteers/desk/late_cancel", context,
                                                       key=f"vlate:{booking.id}")  # fmt: skip
            await queue_all(uow, notices, now)
            await uow.audit.add(now, telegram_id, "volunteer.cant_come", True, {"shift": shift.id, "late": late})
            await uow.commit()
        return booking

    async def confirm(self, telegram_id: int, booking_id: int) -> Booking:
        """Take an offered place, while the offer stands."""
        now = self._clock()
        async with self._uow() as uow:
            resident, shift, booking = await self._own(uow, telegram_id, booking_id)
            if booking.status is BookingStatus.BOOKED:
                raise VolunteerError("already_booked")
            if booking.status is not BookingStatus.OFFERED or (booking.offered_until and now >= booking.offered_until):
                raise VolunteerError("offer_gone")
            check_no_clash(shift, await uow.volunteers.booked_shifts(resident.id, now))
            await uow.volunteers.move(booking.id, [BookingStatus.OFFERED], status=BookingStatus.BOOKED,
                                      offered_until=None, updated_at=now)  # fmt: skip
            await self.schedule_reminders(uow, resident, shift, booking, now)
            await uow.commit()
        return booking

    async def decline(self, telegram_id: int, booking_id: int) -> Booking:
        now = self._clock()
        async with self._uow() as uow:
            _, shift, booking = await self._own(uow, telegram_id, booking_id)
            if booking.status is not BookingStatus.OFFERED:
                raise VolunteerError("offer_gone")
            await uow.volunteers.move(booking.id, [BookingStatus.OFFERED], status=BookingStatus.LAPSED,
                                      offered_until=None, updated_at=now)  # fmt: skip
            await queue_all(uow, await self._promote(uow, shift, now), now)
            await uow.commit()
        return booking

    async def _own(self, uow: UnitOfWork, telegram_id: int, booking_id: int) -> tuple[Resident, Shift, Booking]:
        """The sender's booking, with its shift locked (a forged id of someone else's booking is refused)."""
        resident = await member(uow, telegram_id)
        found = await uow.volunteers.booking(booking_id)
        if found is None:
            raise NotFound(what="booking")
        shift = await uow.volunteers.shift(found.shift_id, for_update=True)
        booking = await uow.volunteers.booking(booking_id)  # re-read under the lock
        if shift is None or booking is None:
            raise NotFound(what="booking")
        if booking.resident_id != resident.id:
            raise NotYours(what="booking")
        return resident, shift, booking

    async def _promote(self, uow: UnitOfWork, shift: Shift, now: datetime) -> list[Notice]:
        """Offer every free place to the next on the waitlist (the shift's lock is held); returns the offers."""
        notices: list[Notice] = []
        while True:
            bookings = await uow.volunteers.bookings(shift.id)
            chosen = next_in_line(shift, bookings, now)
            if chosen is None:
                return notices
            until = offer_until(shift, now, awake_from=await self._awake_from(uow, chosen.resident_id, now))
            await uow.volunteers.move(chosen.id, [BookingStatus.WAITING], status=BookingStatus.OFFERED,
                                      offered_until=until, updated_at=now)  # fmt: skip
            await uow.jobs.add(OFFER_EXPIRE, until, {"booking": chosen.id, "until": until.isoformat()},
                               f"{OFFER_EXPIRE}:{chosen.id}:{until.isoformat()}", now)  # fmt: skip
            person = await _person(uow, chosen.resident_id)
            if person is None or person.telegram_id is None:
                continue
            activity = await uow.volunteers.activity(shift.activity_id)
            zone = await self.zone_of(uow, activity)
            context = _shift_context(shift, activity, zone) | {"until": until.astimezone(zone)}
            choices = ((Choice("volunteers.btn.confirm", OFFER_CONFIRM, (chosen.id,)),
                        Choice("volunteers.btn.decline", OFFER_DECLINE, (chosen.id,))),)  # fmt: skip
            notices.append(Notice(person.telegram_id, "volunteers/offer", context, person.locale, choices=choices,
                                  key=f"voffer:{chosen.id}:{until.isoformat()}"))  # fmt: skip

    # ---- timers ------------------------------------------------------------------------------------------

    def register_jobs(self, runner: JobRunner) -> None:
        """Make the job runner run the volunteer timers (offers that lapse, reminders, the end of a shift)."""
        runner.register(OFFER_EXPIRE, self.offer_expired)
        runner.register(REMIND, self.remind)
        runner.register(SHIFT_END, self.shift_ended)

    async def offer_expired(self, job: Job, now: datetime) -> list[Notice]:
        """An offer not confirmed in time lapses and the next on the waitlist is asked."""
        async with self._uow() as uow:
            found = await uow.volunteers.booking(int(job.payload["booking"]))
            if found is None:
                return []
            shift = await uow.volunteers.shift(found.shift_id, for_update=True)
            booking = await uow.volunteers.booking(found.id)
            if shift is None or booking is None or booking.status is not BookingStatus.OFFERED:
                return []
            if booking.offered_until is None or booking.offered_until.isoformat() != job.payload["until"]:
                return []
            await uow.volunteers.move(booking.id, [BookingStatus.OFFERED], status=BookingStatus.LAPSED,
                                      offered_until=None, updated_at=now)  # fmt: skip
            notices = await self._promote(uow, shift, now)
            person = await _person(uow, booking.resident_id)
            if person is not None and person.telegram_id is not None:
                activity = await uow.volunteers.activity(shift.activity_id)
                context = _shift_context(shift, activity, await self.zone_of(uow, activity))
                notices.append(Notice(person.telegram_id, "volunteers/offer_lapsed", context, person.locale,
                                      key=f"vlapsed:{booking.id}"))  # fmt: skip
            await uow.commit()
        return notices

    async def remind(self, job: Job, now: datetime) -> list[Notice]:
        """Before the shift: the volunteer still booked on it (and the shift not moved) is reminded."""
        async with self._uow() as uow:
            booking = await uow.volunteers.booking(int(job.payload["booking"]))
            if booking is None or booking.status is not BookingStatus.BOOKED:
                return []
            shift = await uow.volunteers.shift(booking.shift_id)
            if shift is None or shift.status is not ShiftStatus.OPEN or now >= shift.starts_at:
                return []
            if shift.starts_at.isoformat() != job.payload["starts_at"]:
                return []  # the shift moved: its new reminders were scheduled with the change
            person = await _person(uow, booking.resident_id)
            activity = await uow.volunteers.activity(shift.activity_id)
            if person is None or person.telegram_id is None or activity is None:
                return []
            zone = await self.zone_of(uow, activity)
            context = _shift_context(shift, activity, zone) | {
                "hours_before": round((shift.starts_at - now).total_seconds() / 3600)
            }
            choices = ((Choice("volunteers.btn.cant_come", CANT_COME, (booking.id,)),
                        Choice("volunteers.btn.open_shift", OPEN_SHIFT, (shift.id,))),)  # fmt: skip
        return [Notice(person.telegram_id, "volunteers/reminder", context, person.locale, choices=choices,
                       key=f"vremind:{booking.id}:{job.payload['at']}")]  # fmt: skip

    async def shift_ended(self, job: Job, now: datetime) -> list[Notice]:
        """At the end of a shift: whoever checked in and not out is checked out at the end; the organiser is asked
        to approve the hours."""
        async with self._uow() as uow:
            shift = await uow.volunteers.shift(int(job.payload["shift"]), for_update=True)
            if (
                shift is None
                or shift.status is not ShiftStatus.OPEN
                or shift.ends_at.isoformat() != job.payload["ends_at"]
            ):
                return []
            served = 0  # volunteers whose hours now wait for the organiser
            for booking in await uow.volunteers.bookings(shift.id):
                if booking.status is not BookingStatus.BOOKED or booking.hours is not HoursStatus.PENDING:
                    continue
                served += 1
                if booking.checked_in_at is not None and booking.checked_out_at is None:
                    minutes = served_minutes(shift, booking.checked_in_at, None)
                    await uow.volunteers.move(booking.id, [BookingStatus.BOOKED], checked_out_at=shift.ends_at,
                                              minutes=minutes, updated_at=now)  # fmt: skip
            await uow.volunteers.update_shift(shift.id, code_chat_id=None)
            notices = []
            if served:
                approve = ((Choice("volunteers.btn.approve_hours", HOURS, (shift.id,)),),)
                notices = await self._tell_organisers(uow, shift, "volunteers/desk/shift_over", {"served": served},
                                                      key=f"vend:{shift.id}:{shift.ends_at.isoformat()}",
                                                      choices=approve)  # fmt: skip
            await uow.commit()
        return notices

    async def _awake_from(self, uow: UnitOfWork, resident_id: int, now: datetime) -> datetime | None:
        """The end of the resident's quiet hours when ``now`` is inside them (None otherwise)."""
        quiet = (await uow.campaigns.preferences(resident_id)).quiet
        resident = await uow.residents.get(resident_id)
        if quiet is None or resident is None:
            return None
        return quiet.release(now, await self._zone(uow, resident))

    async def schedule_reminders(
        self, uow: UnitOfWork, resident: Resident, shift: Shift, booking: Booking, now: datetime
    ) -> None:
        preferences = await uow.campaigns.preferences(resident.id)
        quiet = preferences.quiet
        zone = await self._zone(uow, resident)
        offset = int((shift.starts_at.astimezone(zone).utcoffset() or timedelta()).total_seconds() // 60)
        window = (quiet.start, quiet.end) if quiet is not None else None
        for at in reminder_times(shift, now, window, offset):
            payload = {"booking": booking.id, "starts_at": shift.starts_at.isoformat(), "at": at.isoformat()}
            await uow.jobs.add(REMIND, at, payload, f"{REMIND}:{booking.id}:{at.isoformat()}", now)

    # ---- check-in -----------------------------------------------------------------------------------------

    async def check_in(
        self, telegram_id: int, shift_id: int, *, code: str | None = None, where: GeoPoint | None = None
    ) -> Presence:
        """Check in with the code the organiser's chat shows (this minute's or the last), or by sharing one's
        location within reach of the place. A code of another shift, a wrong or expired one is refused."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            shift = await uow.volunteers.shift(shift_id, for_update=True)
            if shift is None:
                raise NotFound(what="shift")
            booking = _mine(await uow.volunteers.bookings(shift_id), resident.id)
            if booking is None or booking.status is not BookingStatus.BOOKED:
                raise VolunteerError("not_booked")
            if booking.checked_in_at is not None:
                raise VolunteerError(
                    "already_checked_in", at=booking.checked_in_at.astimezone(await self._zone(uow, resident))
                )
            if not shift.checkin_open(now):
                raise VolunteerError("checkin_closed")
            problem = await self._prove_presence(uow, resident, shift, booking, code, where, now)
            if problem is not None:
                await uow.commit()
                return Presence(None, problem)
            await uow.volunteers.move(booking.id, [BookingStatus.BOOKED], checked_in_at=now, hours=HoursStatus.PENDING,
                                      minutes=served_minutes(shift, now, None), updated_at=now)  # fmt: skip
            await uow.audit.add(
                now, telegram_id, "volunteer.check_in", True, {"shift": shift.id, "by": "code" if code else "location"}
            )
            await uow.commit()
            return Presence(await uow.volunteers.booking(booking.id) or booking)

    async def check_out(
        self, telegram_id: int, shift_id: int, *, code: str | None = None, where: GeoPoint | None = None
    ) -> Presence:
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            shift = await uow.volunteers.shift(shift_id, for_update=True)
            if shift is None:
                raise NotFound(what="shift")
            booking = _mine(await uow.volunteers.bookings(shift_id), resident.id)
            if booking is None or booking.checked_in_at is None:
                raise VolunteerError("not_checked_in")
            if booking.checked_out_at is not None or now >= shift.ends_at:
                raise VolunteerError("already_checked_out")
            if now < shift.starts_at:  # service time starts with the shift: nothing to close yet
                raise VolunteerError(
                    "checkout_before_start", start=shift.starts_at.astimezone(await self._zone(uow, resident))
                )
            problem = await self._prove_presence(uow, resident, shift, booking, code, where, now)
            if problem is not None:
                await uow.commit()
                return Presence(None, problem)
            minutes = served_minutes(shift, booking.checked_in_at, now)
            await uow.volunteers.move(booking.id, [BookingStatus.BOOKED], checked_out_at=now, minutes=minutes,
                                      updated_at=now)  # fmt: skip
            await uow.commit()
            return Presence(await uow.volunteers.booking(booking.id) or booking)

    async def _prove_presence(
        self,
        uow: UnitOfWork,
        resident: Resident,
        shift: Shift,
        booking: Booking,
        code: str | None,
        where: GeoPoint | None,
        now: datetime,
    ) -> VolunteerError | None:
        """None when the volunteer proved they are there; otherwise the problem (a wrong code is counted)."""
        if where is not None:
            activity = await uow.volunteers.activity(shift.activity_id)
            if activity is None or not activity.has_coordinates:
                raise VolunteerError("no_place_coordinates")
            assert activity.latitude is not None and activity.longitude is not None
            away = distance_m(where, GeoPoint(activity.latitude, activity.longitude))
            if away > CHECKIN_RADIUS_M:
                return VolunteerError("too_far_away", metres=round(away), radius=CHECKIN_RADIUS_M)
            return None
        if booking.code_failures >= CODE_ATTEMPTS:
            return VolunteerError("too_many_codes", attempts=CODE_ATTEMPTS, contact=await self._contact(uow, shift))
        if code is not None and code_matches(shift.secret, shift.id, code, now):
            return None
        # A wrong code counts (a guesser gets a few tries per shift); say so when it is another shift's code.
        await uow.volunteers.move(booking.id, [booking.status], code_failures=booking.code_failures + 1)
        other = await self._whose_code(uow, resident, shift, code or "", now)
        left = CODE_ATTEMPTS - booking.code_failures - 1
        if other is not None:
            return VolunteerError("code_other_shift", title=other.activity.title, left=left)
        return VolunteerError("code_wrong", left=left)

    async def _contact(self, uow: UnitOfWork, shift: Shift) -> str:
        activity = await uow.volunteers.activity(shift.activity_id)
        return activity.contact if activity else ""

    async def _whose_code(
        self, uow: UnitOfWork, resident: Resident, shift: Shift, typed: str, now: datetime
    ) -> ShiftView | None:
        assert resident.community_id is not None
        running = await uow.volunteers.views(resident.community_id, since=now, until=now + timedelta(hours=1))
        others = [v for v in running if v.shift.id != shift.id]
        return next((v for v in others if code_matches(v.shift.secret, v.shift.id, typed, now)), None)

    # ---- hours, stars, certificates ---------------------------------------------------------------------------

    async def hours(self, telegram_id: int) -> Hours:
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident)
            lines = await uow.volunteers.record(resident.id)
            _, stars = await uow.volunteers.settings(community.id)
            recent = await uow.volunteers.active_of(resident.id, now - timedelta(days=60))
            pending = sum(b.minutes or 0 for b, _ in recent if b.hours is HoursStatus.PENDING)
            upcoming = [(b, view) for b, view in recent if view.shift.ends_at > now]
        return Hours(Record(tuple(lines)), stars, pending, self.zone(community), community.name, upcoming)

    async def issue_certificate(
        self,
        telegram_id: int | None,
        resident_id: int | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        issued_by: int | None = None,
    ) -> Certificate:
        """Register a 志愿服务记录证明 of the approved service in the period (all of it by default)."""
        now = self._clock()
        async with self._uow() as uow:
            if telegram_id is not None:
                resident = await member(uow, telegram_id)
            else:
                assert resident_id is not None
                found = await uow.residents.get(resident_id)
                if found is None or found.community_id is None:
                    raise NotFound(what="resident")
                resident = found
            community = await _community(uow, resident)
            lines = await uow.volunteers.record(resident.id, since, until)
            if not lines:
                raise VolunteerError("no_hours")
            organisers = await uow.residents.with_role(Role.ORGANISER, community.id)
            contacts = [a.contact for a in await uow.volunteers.activities(community.id, now - timedelta(days=3650), 5)]
            contact = contacts[0] if contacts else (organisers[0].display_name or "") if organisers else ""
            cert = Certificate(
                number=f"pending-{secrets.token_hex(8)}",
                resident_id=resident.id,
                name=resident.display_name or str(resident.telegram_id),
                community=community.name,
                contact=contact,
                period_from=since or lines[0].starts_at,
                period_to=until or lines[-1].ends_at,
                minutes=sum(line.minutes for line in lines),
                services=tuple(dict.fromkeys(line.activity for line in lines)),
                issued_at=now,
                issued_by=issued_by if issued_by is not None else telegram_id,
                lines=tuple(lines),
                community_id=community.id,
            )
            row_id = await uow.volunteers.add_certificate(cert)
            suffix = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(4))
            number = certificate_number(now.astimezone(self.zone(community)).year, row_id, suffix)
            await uow.volunteers.set_certificate_number(row_id, number)
            await uow.audit.add(now, issued_by or telegram_id, "volunteer.certificate", True, {"number": number})
            await uow.commit()
        return replace(cert, number=number)

    async def certificate_file(self, cert: Certificate, locale: str) -> str:
        """The certificate as a PDF file to send (its local path), in ``locale`` with the dates of the issuing
        community's zone."""
        if self._documents is None:
            raise RuntimeError("no place to write certificate files was configured")
        async with self._uow() as uow:
            issuer = await uow.communities.get(cert.community_id) if cert.community_id is not None else None
        return await asyncio.to_thread(self._documents, cert, locale, self.zone(issuer))

    async def check_certificate(self, number: str) -> Certificate | None:
        async with self._uow() as uow:
            found = await uow.volunteers.certificate(normalise_number(number))
        return found[0] if found else None

    async def approve_minutes(
        self, uow: UnitOfWork, shift: Shift, booking: Booking, minutes: int, actor: int, reason: str | None
    ) -> list[Notice]:
        """Approve a booking's minutes (the shift is locked by the caller): points once (the key is per shift and
        volunteer), the star reached announced once. Returns the notices for the volunteer."""
        now = self._clock()
        moved = await uow.volunteers.move(
            booking.id, [BookingStatus.BOOKED], hours=HoursStatus.APPROVED, minutes=minutes, correction=reason,
            approved_at=now, approved_by=actor, updated_at=now,
        )  # fmt: skip
        if not moved:
            return []
        earned = points_for(minutes, shift.points_per_hour)
        key = f"shift:{shift.id}:{booking.resident_id}"  # once per shift and volunteer, whatever retries
        result = await self._points.award_in(uow, booking.resident_id, Reason.VOLUNTEER_HOURS, key,
                                             ref=f"shift:{shift.id}", units=earned, rate=1, actor=actor)  # fmt: skip
        person = await _person(uow, booking.resident_id)
        if person is None or person.telegram_id is None:
            return []
        activity = await uow.volunteers.activity(shift.activity_id)
        zone = await self.zone_of(uow, activity)
        total = sum(line.minutes for line in await uow.volunteers.record(booking.resident_id))
        assert activity is not None
        _, stars = await uow.volunteers.settings(activity.community_id)
        context = _shift_context(shift, activity, zone) | {
            "minutes": minutes, "points": result.credited, "capped": result.capped_by is not None,
            "reason": reason, "total_minutes": total, "stars": stars.level(total), "to_next": stars.to_next(total),
        }  # fmt: skip
        choices = ((Choice("volunteers.btn.my_hours", MY_HOURS, ()),),)
        notices = [Notice(person.telegram_id, "volunteers/hours_approved", context, person.locale, choices=choices,
                          key=f"vhours:{booking.id}")]  # fmt: skip
        level = stars.level(total)
        if level > 0 and await uow.volunteers.set_stars_announced(booking.resident_id, level):
            notices.append(Notice(person.telegram_id, "volunteers/star_reached",
                                  {"stars": level, "hours": stars.thresholds[level - 1]}, person.locale,
                                  key=f"vstar:{booking.resident_id}:{level}"))  # fmt: skip
        return notices

    # ---- helpers shared with the organisers' desk --------------------------------------------------------------

    async def _zone(self, uow: UnitOfWork, resident: Resident) -> ZoneInfo:
        community = await uow.communities.get(resident.community_id) if resident.community_id else None
        return self.zone(community)

    async def zone_of(self, uow: UnitOfWork, activity: Activity | None) -> ZoneInfo:
        community = await uow.communities.get(activity.community_id) if activity else None
        return self.zone(community)

    async def _tell_organisers(
        self,
        uow: UnitOfWork,
        shift: Shift,
        template: str,
        context: dict[str, object],
        *,
        key: str,
        choices: tuple[tuple[Choice, ...], ...] = (),
    ) -> list[Notice]:
        """The organiser who created the activity (or, when they no longer organise there, every organiser)."""
        activity = await uow.volunteers.activity(shift.activity_id)
        assert activity is not None
        zone = await self.zone_of(uow, activity)
        people = await uow.residents.with_role(Role.ORGANISER, activity.community_id)
        chosen = [p for p in people if p.telegram_id == activity.created_by] or people
        full = _shift_context(shift, activity, zone) | context
        return [Notice(p.telegram_id, template, full, p.locale, choices=choices, key=f"{key}:{p.id}")
                for p in chosen if p.telegram_id is not None]  # fmt: skip

    async def leave(self, telegram_id: int) -> int:
        """Before a resident's data is deleted: their places are freed and offered to whoever waits next (the
        deletion itself then forgets the profile). Returns how many places were freed."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            if resident is None:
                return 0
            freed = await uow.volunteers.withdraw(resident.id, now)
            for shift_id in freed:
                shift = await uow.volunteers.shift(shift_id, for_update=True)
                if shift is not None:
                    await queue_all(uow, await self._promote(uow, shift, now), now)
            await uow.commit()
        return len(freed)


def _shift_context(shift: Shift, activity: Activity | None, zone: ZoneInfo) -> dict[str, object]:
    """What notices say about a shift (local times)."""
    return {
        "shift_id": shift.id,
        "title": activity.title if activity else "",
        "place": activity.place if activity else "",
        "contact": activity.contact if activity else "",
        "start": shift.starts_at.astimezone(zone),
        "end": shift.ends_at.astimezone(zone),
    }


def shift_context(view: ShiftView, zone: ZoneInfo) -> dict[str, object]:
    """A shift card's context (lists, cards): times, places held and free, waiting, track."""
    shift, activity = view.shift, view.activity
    return _shift_context(shift, activity, zone) | {
        "track": activity.track,
        "description": activity.description,
        "note": shift.note,
        "capacity": shift.capacity,
        "booked": view.booked,
        "free": view.free,
        "waiting": view.waiting,
        "points_per_hour": shift.points_per_hour,
        "cutoff": shift.cutoff.astimezone(zone),
        "cancelled": shift.status is ShiftStatus.CANCELLED,
        "activity_id": activity.id,
        "latitude": activity.latitude,
        "longitude": activity.longitude,
    }


async def _profile(uow: UnitOfWork, resident: Resident, now: datetime, *, store: bool = False) -> Profile | None:
    """The resident's volunteer registration; someone an administrator granted the volunteer role
    (``sicheng admin grant … volunteer``) counts as registered and approved (stored on first use with ``store``)."""
    profile = await uow.volunteers.profile(resident.id)
    if profile is not None or resident.community_id is None or not resident.has_role(Role.VOLUNTEER):
        return profile
    profile = Profile(resident.id, resident.community_id, ProfileStatus.APPROVED, created_at=now)
    if store:
        await uow.volunteers.save_profile(profile, now)
    return profile


async def _community(uow: UnitOfWork, resident: Resident) -> Community:
    assert resident.community_id is not None
    community = await uow.communities.get(resident.community_id)
    if community is None:
        raise NeedsConsent()
    return community


async def _view(uow: UnitOfWork, resident: Resident, shift_id: int) -> ShiftView:
    """A shift of the resident's own community (another community's id is "not found", not a leak)."""
    assert resident.community_id is not None
    views = await uow.volunteers.views(resident.community_id, shift_ids=[shift_id], open_only=False)
    if not views:
        raise NotFound(what="shift")
    return views[0]


async def _person(uow: UnitOfWork, resident_id: int) -> Person | None:
    resident = await uow.residents.get(resident_id)
    if resident is None:
        return None
    return Person(resident.id, resident.telegram_id, resident.display_name, resident.locale)


def _mine(bookings: Sequence[Booking], resident_id: int) -> Booking | None:
    """The resident's active booking of a shift, or their latest one."""
    own = [b for b in bookings if b.resident_id == resident_id]
    active = [b for b in own if b.status in (BookingStatus.BOOKED, BookingStatus.OFFERED, BookingStatus.WAITING)]
    return active[0] if active else (own[-1] if own else None)
