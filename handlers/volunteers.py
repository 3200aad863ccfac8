"""志愿服务 for volunteers: what volunteering here means and registering (招募), upcoming shifts by day and track,
a shift's card (book, the waitlist, cancel before the cut-off or "I can't come" after it, an offered place),
check-in and check-out with the organiser's code or a shared location, ``/myhours`` (hours per year, stars),
``/certificate`` and ``/checkcert``.

Every button carries ids only; the services decide what the sender may do with them (someone else's booking is
refused there). A shift's card shows only the buttons that apply now (``Card.can_*``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.conversation.context import Ctx
from bot.conversation.replies import (
    Action,
    AnswerCallback,
    Button,
    EditText,
    Keyboard,
    SendDocument,
    SendText,
    keyboard,
)
from bot.conversation.router import Handler, Needs, Router
from bot.domain.errors import NeedsConsent
from bot.domain.geo import GeoPoint
from bot.domain.points import mask_name
from bot.domain.volunteers import (
    ACTIVE,
    DEFAULT_POINTS_PER_HOUR,
    DETAILS_MAX,
    BookingStatus,
    Certificate,
    ProfileStatus,
    ShiftStatus,
    VolunteerError,
    clean,
    normalise_code,
    normalise_number,
)
from bot.services.volunteer_actions import (
    CANT_COME,
    MY_HOURS,
    OFFER_CONFIRM,
    OFFER_DECLINE,
    OPEN_ACTIVITY,
    OPEN_SHIFT,
)
from bot.services.volunteers import Card, Hours, shift_context
from handlers import menu, volunteer_desk

router = Router("vo")
REG = Needs.REGISTRATION
SKILLS, AVAILABILITY, PRESENCE = "vo.skills", "vo.avail", "vo.presence"
DAYS = ("all", "today", "tomorrow", "week")
TRACKS = ("all", "civilised", "sanitary", "garden", "food_safety", "general")
LIST_BUTTONS = 20  # shifts in a list that get a button of their own
HISTORY = 10  # lines of service history /myhours shows
# Answers to a check-in that end the dialog (typing another code would not help).
PRESENCE_FINAL = frozenset(
    {
        "not_booked",
        "already_checked_in",
        "checkin_closed",
        "not_checked_in",
        "already_checked_out",
        "too_many_codes",
        "checkout_before_start",
    }
)


def local_times(handler: Handler) -> Handler:
    """Refusals name times in UTC when the rule that refused is pure (the cut-off, a clashing shift): say them in
    the community's time."""

    @functools.wraps(handler)
    async def wrapped(ctx: Ctx) -> Sequence[Action]:
        try:
            return await handler(ctx)
        except VolunteerError as error:
            raise await _localised(ctx, error) from error

    return wrapped


# ---- the menu entry and registering ---------------------------------------------------------------------------


@router.command("volunteer", needs=REG, private_only=True, in_menu=True)
async def volunteer(ctx: Ctx) -> Sequence[Action]:
    return [await _home(ctx)]


@menu.feature("volunteer", needs=REG)
async def from_menu(ctx: Ctx) -> Sequence[Action]:
    return [AnswerCallback(), await _home(ctx)]


@router.callback("home", needs=REG)
async def home(ctx: Ctx) -> Sequence[Action]:
    await _leave_dialog(ctx)
    return [await _home(ctx, edit=True)]


@router.callback("reg", needs=REG)
async def register(ctx: Ctx) -> Sequence[Action]:
    """Registering (or changing one's details): what the optional details are for, before anything is asked."""
    return [await _consent(ctx)]


async def _consent(ctx: Ctx, *, for_shift: bool = False) -> Action:
    """The registration screen; ``for_shift``: a resident who is not a volunteer yet tapped "book" on a shift."""
    standing = await ctx.services.volunteers.standing(ctx.user_id)
    if standing.profile is not None and standing.profile.status is ProfileStatus.SUSPENDED:
        raise VolunteerError("suspended")
    editing = standing.profile is not None
    rows = [[Button("volunteers.btn.fill_details", data=router.data("details"))]]
    if not editing:
        rows.append([Button("volunteers.btn.register_now", data=router.data("regnow"))])
    rows.append([Button("volunteers.btn.back", data=router.data("home"))])
    context = {"approval": standing.approval_required, "editing": editing, "limit": DETAILS_MAX,
               "for_shift": for_shift}  # fmt: skip
    return EditText("volunteers/consent", context, buttons=keyboard(*rows))


@router.callback("details", needs=REG)
async def details(ctx: Ctx) -> Sequence[Action]:
    standing = await ctx.services.volunteers.standing(ctx.user_id)
    await ctx.set_state(SKILLS, editing=standing.profile is not None)
    skip = keyboard([Button("volunteers.btn.skip", data=router.data("skipsk"))])
    return [EditText("volunteers/ask_skills", {"limit": DETAILS_MAX}, buttons=skip)]


@router.step(SKILLS, needs=REG)
async def skills_typed(ctx: Ctx) -> Sequence[Action]:
    if ctx.incoming.text is None:
        skip = keyboard([Button("volunteers.btn.skip", data=router.data("skipsk"))])
        return [SendText("volunteers/ask_skills", {"limit": DETAILS_MAX}, buttons=skip)]
    skills = clean(ctx.incoming.text, DETAILS_MAX, required=False)
    return [await _ask_availability(ctx, skills, edit=False)]


@router.callback("skipsk", needs=REG)
async def skip_skills(ctx: Ctx) -> Sequence[Action]:
    if ctx.state is None or ctx.state.name != SKILLS:
        return [AnswerCallback("errors/stale_button", alert=True)]
    return [await _ask_availability(ctx, "", edit=True)]


@router.step(AVAILABILITY, needs=REG)
async def availability_typed(ctx: Ctx) -> Sequence[Action]:
    if ctx.incoming.text is None:
        return [await _ask_availability(ctx, str(ctx.data.get("skills", "")), edit=False)]
    availability = clean(ctx.incoming.text, DETAILS_MAX, required=False)
    return await _register(ctx, str(ctx.data.get("skills", "")), availability)


@router.callback("skipav", needs=REG)
async def skip_availability(ctx: Ctx) -> Sequence[Action]:
    if ctx.state is None or ctx.state.name != AVAILABILITY:
        return [AnswerCallback("errors/stale_button", alert=True)]
    return await _register(ctx, str(ctx.data.get("skills", "")), "")


@router.callback("regnow", needs=REG)
async def register_now(ctx: Ctx) -> Sequence[Action]:
    """Register without the optional details."""
    return await _register(ctx, "", "")


async def _ask_availability(ctx: Ctx, skills: str, *, edit: bool) -> Action:
    await ctx.set_state(AVAILABILITY, **ctx.data | {"skills": skills})
    skip = keyboard([Button("volunteers.btn.skip", data=router.data("skipav"))])
    return (EditText if edit else SendText)("volunteers/ask_availability", {"limit": DETAILS_MAX}, buttons=skip)


async def _register(ctx: Ctx, skills: str, availability: str) -> list[Action]:
    editing = bool(ctx.data.get("editing"))
    profile = await ctx.services.volunteers.register(ctx.user_id, skills, availability)
    await ctx.clear_state()
    context = {"status": profile.status.value, "skills": profile.skills, "availability": profile.availability,
               "editing": editing}  # fmt: skip
    buttons = _home_buttons(profile.status)
    return [(SendText if ctx.incoming.callback_id is None else EditText)("volunteers/registered", context,
                                                                          buttons=buttons)]  # fmt: skip


async def _home(ctx: Ctx, *, edit: bool = False) -> Action:
    """Not yet a volunteer: what volunteering here means, and the button to register. A volunteer: their menu."""
    standing = await ctx.services.volunteers.standing(ctx.user_id)
    make = EditText if edit else SendText
    profile = standing.profile
    # An organiser is a resident too (and may volunteer), but comes here to manage the activities as well.
    manage: Keyboard = ()
    if await ctx.services.volunteer_desk.is_organiser(ctx.user_id):
        manage = keyboard([Button("volunteers.btn.manage", data=volunteer_desk.router.data("list"))])
    if profile is None:
        stars = (await ctx.services.volunteers.hours(ctx.user_id)).stars
        context = {"community": standing.community, "approval": standing.approval_required,
                   "points_per_hour": DEFAULT_POINTS_PER_HOUR, "stars": list(stars.thresholds)}  # fmt: skip
        rows = [[Button("volunteers.btn.register", data=router.data("reg"))],
                [Button("volunteers.btn.browse", data=router.data("browse", "all", "all"))]]  # fmt: skip
        return make("volunteers/intro", context, buttons=keyboard(*rows) + manage)
    context = {"community": standing.community, "status": profile.status.value, "skills": profile.skills,
               "availability": profile.availability}  # fmt: skip
    return make("volunteers/home", context, buttons=_home_buttons(profile.status) + manage)


def _home_buttons(status: ProfileStatus) -> Keyboard:
    if status is ProfileStatus.SUSPENDED:
        return ()
    browse = Button("volunteers.btn.browse", data=router.data("browse", "all", "all"))
    edit = Button("volunteers.btn.edit_details", data=router.data("reg"))
    if status is ProfileStatus.PENDING:
        return keyboard([browse], [edit])
    return keyboard(
        [browse, Button("volunteers.btn.mine", data=router.data("mine"))],
        [Button("volunteers.btn.my_hours", data=router.encode_ref(MY_HOURS)),
         Button("volunteers.btn.certificate", data=router.data("cert"))],
        [edit],
    )  # fmt: skip


# ---- shifts ------------------------------------------------------------------------------------------------------


@router.callback("browse", str, str, needs=REG)
async def browse(ctx: Ctx) -> Sequence[Action]:
    """Upcoming shifts, by day (today, tomorrow, this week, the next two weeks) and track."""
    day, track = str(ctx.args[0]), str(ctx.args[1])
    if day not in DAYS or track not in TRACKS:
        return [AnswerCallback("errors/stale_button", alert=True)]
    zone = await _zone(ctx)
    today = ctx.services.volunteers.now().astimezone(zone).date()
    chosen = {"today": today, "tomorrow": today + timedelta(days=1)}.get(day)
    cards = await ctx.services.volunteers.browse(ctx.user_id, chosen, None if track == "all" else track)
    if day == "week":
        sunday = today + timedelta(days=6 - today.weekday())
        cards = [c for c in cards if c.view.shift.starts_at.astimezone(zone).date() <= sunday]
    items = [_list_item(c) for c in cards]
    rows = [[_shift_button(c)] for c in cards[:LIST_BUTTONS]]
    days = [_filter("day", d, d == day, d, track) for d in DAYS]
    tracks = [_filter("track", t, t == track, day, t) for t in TRACKS]
    # Two days a row: four in one were clipped on narrow phones ("✅ 两…").
    rows += [days[:2], days[2:], tracks[:3], tracks[3:], [Button("volunteers.btn.back", data=router.data("home"))]]
    context = {"items": items, "day": day, "track": track, "date": chosen, "more": max(0, len(cards) - LIST_BUTTONS)}
    return [EditText("volunteers/browse", context, buttons=keyboard(*rows))]


def _filter(kind: str, value: str, on: bool, day: str, track: str) -> Button:
    return Button(
        f"volunteers.btn.{kind}", data=router.data("browse", day, track), label_context={kind: value, "on": on}
    )


@router.action(OPEN_SHIFT, needs=REG)
@local_times
async def open_shift(ctx: Ctx) -> Sequence[Action]:
    """A shift's card as a new message (from a list, a reminder or a change notice)."""
    card = await ctx.services.volunteers.card(ctx.user_id, int(ctx.args[0]))
    return [_card(card, edit=False)]


@router.callback("card", int, needs=REG)
@local_times
async def show_card(ctx: Ctx) -> Sequence[Action]:
    """Back to the card on the same message (after "keep my place")."""
    card = await ctx.services.volunteers.card(ctx.user_id, int(ctx.args[0]))
    return [_card(card)]


@router.action(OPEN_ACTIVITY, needs=REG)
async def open_activity(ctx: Ctx) -> Sequence[Action]:
    """An activity with its upcoming shifts (a notice's button opens it)."""
    activity, cards = await ctx.services.volunteers.activity(ctx.user_id, int(ctx.args[0]))
    context = {"title": activity.title, "description": activity.description, "place": activity.place,
               "contact": activity.contact, "track": activity.track, "items": [_list_item(c) for c in cards],
               "cancelled": activity.cancelled_at is not None}  # fmt: skip
    rows = [[_shift_button(c)] for c in cards[:LIST_BUTTONS]]
    return [SendText("volunteers/activity", context, buttons=keyboard(*rows))]


@router.callback("mine", needs=REG)
async def mine(ctx: Ctx) -> Sequence[Action]:
    """My places on shifts not over yet: booked, offered, waiting (with the position)."""
    cards = await ctx.services.volunteers.mine(ctx.user_id)
    items = [_list_item(c) for c in cards]
    rows = [[_shift_button(c)] for c in cards[:LIST_BUTTONS]]
    if not cards:  # the text points to the upcoming shifts: the button is right here, not one screen back
        rows.append([Button("volunteers.btn.browse", data=router.data("browse", "all", "all"))])
    rows.append([Button("volunteers.btn.back", data=router.data("home"))])
    return [EditText("volunteers/mine", {"items": items}, buttons=keyboard(*rows))]


# ---- booking -----------------------------------------------------------------------------------------------------


@router.callback("book", int, needs=REG)
@local_times
async def book(ctx: Ctx) -> Sequence[Action]:
    """A place; when the shift is full, say so and offer the waitlist with the position it would give."""
    shift_id = int(ctx.args[0])
    try:
        await ctx.services.volunteers.book(ctx.user_id, shift_id, waitlist=False)
    except VolunteerError as error:
        if error.code == "not_volunteer":
            return [await _consent(ctx, for_shift=True)]
        if error.code != "full":
            raise
        card = await ctx.services.volunteers.card(ctx.user_id, shift_id)
        position = card.view.waiting + 1
        context = shift_context(card.view, card.zone) | {"position": position}
        rows = [[Button("volunteers.btn.join_waitlist", data=router.data("wait", shift_id),
                        label_context={"position": position})],
                [Button("volunteers.btn.back", data=router.data("card", shift_id))]]  # fmt: skip
        return [EditText("volunteers/full", context, buttons=keyboard(*rows))]
    card = await ctx.services.volunteers.card(ctx.user_id, shift_id)
    return [_card(card, "booked")]


@router.callback("wait", int, needs=REG)
@local_times
async def join_waitlist(ctx: Ctx) -> Sequence[Action]:
    shift_id = int(ctx.args[0])
    try:
        result = await ctx.services.volunteers.book(ctx.user_id, shift_id, waitlist=True)
    except VolunteerError as error:
        if error.code == "not_volunteer":
            return [await _consent(ctx, for_shift=True)]
        raise
    card = await ctx.services.volunteers.card(ctx.user_id, shift_id)
    return [_card(card, "booked" if result.position == 0 else "waiting")]


@router.callback("cancel", int, needs=REG)
@local_times
async def cancel(ctx: Ctx) -> Sequence[Action]:
    """Step back: asked to confirm before the cut-off; after it, refused with "I can't come" instead."""
    card = await ctx.services.volunteers.card(ctx.user_id, int(ctx.args[0]))
    booking = card.mine
    if booking is None or booking.status not in ACTIVE:
        raise VolunteerError("not_active")
    if not card.can_cancel:
        if booking.status is not BookingStatus.BOOKED:
            raise VolunteerError("started")  # waiting and offered volunteers may step back until the start
        cutoff = card.view.shift.cutoff.astimezone(card.zone)
        return [_past_cutoff(VolunteerError("cancel_past_cutoff", cutoff=cutoff, booking=booking.id), card)]
    context = shift_context(card.view, card.zone) | {"status": booking.status.value}
    rows = [[Button("volunteers.btn.confirm_cancel", data=router.data("cxl", booking.id))],
            [Button("volunteers.btn.keep", data=router.data("card", card.view.shift.id))]]  # fmt: skip
    return [EditText("volunteers/confirm_cancel", context, buttons=keyboard(*rows))]


@router.callback("cxl", int, needs=REG)
@local_times
async def cancel_confirmed(ctx: Ctx) -> Sequence[Action]:
    try:
        booking = await ctx.services.volunteers.cancel(ctx.user_id, int(ctx.args[0]))
    except VolunteerError as error:
        if error.code != "cancel_past_cutoff":
            raise
        return [_past_cutoff(error, None)]
    card = await ctx.services.volunteers.card(ctx.user_id, booking.shift_id)
    return [_card(card, "cancelled_waiting" if booking.status is BookingStatus.WAITING else "cancelled")]


@router.action(CANT_COME, needs=REG)
@local_times
async def cant_come(ctx: Ctx) -> Sequence[Action]:
    """我去不了 (a reminder's button): asked once more, since the place goes to the waitlist at once."""
    card = await ctx.services.volunteers.booking_card(ctx.user_id, int(ctx.args[0]))
    booking = card.mine
    if booking is None or booking.id != int(ctx.args[0]) or booking.status not in ACTIVE:
        raise VolunteerError("not_active")
    late = booking.status is BookingStatus.BOOKED and card.now >= card.view.shift.cutoff
    context = shift_context(card.view, card.zone) | {"status": "cant_come", "late": late}
    rows = [[Button("volunteers.btn.cant_come_sure", data=router.data("cantok", booking.id))],
            [Button("volunteers.btn.keep", data=router.data("card", card.view.shift.id))]]  # fmt: skip
    return [EditText("volunteers/confirm_cancel", context, buttons=keyboard(*rows))]


@router.callback("cantok", int, needs=REG)
@local_times
async def cant_come_confirmed(ctx: Ctx) -> Sequence[Action]:
    """The place is freed and offered on; the organiser is told when it is after the cut-off."""
    booking = await ctx.services.volunteers.cant_come(ctx.user_id, int(ctx.args[0]))
    card = await ctx.services.volunteers.card(ctx.user_id, booking.shift_id)
    late = card.mine is not None and card.mine.late
    return [_card(card, "cant_come_late" if late else "cant_come")]


@router.action(OFFER_CONFIRM, needs=REG)
@local_times
async def confirm_offer(ctx: Ctx) -> Sequence[Action]:
    booking = await ctx.services.volunteers.confirm(ctx.user_id, int(ctx.args[0]))
    card = await ctx.services.volunteers.card(ctx.user_id, booking.shift_id)
    return [_card(card, "confirmed")]


@router.action(OFFER_DECLINE, needs=REG)
@local_times
async def decline_offer(ctx: Ctx) -> Sequence[Action]:
    booking = await ctx.services.volunteers.decline(ctx.user_id, int(ctx.args[0]))
    card = await ctx.services.volunteers.card(ctx.user_id, booking.shift_id)
    return [_card(card, "declined")]


def _past_cutoff(error: VolunteerError, card: Card | None) -> Action:
    booking = int(error.context["booking"])
    # This screen already says what "I can't come" does: its button acts at once.
    rows = [[Button("volunteers.btn.cant_come", data=router.data("cantok", booking))]]
    if card is not None:
        rows.append([Button("volunteers.btn.keep", data=router.data("card", card.view.shift.id))])
    return EditText("volunteers/problem", error.context, buttons=keyboard(*rows))


# ---- check-in and check-out --------------------------------------------------------------------------------------


@router.callback("in", int, needs=REG)
@local_times
async def check_in(ctx: Ctx) -> Sequence[Action]:
    return await _ask_presence(ctx, int(ctx.args[0]), "in")


@router.callback("out", int, needs=REG)
@local_times
async def check_out(ctx: Ctx) -> Sequence[Action]:
    return await _ask_presence(ctx, int(ctx.args[0]), "out")


async def _ask_presence(ctx: Ctx, shift_id: int, mode: str) -> list[Action]:
    """Ask for the code the organiser shows (or a shared location, when the place has one)."""
    card = await ctx.services.volunteers.card(ctx.user_id, shift_id)
    booking = card.mine
    if mode == "in" and not card.can_check_in:
        if booking is None or booking.status is not BookingStatus.BOOKED:
            raise VolunteerError("not_booked")
        if booking.checked_in_at is not None:
            raise VolunteerError("already_checked_in", at=booking.checked_in_at.astimezone(card.zone))
        raise VolunteerError("checkin_closed")
    if mode == "out" and not card.can_check_out:
        if booking is None or booking.checked_in_at is None:
            raise VolunteerError("not_checked_in")
        if card.now < card.view.shift.starts_at and booking.checked_out_at is None:
            raise VolunteerError("checkout_before_start", start=card.view.shift.starts_at.astimezone(card.zone))
        raise VolunteerError("already_checked_out")
    await ctx.set_state(PRESENCE, shift=shift_id, mode=mode)
    return [_presence_prompt(card, mode)]


def _presence_prompt(card: Card, mode: str, *, again: bool = False) -> Action:
    has_location = card.view.activity.has_coordinates
    share = keyboard([Button("volunteers.btn.send_location", request_location=True)]) if has_location else ()
    context = shift_context(card.view, card.zone) | {"mode": mode, "has_location": has_location, "again": again}
    return SendText("volunteers/ask_code", context, reply_keyboard=share)


@router.step(PRESENCE, needs=REG)
@local_times
async def presence(ctx: Ctx) -> Sequence[Action]:
    """The typed code or the shared location. A wrong one is explained and the dialog stays (/cancel leaves)."""
    shift_id, mode = int(ctx.data["shift"]), str(ctx.data["mode"])
    volunteers = ctx.services.volunteers
    where, code = None, None
    if ctx.incoming.location is not None:
        where = GeoPoint(ctx.incoming.location.latitude, ctx.incoming.location.longitude)
    else:
        code = normalise_code(ctx.incoming.text or "")
        if not code:  # not even digits: ask again without counting an attempt
            return [_presence_prompt(await volunteers.card(ctx.user_id, shift_id), mode, again=True)]
    act = volunteers.check_in if mode == "in" else volunteers.check_out
    try:
        done = await act(ctx.user_id, shift_id, code=code, where=where)
    except VolunteerError as error:
        if error.code not in PRESENCE_FINAL:
            raise
        await ctx.clear_state()
        return [SendText("volunteers/problem", (await _localised(ctx, error)).context, remove_reply_keyboard=True)]
    if done.problem is not None:
        final = done.problem.code in PRESENCE_FINAL or done.problem.context.get("left") == 0
        if final:
            await ctx.clear_state()
        return [SendText("volunteers/problem", done.problem.context, remove_reply_keyboard=final)]
    await ctx.clear_state()
    card = await volunteers.card(ctx.user_id, shift_id)
    booking = done.booking
    at = (booking.checked_in_at if mode == "in" else booking.checked_out_at) if booking else None
    context = shift_context(card.view, card.zone) | {
        "mode": mode, "at": at.astimezone(card.zone) if at else None, "minutes": booking.minutes if booking else None,
    }  # fmt: skip
    return [SendText("volunteers/checked", context, remove_reply_keyboard=True), _card(card, edit=False)]


# ---- hours and certificates --------------------------------------------------------------------------------------


@router.command("myhours", needs=REG, private_only=True, in_menu=True)
async def my_hours_command(ctx: Ctx) -> Sequence[Action]:
    return [await _my_hours(ctx)]


@router.action(MY_HOURS, needs=REG)
async def my_hours(ctx: Ctx) -> Sequence[Action]:
    return [await _my_hours(ctx)]


async def _my_hours(ctx: Ctx) -> Action:
    """Approved hours overall and per year, stars and the way to the next, what waits for approval, what is booked
    and the latest lines of the record."""
    found: Hours = await ctx.services.volunteers.hours(ctx.user_id)
    zone = found.zone
    offset = ctx.services.volunteers.now().astimezone(zone).utcoffset() or timedelta()
    record, stars = found.record, found.stars
    level = found.level
    lines = list(reversed(record.lines))
    history = [{"title": line.activity, "track": line.track, "start": line.starts_at.astimezone(zone),
                "end": line.ends_at.astimezone(zone), "minutes": line.minutes} for line in lines[:HISTORY]]  # fmt: skip
    upcoming = [shift_context(view, zone) | {"status": booking.status.value}
                for booking, view in found.upcoming if view.shift.status is ShiftStatus.OPEN]  # fmt: skip
    context = {
        "community": found.community,
        "minutes": record.minutes,
        "years": [{"year": year, "minutes": minutes} for year, minutes in record.per_year(offset).items()],
        "stars": level,
        "top": len(stars.thresholds),
        "to_next": stars.to_next(record.minutes),
        "next_hours": stars.thresholds[level] if level < len(stars.thresholds) else None,
        "pending_minutes": found.pending_minutes,
        "upcoming": upcoming,
        "history": history,
        "more": max(0, len(lines) - HISTORY),
    }
    rows = [[Button("volunteers.btn.browse", data=router.data("browse", "all", "all"))]]
    if record.minutes:
        rows.insert(0, [Button("volunteers.btn.certificate", data=router.data("cert"))])
    return SendText("volunteers/myhours", context, buttons=keyboard(*rows))


@router.command("certificate", needs=REG, private_only=True)
async def certificate_command(ctx: Ctx) -> Sequence[Action]:
    cert = await ctx.services.volunteers.issue_certificate(ctx.user_id)
    return await _certificate_reply(ctx, cert)


@router.callback("cert", needs=REG)
async def certificate(ctx: Ctx) -> Sequence[Action]:
    cert = await ctx.services.volunteers.issue_certificate(ctx.user_id)
    return [AnswerCallback(), *await _certificate_reply(ctx, cert)]


async def _certificate_reply(ctx: Ctx, cert: Certificate) -> list[Action]:
    """THE one place that answers an issued certificate (/certificate and the button): the number and a summary,
    then the PDF (志愿服务记录证明) in the reader's language, named by its number."""
    zone = await _zone(ctx)
    context = {
        "number": cert.number,
        "name": cert.name,
        "community": cert.community,
        "minutes": cert.minutes,
        "period_from": cert.period_from.astimezone(zone),
        "period_to": cert.period_to.astimezone(zone),
        "services": list(cert.services),
        "shifts": len(cert.lines),
        "issued_at": cert.issued_at.astimezone(zone),
    }
    path = await ctx.services.volunteers.certificate_file(cert, ctx.locale)
    pdf = SendDocument(path, f"{cert.number}.pdf", "volunteers/certificate_caption", {"number": cert.number})
    return [SendText("volunteers/certificate", context), pdf]


@router.command("checkcert")
async def check_certificate(ctx: Ctx) -> Sequence[Action]:
    """``/checkcert NUMBER``: anyone may check a certificate; the name is masked (王**)."""
    number = normalise_number(ctx.incoming.args)
    if not number:
        return [SendText("volunteers/checkcert", {"number": "", "found": False})]
    cert = await ctx.services.volunteers.check_certificate(number)
    if cert is None:
        return [SendText("volunteers/checkcert", {"number": number, "found": False})]
    zone = ctx.services.volunteers.zone(None)
    context = {
        "number": number,
        "found": True,
        "name": mask_name(cert.name),
        "minutes": cert.minutes,
        "community": cert.community,
        "period_from": cert.period_from.astimezone(zone).date(),
        "period_to": cert.period_to.astimezone(zone).date(),
        "issued_at": cert.issued_at.astimezone(zone).date(),
    }
    return [SendText("volunteers/checkcert", context)]


# ---- helpers -----------------------------------------------------------------------------------------------------


def _card(card: Card, outcome: str | None = None, *, edit: bool = True) -> Action:
    """A shift as this volunteer sees it, with only the buttons that apply now."""
    shift = card.view.shift
    booking = card.mine
    active = booking is not None and booking.status in ACTIVE
    closed = not active and shift.status is ShiftStatus.OPEN and card.now >= shift.cutoff
    context = shift_context(card.view, card.zone) | {"outcome": outcome, "me": _me(card), "closed": closed}
    rows: list[list[Button]] = []
    if card.can_book and card.view.free > 0:
        rows.append([Button("volunteers.btn.book", data=router.data("book", shift.id))])
    elif card.can_book:  # full: the waitlist is the offer, with the place in it (one tap, not two)
        position = card.view.waiting + 1
        rows.append([Button("volunteers.btn.join_waitlist", data=router.data("wait", shift.id),
                            label_context={"position": position})])  # fmt: skip
    if booking is not None and booking.status is BookingStatus.OFFERED:
        rows.append([Button("volunteers.btn.confirm", data=router.encode_ref(OFFER_CONFIRM, booking.id)),
                     Button("volunteers.btn.decline", data=router.encode_ref(OFFER_DECLINE, booking.id))])  # fmt: skip
    if card.can_check_in:
        rows.append([Button("volunteers.btn.check_in", data=router.data("in", shift.id))])
    if card.can_check_out:
        rows.append([Button("volunteers.btn.check_out", data=router.data("out", shift.id))])
    if (
        booking is not None
        and booking.status in (BookingStatus.BOOKED, BookingStatus.WAITING)
        and booking.checked_in_at is None
        and card.now < shift.starts_at
    ):
        label = "volunteers.btn.leave_waitlist" if booking.status is BookingStatus.WAITING else "volunteers.btn.cancel"
        rows.append([Button(label, data=router.data("cancel", shift.id))])
    rows.append([Button("volunteers.btn.all_shifts", data=router.data("browse", "all", "all"))])
    return (EditText if edit else SendText)("volunteers/card", context, buttons=keyboard(*rows))


def _me(card: Card) -> dict[str, Any] | None:
    booking = card.mine
    if booking is None:
        return None

    def local(moment: datetime | None) -> datetime | None:
        return moment.astimezone(card.zone) if moment else None

    return {
        "status": booking.status.value,
        "position": card.position,
        "offered_until": local(booking.offered_until),
        "checked_in_at": local(booking.checked_in_at),
        "checked_out_at": local(booking.checked_out_at),
        "hours": booking.hours.value,
        "minutes": booking.minutes,
        "late": booking.late,
    }


def _standing(card: Card) -> dict[str, Any]:
    """The volunteer's own place on the shift (booked, waiting, offered) if any, and whether booking has closed
    for them (past the cut-off, or the shift cancelled): a list must not offer free places nobody can take."""
    booking = card.mine
    status = booking.status.value if booking is not None and booking.status in ACTIVE else None
    return {"status": status, "closed": status is None and not card.can_book}


def _list_item(card: Card) -> dict[str, Any]:
    return shift_context(card.view, card.zone) | _standing(card) | {"position": card.position}


def _shift_button(card: Card) -> Button:
    start = card.view.shift.starts_at.astimezone(card.zone)
    context = {"title": card.view.activity.title, "start": start, "free": card.view.free} | _standing(card)
    return Button("volunteers.btn.shift_item", data=router.encode_ref(OPEN_SHIFT, card.view.shift.id),
                  label_context=context)  # fmt: skip


async def _zone(ctx: Ctx) -> ZoneInfo:
    resident = ctx.resident
    if resident is None or resident.community_id is None:
        raise NeedsConsent()
    return ctx.services.volunteers.zone(await ctx.services.communities.get(resident.community_id))


async def _localised(ctx: Ctx, error: VolunteerError) -> VolunteerError:
    """The same refusal with its times in the community's zone."""
    if not any(isinstance(v, datetime) for v in error.context.values()):
        return error
    zone = await _zone(ctx)
    context = {k: v.astimezone(zone) if isinstance(v, datetime) else v for k, v in error.context.items() if k != "code"}
    return VolunteerError(error.code, **context)


async def _leave_dialog(ctx: Ctx) -> None:
    if ctx.state is not None and ctx.state.name in (SKILLS, AVAILABILITY):
        await ctx.clear_state()
