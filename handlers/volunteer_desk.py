"""The organisers' volunteer desk (志愿服务 · 组织者), in private chat.

``/activities`` lists the community's upcoming shifts by activity; from there an organiser creates an activity
with its first shift (a dialog kept in the dialog state, so a restart resumes it; ``/cancel`` leaves), adds more
shifts (weekly ones too), opens a shift's roster and acts on it: the check-in code, a message to the volunteers,
no-shows, approving (or correcting) hours, moving the time or the place, cancelling. Applicants are approved or
refused here or from the notice that told the organisers. ``/stats volunteers`` shows participation against the
programme's 5% goal.

Every action goes through ``VolunteerDesk``, which re-reads the organiser's role for the community concerned and
audits refusals: a forged button of a resident gets the usual localised refusal. A value the organiser typed that
cannot be used is explained and asked again; the dialog goes on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, Keyboard, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.campaigns import TRACKS, CampaignError
from bot.domain.errors import NeedsConsent
from bot.domain.residents import Community
from bot.domain.volunteers import (
    CAPACITY_MAX,
    CONTACT_MAX,
    CUTOFF_MAX_HOURS,
    DEFAULT_CUTOFF_HOURS,
    DEFAULT_POINTS_PER_HOUR,
    DESCRIPTION_MAX,
    NOTE_MAX,
    PARTICIPATION_GOAL,
    PLACE_MAX,
    POINTS_PER_HOUR_MAX,
    REASON_MAX,
    REPEAT_MAX_WEEKS,
    TITLE_MAX,
    BookingStatus,
    HoursStatus,
    ShiftDraft,
    ShiftStatus,
    VolunteerError,
    clean,
    hours,
)
from bot.services.volunteer_actions import APPROVE_VOLUNTEER, HOURS, REFUSE_VOLUNTEER, ROSTER
from bot.services.volunteer_desk import Roster
from bot.services.volunteers import shift_context
from handlers.quiz_stats import stats_view

router = Router("vd")
T = "volunteers/desk/"
L = "volunteer_desk.btn."
TTL = 7 * 24 * 3600  # an unfinished activity may wait a few days for the organiser
GENERAL = "general"  # the track choice "no particular track"
ACTIVITY_STEPS = ("track", "title", "desc", "place", "loc", "contact")
SHIFT_STEPS = ("start", "end", "cap", "pts", "cut", "note", "rep", "sum")
STEPS = ACTIVITY_STEPS + SHIFT_STEPS
SKIPPABLE = ("desc", "loc", "note")
CHOICES = {"pts": (1, 2, 3, 4), "cut": (2, 12, 24), "rep": (1, 4, 8, 12)}
MOVE_START, MOVE_END = "vd.mvs", "vd.mve"
PLACE_TEXT, PLACE_WHERE = "vd.pls", "vd.pll"
MESSAGE = "vd.msg"
FIX_MINUTES, FIX_REASON = "vd.fixm", "vd.fixr"
LIST_SHIFTS = 24  # shift buttons on /activities (the list itself shows every shift)
DAYS_DEFAULT, DAYS_MAX = 30, 3660


class Unreadable(Exception):
    """A value typed in a dialog that cannot be read at all (not a time, not a number); ``code`` names it in
    ``volunteers/desk/problem``."""

    def __init__(self, code: str, **context: Any) -> None:
        super().__init__(code)
        self.context = {"code": code, **context}


# ---- /activities ---------------------------------------------------------------------------------------------------


@router.command("activities", needs=Needs.CONSENT, private_only=True)
async def activities_command(ctx: Ctx) -> Sequence[Action]:
    """The community's upcoming shifts by activity (refused, and audited, for anyone but an organiser)."""
    return [await _overview(ctx, edit=False)]


@router.callback("list", needs=Needs.CONSENT)
async def back_to_list(ctx: Ctx) -> Sequence[Action]:
    return [await _overview(ctx, edit=True)]


@router.callback("appr", int, needs=Needs.CONSENT)
async def set_approval(ctx: Ctx) -> Sequence[Action]:
    """Approval of new volunteers by an organiser: on or off."""
    await ctx.services.volunteer_desk.set_approval(ctx.user_id, bool(ctx.args[0]))
    return [await _overview(ctx, edit=True)]


async def _overview(ctx: Ctx, *, edit: bool) -> Action:
    desk = ctx.services.volunteer_desk
    zone, views = await desk.activities(ctx.user_id)
    approval, _ = await desk.settings(ctx.user_id)
    waiting = len(await desk.applicants(ctx.user_id))
    groups: dict[int, dict[str, Any]] = {}
    for view in views:
        activity = view.activity
        group = groups.setdefault(activity.id, {"id": activity.id, "title": activity.title, "track": activity.track,
                                                "place": activity.place, "shifts": []})  # fmt: skip
        group["shifts"].append(shift_context(view, zone))
    rows: list[list[Button]] = [[Button(L + "new", data=router.data("new"))]]
    shown = 0
    for group in groups.values():
        rows.append(
            [Button(L + "activity", data=router.data("act", group["id"]), label_context={"title": group["title"]})]
        )
        buttons = []
        for shift in group["shifts"]:
            if shown < LIST_SHIFTS:
                buttons.append(Button(L + "shift", data=router.data("roster", shift["shift_id"]),
                                      label_context=_when(shift)))  # fmt: skip
                shown += 1
        rows += [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if waiting:
        rows.append([Button(L + "applicants", data=router.data("apps"), label_context={"n": waiting})])
    rows.append(
        [Button(L + "approval", data=router.data("appr", 0 if approval else 1), label_context={"on": approval})]
    )
    context = {"groups": list(groups.values()), "approval": approval, "waiting": waiting, "zone": zone.key}
    return _say(edit, "activities", context, keyboard(*rows))


@router.callback("act", int, needs=Needs.CONSENT)
async def activity_card(ctx: Ctx) -> Sequence[Action]:
    """One activity: its shifts still to come and what can be done with it."""
    activity, views, zone = await ctx.services.volunteer_desk.activity(ctx.user_id, int(ctx.args[0]))
    shifts: list[dict[str, Any]] = [shift_context(v, zone) for v in views]
    rows = [[Button(L + "shift", data=router.data("roster", s["shift_id"]), label_context=_when(s))]
            for s in shifts[:LIST_SHIFTS]]  # fmt: skip
    if activity.cancelled_at is None:
        rows += [
            [Button(L + "add_shift", data=router.data("more", activity.id)),
             Button(L + "change_place", data=router.data("pl", activity.id))],
            [Button(L + "announce", data=router.data("ann", activity.id)),
             Button(L + "cancel_activity", data=router.data("ca", activity.id))],
        ]  # fmt: skip
    rows.append([Button(L + "back_list", data=router.data("list"))])
    context = {
        "activity": _activity_context(activity),
        "shifts": shifts,
        "cancelled": activity.cancelled_at is not None,
    }
    return [AnswerCallback(), SendText(T + "activity", context, buttons=keyboard(*rows))]


@router.callback("ann", int, needs=Needs.CONSENT)
async def announce(ctx: Ctx) -> Sequence[Action]:
    """Announcing is the notices feature's work: /notice offers a button that opens this activity."""
    activity, _, _ = await ctx.services.volunteer_desk.activity(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback(), SendText(T + "announce", {"title": activity.title})]


# ---- a new activity, and more shifts ---------------------------------------------------------------------------------


@router.callback("new", needs=Needs.CONSENT)
async def new_activity(ctx: Ctx) -> Sequence[Action]:
    await ctx.services.volunteer_desk.settings(ctx.user_id)  # organisers only (refusals are audited there)
    return [AnswerCallback(), *await _ask(ctx, "track", {})]


@router.callback("more", int, needs=Needs.CONSENT)
async def more_shifts(ctx: Ctx) -> Sequence[Action]:
    """Another shift (or weekly series) of an activity: the shift questions again."""
    activity, _, _ = await ctx.services.volunteer_desk.activity(ctx.user_id, int(ctx.args[0]))
    if activity.cancelled_at is not None:
        return [AnswerCallback(T + "gone", alert=True)]
    return [AnswerCallback(), *await _ask(ctx, "start", {"a": activity.id, "title": activity.title})]


@router.callback("trk", str, needs=Needs.CONSENT)
async def choose_track(ctx: Ctx) -> Sequence[Action]:
    data = _dialog(ctx, "track")
    value = str(ctx.args[0])
    if data is None or (value != GENERAL and value not in TRACKS):
        return _stale()
    data["track"] = None if value == GENERAL else value
    return [AnswerCallback(), *await _ask(ctx, "title", data)]


@router.callback("skip", str, needs=Needs.CONSENT)
async def skip(ctx: Ctx) -> Sequence[Action]:
    """Skip a question that may stay empty (description, location, note)."""
    step = str(ctx.args[0])
    data = _dialog(ctx, step)
    if data is None or step not in SKIPPABLE:
        return _stale()
    if step == "desc":
        data["desc"] = ""
    elif step == "note":
        data["note"] = ""
    return [AnswerCallback(), *await _ask(ctx, _next(step), data, drop_keyboard=step == "loc")]


@router.callback("num", str, int, needs=Needs.CONSENT)
async def choose_number(ctx: Ctx) -> Sequence[Action]:
    """A number chosen with a button (points per hour, cut-off hours, weeks)."""
    step, value = str(ctx.args[0]), int(ctx.args[1])
    data = _dialog(ctx, step)
    if data is None or step not in CHOICES:
        return _stale()
    return [AnswerCallback(), *await _take(ctx, step, data, value)]


@router.step("vd.track", needs=Needs.CONSENT)
@router.step("vd.title", needs=Needs.CONSENT)
@router.step("vd.desc", needs=Needs.CONSENT)
@router.step("vd.place", needs=Needs.CONSENT)
@router.step("vd.loc", needs=Needs.CONSENT)
@router.step("vd.contact", needs=Needs.CONSENT)
@router.step("vd.start", needs=Needs.CONSENT)
@router.step("vd.end", needs=Needs.CONSENT)
@router.step("vd.cap", needs=Needs.CONSENT)
@router.step("vd.pts", needs=Needs.CONSENT)
@router.step("vd.cut", needs=Needs.CONSENT)
@router.step("vd.note", needs=Needs.CONSENT)
@router.step("vd.rep", needs=Needs.CONSENT)
@router.step("vd.sum", needs=Needs.CONSENT)
async def typed(ctx: Ctx) -> Sequence[Action]:
    """What the organiser typed (or the location shared) for the current question."""
    assert ctx.state is not None
    step = ctx.state.name.removeprefix("vd.")
    data = dict(ctx.state.data)
    if step in ("track", "sum"):
        return await _ask(ctx, step, data)  # answered with the buttons
    if step == "loc":
        where = ctx.incoming.location
        if where is None:
            return [SendText(T + "problem", {"code": "need_location"}), *await _ask(ctx, step, data)]
        data |= {"lat": where.latitude, "lon": where.longitude}
        return await _ask(ctx, _next(step), data, drop_keyboard=True)
    return await _take(ctx, step, data, ctx.incoming.text or "")


async def _take(ctx: Ctx, step: str, data: dict[str, Any], value: str | int) -> list[Action]:
    """Read and check one answer; a bad one is explained and asked again (nothing is stored)."""
    try:
        data |= await _read(ctx, step, data, value)
    except VolunteerError as error:
        return [SendText(error.template, error.context), *await _ask(ctx, step, data)]
    except Unreadable as error:
        return [SendText(T + "problem", error.context), *await _ask(ctx, step, data)]
    return await _ask(ctx, _next(step), data)


async def _read(ctx: Ctx, step: str, data: dict[str, Any], value: str | int) -> dict[str, Any]:
    text = str(value)
    if step == "title":
        return {"title": clean(text, TITLE_MAX)}
    if step == "desc":
        return {"desc": clean(text, DESCRIPTION_MAX, required=False)}
    if step == "place":
        return {"place": clean(text, PLACE_MAX)}
    if step == "contact":
        return {"contact": clean(text, CONTACT_MAX)}
    if step == "note":
        return {"note": clean(text, NOTE_MAX, required=False)}
    if step == "start":
        start = await _read_start(ctx, text)
        _check(_draft(data, starts_at=start, ends_at=start + timedelta(hours=1)))
        return {"start": start.isoformat(), "end": None}
    if step == "end":
        start = _at(data["start"])
        end = read_end(text, start.astimezone(await _zone(ctx)))
        _check(_draft(data, ends_at=end))
        return {"end": end.isoformat()}
    field = {"cap": "capacity", "pts": "points_per_hour", "cut": "cutoff_hours", "rep": "repeat_weeks"}[step]
    number = value if isinstance(value, int) else read_number(text)
    _check(_draft(data, **{field: -1 if number is None else number}))  # not a number: the step's own refusal
    return {step: number}


async def _ask(ctx: Ctx, step: str, data: dict[str, Any], *, drop_keyboard: bool = False) -> list[Action]:
    """Keep the draft at ``step`` and ask its question (with the draft's summary at the end)."""
    await ctx.set_state(f"vd.{step}", ttl=TTL, **data)
    zone = await _zone(ctx)
    context = _draft_context(data, zone) | {
        "step": step,
        "zone": zone.key,
        "limits": {"title": TITLE_MAX, "desc": DESCRIPTION_MAX, "place": PLACE_MAX, "contact": CONTACT_MAX,
                   "note": NOTE_MAX, "cap": CAPACITY_MAX, "pts": POINTS_PER_HOUR_MAX, "cut": CUTOFF_MAX_HOURS,
                   "rep": REPEAT_MAX_WEEKS},
        "defaults": {"pts": DEFAULT_POINTS_PER_HOUR, "cut": DEFAULT_CUTOFF_HOURS},
    }  # fmt: skip
    rows: list[list[Button]] = []
    if step == "track":
        buttons = [
            Button(L + "track", data=router.data("trk", t), label_context={"track": t}) for t in (*TRACKS, GENERAL)
        ]
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    elif step in ("desc", "note"):
        rows = [[Button(L + "skip", data=router.data("skip", step))]]
    elif step in CHOICES:
        rows = [[Button(L + step, data=router.data("num", step, n), label_context={"n": n, "default": _default(step)})
                 for n in CHOICES[step]]]  # fmt: skip
    elif step == "sum":
        rows = [[Button(L + "create", data=router.data("mk"))], [Button(L + "discard", data=router.data("drop"))]]
    if step == "loc":
        share = keyboard([Button(L + "share_location", request_location=True)])
        skip_button = keyboard([Button(L + "skip", data=router.data("skip", "loc"))])
        return [
            SendText(T + "ask", context, reply_keyboard=share),
            SendText(T + "ask_skip_location", buttons=skip_button),
        ]
    return [SendText(T + "ask", context, buttons=keyboard(*rows), remove_reply_keyboard=drop_keyboard and not rows)]


@router.callback("mk", needs=Needs.CONSENT)
async def create(ctx: Ctx) -> Sequence[Action]:
    """Create the activity (when new) and its shift(s); a shift that can no longer be (its time has passed since)
    is explained and its start asked again, the activity kept."""
    data = _dialog(ctx, "sum")
    if data is None:
        return _stale()
    desk = ctx.services.volunteer_desk
    if "a" not in data:
        activity = await desk.create_activity(
            ctx.user_id, title=data["title"], description=data.get("desc") or "", place=data["place"],
            contact=data["contact"], track=data.get("track"), latitude=data.get("lat"), longitude=data.get("lon"),
        )  # fmt: skip
        data["a"] = activity.id
        await ctx.set_state("vd.sum", ttl=TTL, **data)
    try:
        shifts = await desk.add_shifts(ctx.user_id, int(data["a"]), _draft(data))
    except VolunteerError as error:
        return [AnswerCallback(), SendText(error.template, error.context), *await _ask(ctx, "start", data)]
    await ctx.clear_state()
    zone = await _zone(ctx)
    context = {
        "title": data["title"],
        "new": "place" in data,
        "shifts": [{"start": s.starts_at.astimezone(zone), "end": s.ends_at.astimezone(zone)} for s in shifts],
    }
    rows = [
        [Button(L + "add_another", data=router.data("more", int(data["a"])))],
        [Button(L + "roster", data=router.data("roster", shifts[0].id)),
         Button(L + "announce", data=router.data("ann", int(data["a"])))],
        [Button(L + "back_list", data=router.data("list"))],
    ]  # fmt: skip
    return [EditText(T + "created", context, buttons=keyboard(*rows))]


@router.callback("drop", needs=Needs.CONSENT)
async def discard(ctx: Ctx) -> Sequence[Action]:
    if _dialog(ctx, "sum") is None:
        return _stale()
    await ctx.clear_state()
    return [EditText(T + "discarded")]


# ---- a shift's roster and what an organiser does with it -------------------------------------------------------------


@router.action(ROSTER, needs=Needs.CONSENT)
async def roster(ctx: Ctx) -> Sequence[Action]:
    """A shift's roster (from /activities or a notice), as a new message."""
    found = await ctx.services.volunteer_desk.roster(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback(), _roster(found, edit=False)]


@router.callback("rv", int, needs=Needs.CONSENT)
async def roster_again(ctx: Ctx) -> Sequence[Action]:
    found = await ctx.services.volunteer_desk.roster(ctx.user_id, int(ctx.args[0]))
    return [_roster(found, edit=True)]


def _roster(found: Roster, *, edit: bool, note: str | None = None) -> Action:
    shift, activity = found.view.shift, found.view.activity
    started, over = found.now >= shift.starts_at, found.now >= shift.ends_at
    cancelled = shift.status is ShiftStatus.CANCELLED
    context = _roster_context(found) | {"note": note}
    sid = shift.id
    rows: list[list[Button]] = []
    if not cancelled and not over:
        rows.append(
            [Button(L + "code", data=router.data("code", sid)), Button(L + "message", data=router.data("msg", sid))]
        )
    for booking, person in found.having(BookingStatus.BOOKED):
        if started and not cancelled and booking.checked_in_at is None:
            label = _who(person.name, person.resident_id)
            rows.append([Button(L + "no_show", data=router.data("ns", sid, booking.id), label_context=label)])
    if started and any(b.hours is not HoursStatus.NONE for b, _ in found.having(BookingStatus.BOOKED)):
        rows.append([Button(L + "hours", data=router.data("hrs", sid), label_context={"n": len(found.pending_hours)})])
    if not cancelled and not started:
        rows.append([Button(L + "move", data=router.data("mv", sid)),
                     Button(L + "change_place", data=router.data("pl", activity.id))])  # fmt: skip
    if not cancelled and not over:
        rows.append([Button(L + "cancel_shift", data=router.data("cs", sid))])
    rows.append([Button(L + "refresh", data=router.data("rv", sid)),
                 Button(L + "open_activity", data=router.data("act", activity.id))])  # fmt: skip
    return _say(edit, "roster", context, keyboard(*rows))


def _roster_context(found: Roster) -> dict[str, Any]:
    zone = found.zone

    def local(moment: datetime | None) -> datetime | None:
        return moment.astimezone(zone) if moment is not None else None

    def people(status: BookingStatus) -> list[dict[str, Any]]:
        return [{"id": b.id, **_who(p.name, p.resident_id), "building": p.building,
                 "checked_in": local(b.checked_in_at), "checked_out": local(b.checked_out_at),
                 "until": local(b.offered_until), "minutes": b.minutes, "hours": b.hours.value,
                 "correction": b.correction} for b, p in found.having(status)]  # fmt: skip

    shift = found.view.shift
    late = [_who(p.name, p.resident_id) for b, p in found.having(BookingStatus.CANCELLED) if b.late]
    return shift_context(found.view, zone) | {
        "booked_people": people(BookingStatus.BOOKED),
        "offered_people": people(BookingStatus.OFFERED),
        "waiting_people": people(BookingStatus.WAITING),
        "no_shows": people(BookingStatus.NO_SHOW),
        "late": late,
        "started": found.now >= shift.starts_at,
        "over": found.now >= shift.ends_at,
        "pending": len(found.pending_hours),
    }


@router.callback("code", int, needs=Needs.CONSENT)
async def show_code(ctx: Ctx) -> Sequence[Action]:
    """The rotating check-in code is posted in this chat (and changes every minute); the tap is only answered."""
    shown = await ctx.services.volunteer_desk.show_code(ctx.user_id, int(ctx.args[0]), ctx.chat_id)
    return [AnswerCallback(T + "code_started", {"until": shown.valid_until})]


@router.callback("ns", int, int, needs=Needs.CONSENT)
async def no_show(ctx: Ctx) -> Sequence[Action]:
    desk = ctx.services.volunteer_desk
    await desk.no_show(ctx.user_id, int(ctx.args[1]))
    return [_roster(await desk.roster(ctx.user_id, int(ctx.args[0])), edit=True, note="no_show")]


@router.callback("msg", int, needs=Needs.CONSENT)
async def message(ctx: Ctx) -> Sequence[Action]:
    found = await ctx.services.volunteer_desk.roster(ctx.user_id, int(ctx.args[0]))
    await ctx.set_state(MESSAGE, ttl=TTL, shift=found.view.shift.id)
    context = shift_context(found.view, found.zone) | {"step": "message"}
    return [AnswerCallback(), SendText(T + "ask_change", context)]


@router.step(MESSAGE, needs=Needs.CONSENT)
async def message_text(ctx: Ctx) -> Sequence[Action]:
    shift_id = int(ctx.data["shift"])
    try:
        sent = await ctx.services.volunteer_desk.message(ctx.user_id, shift_id, ctx.incoming.text or "")
    except VolunteerError as error:
        return [SendText(error.template, error.context)]
    await ctx.clear_state()
    back = keyboard([Button(L + "back_roster", data=router.data("roster", shift_id))])
    return [SendText(T + "sent", {"count": sent}, buttons=back)]


# ---- hours ---------------------------------------------------------------------------------------------------------


@router.action(HOURS, needs=Needs.CONSENT)
async def hours_view(ctx: Ctx) -> Sequence[Action]:
    """The hours waiting for approval on a shift (from the roster, or the notice at the end of the shift)."""
    found = await ctx.services.volunteer_desk.roster(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback(), _hours(found, edit=False)]


def _hours(found: Roster, *, edit: bool) -> Action:
    sid = found.view.shift.id
    context = _roster_context(found)
    context["approved"] = [p for p in context["booked_people"] if p["hours"] == HoursStatus.APPROVED.value]
    context["waiting_approval"] = [p for p in context["booked_people"] if p["hours"] == HoursStatus.PENDING.value]
    rows: list[list[Button]] = []
    if context["waiting_approval"]:
        rows.append([Button(L + "approve_all", data=router.data("hall", sid), label_context={"n": context["pending"]})])
        rows += [[Button(L + "correct", data=router.data("fix", sid, p["id"]), label_context=_who(p["name"], p["rid"]))]
                 for p in context["waiting_approval"]]  # fmt: skip
    rows.append([Button(L + "back_roster", data=router.data("rv", sid))])
    return _say(edit, "hours", context, keyboard(*rows))


@router.callback("hall", int, needs=Needs.CONSENT)
async def approve_all(ctx: Ctx) -> Sequence[Action]:
    """Approve everyone's checked time (points are credited once: a second tap approves nobody)."""
    desk = ctx.services.volunteer_desk
    count, minutes = await desk.approve_all(ctx.user_id, int(ctx.args[0]))
    found = await desk.roster(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback(T + "approved", {"count": count, "minutes": minutes, "hours": hours(minutes)}),
            _hours(found, edit=True)]  # fmt: skip


@router.callback("fix", int, int, needs=Needs.CONSENT)
async def correct(ctx: Ctx) -> Sequence[Action]:
    """Approve one volunteer's hours with another figure: minutes (or hours), then the reason."""
    shift_id, booking_id = int(ctx.args[0]), int(ctx.args[1])
    found = await ctx.services.volunteer_desk.roster(ctx.user_id, shift_id)
    line = next(((b, p) for b, p in found.pending_hours if b.id == booking_id), None)
    if line is None:
        return [AnswerCallback(T + "gone", alert=True)]
    booking, person = line
    data = {"shift": shift_id, "booking": booking_id, "person": _who(person.name, person.resident_id),
            "checked": booking.minutes, "max": found.view.shift.minutes}  # fmt: skip
    await ctx.set_state(FIX_MINUTES, ttl=TTL, **data)
    return [
        AnswerCallback(),
        SendText(T + "ask_change", data | {"step": "minutes", "title": found.view.activity.title}),
    ]


@router.step(FIX_MINUTES, needs=Needs.CONSENT)
async def correct_minutes(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data
    ask = SendText(T + "ask_change", data | {"step": "minutes", "title": None})
    minutes = read_minutes(ctx.incoming.text or "")
    if minutes is None:
        return [SendText(T + "problem", {"code": "bad_minutes_format"}), ask]
    if minutes > int(data["max"]):
        return [SendText(VolunteerError.template, {"code": "over_shift", "limit": int(data["max"])}), ask]
    await ctx.set_state(FIX_REASON, ttl=TTL, **data | {"minutes": minutes})
    return [SendText(T + "ask_change", data | {"step": "reason", "minutes": minutes, "limit": REASON_MAX})]


@router.step(FIX_REASON, needs=Needs.CONSENT)
async def correct_reason(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data
    try:
        await ctx.services.volunteer_desk.correct(ctx.user_id, int(data["booking"]), int(data["minutes"]),
                                                  ctx.incoming.text or "")  # fmt: skip
    except VolunteerError as error:
        if error.code in ("empty", "too_long"):
            ask = SendText(T + "ask_change", data | {"step": "reason", "limit": REASON_MAX})
            return [SendText(error.template, error.context), ask]
        await ctx.clear_state()
        raise
    await ctx.clear_state()
    back = keyboard([Button(L + "back_hours", data=router.data("hrs", int(data["shift"])))])
    context = data["person"] | {"minutes": data["minutes"], "hours": hours(int(data["minutes"]))}
    return [SendText(T + "corrected", context, buttons=back)]


# ---- moving, cancelling ----------------------------------------------------------------------------------------------


@router.callback("mv", int, needs=Needs.CONSENT)
async def move(ctx: Ctx) -> Sequence[Action]:
    found = await ctx.services.volunteer_desk.roster(ctx.user_id, int(ctx.args[0]))
    await ctx.set_state(MOVE_START, ttl=TTL, shift=found.view.shift.id)
    context = shift_context(found.view, found.zone) | {"step": "move_start", "zone": found.zone.key}
    return [AnswerCallback(), SendText(T + "ask_change", context)]


@router.step(MOVE_START, needs=Needs.CONSENT)
async def move_start(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data
    ask = SendText(T + "ask_change", {"step": "move_start", "zone": (await _zone(ctx)).key, "title": None})
    try:
        start = await _read_start(ctx, ctx.incoming.text or "")
    except VolunteerError as error:
        return [SendText(error.template, error.context), ask]
    except Unreadable as error:
        return [SendText(T + "problem", error.context), ask]
    await ctx.set_state(MOVE_END, ttl=TTL, **data | {"start": start.isoformat()})
    return [
        SendText(T + "ask_change", {"step": "move_end", "start": start.astimezone(await _zone(ctx)), "title": None})
    ]


@router.step(MOVE_END, needs=Needs.CONSENT)
async def move_end(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data
    zone = await _zone(ctx)
    start = _at(data["start"])
    ask = SendText(T + "ask_change", {"step": "move_end", "start": start.astimezone(zone), "title": None})
    try:
        end = read_end(ctx.incoming.text or "", start.astimezone(zone))
        _check(ShiftDraft(start, end, 1))
        moved = await ctx.services.volunteer_desk.move_shift(ctx.user_id, int(data["shift"]), start, end)
    except VolunteerError as error:
        if error.code in ("ends_before_start", "shift_too_long"):
            return [SendText(error.template, error.context), ask]
        await ctx.clear_state()
        raise
    except Unreadable as error:
        return [SendText(T + "problem", error.context), ask]
    await ctx.clear_state()
    context = {"start": moved.starts_at.astimezone(zone), "end": moved.ends_at.astimezone(zone)}
    back = keyboard([Button(L + "back_roster", data=router.data("roster", moved.id))])
    return [SendText(T + "moved", context, buttons=back)]


@router.callback("pl", int, needs=Needs.CONSENT)
async def change_place(ctx: Ctx) -> Sequence[Action]:
    activity, _, _ = await ctx.services.volunteer_desk.activity(ctx.user_id, int(ctx.args[0]))
    await ctx.set_state(PLACE_TEXT, ttl=TTL, a=activity.id)
    context = {"step": "place", "title": activity.title, "place": activity.place, "limit": PLACE_MAX}
    return [AnswerCallback(), SendText(T + "ask_change", context)]


@router.step(PLACE_TEXT, needs=Needs.CONSENT)
async def place_text(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data
    try:
        place = clean(ctx.incoming.text or "", PLACE_MAX)
    except VolunteerError as error:
        return [SendText(error.template, error.context)]
    await ctx.set_state(PLACE_WHERE, ttl=TTL, **data | {"place": place})
    share = keyboard([Button(L + "share_location", request_location=True)])
    skip_button = keyboard([Button(L + "skip", data=router.data("plskip"))])
    return [SendText(T + "ask_change", {"step": "place_location", "title": None}, reply_keyboard=share),
            SendText(T + "ask_skip_location", buttons=skip_button)]  # fmt: skip


@router.step(PLACE_WHERE, needs=Needs.CONSENT)
async def place_where(ctx: Ctx) -> Sequence[Action]:
    where = ctx.incoming.location
    if where is None:
        skip_button = keyboard([Button(L + "skip", data=router.data("plskip"))])
        return [
            SendText(T + "problem", {"code": "need_location"}),
            SendText(T + "ask_skip_location", buttons=skip_button),
        ]
    return await _place_moved(ctx, where.latitude, where.longitude)


@router.callback("plskip", needs=Needs.CONSENT)
async def place_without_location(ctx: Ctx) -> Sequence[Action]:
    if ctx.state is None or ctx.state.name != PLACE_WHERE:
        return _stale()
    return [AnswerCallback(), *await _place_moved(ctx, None, None)]


async def _place_moved(ctx: Ctx, latitude: float | None, longitude: float | None) -> list[Action]:
    data = ctx.data
    activity = await ctx.services.volunteer_desk.move_place(ctx.user_id, int(data["a"]), str(data["place"]),
                                                            latitude, longitude)  # fmt: skip
    await ctx.clear_state()
    context = {"title": activity.title, "place": activity.place, "located": latitude is not None}
    return [SendText(T + "place_moved", context, remove_reply_keyboard=True)]


@router.callback("cs", int, needs=Needs.CONSENT)
async def cancel_shift(ctx: Ctx) -> Sequence[Action]:
    found = await ctx.services.volunteer_desk.roster(ctx.user_id, int(ctx.args[0]))
    sid = found.view.shift.id
    rows = [[Button(L + "confirm_cancel_shift", data=router.data("csy", sid))],
            [Button(L + "keep", data=router.data("rv", sid))]]  # fmt: skip
    return [EditText(T + "confirm_cancel", _roster_context(found) | {"what": "shift"}, buttons=keyboard(*rows))]


@router.callback("csy", int, needs=Needs.CONSENT)
async def cancel_shift_confirmed(ctx: Ctx) -> Sequence[Action]:
    told = await ctx.services.volunteer_desk.cancel_shift(ctx.user_id, int(ctx.args[0]))
    back = keyboard([Button(L + "back_list", data=router.data("list"))])
    return [EditText(T + "cancelled", {"what": "shift", "told": told}, buttons=back)]


@router.callback("ca", int, needs=Needs.CONSENT)
async def cancel_activity(ctx: Ctx) -> Sequence[Action]:
    activity, views, zone = await ctx.services.volunteer_desk.activity(ctx.user_id, int(ctx.args[0]))
    rows = [[Button(L + "confirm_cancel_activity", data=router.data("cay", activity.id))],
            [Button(L + "keep", data=router.data("act", activity.id))]]  # fmt: skip
    context = {"what": "activity", "title": activity.title, "shifts": [shift_context(v, zone) for v in views],
               "booked": sum(v.booked + v.waiting for v in views)}  # fmt: skip
    return [AnswerCallback(), SendText(T + "confirm_cancel", context, buttons=keyboard(*rows))]


@router.callback("cay", int, needs=Needs.CONSENT)
async def cancel_activity_confirmed(ctx: Ctx) -> Sequence[Action]:
    told = await ctx.services.volunteer_desk.cancel_activity(ctx.user_id, int(ctx.args[0]))
    back = keyboard([Button(L + "back_list", data=router.data("list"))])
    return [EditText(T + "cancelled", {"what": "activity", "told": told}, buttons=back)]


# ---- applicants --------------------------------------------------------------------------------------------------


@router.callback("apps", needs=Needs.CONSENT)
async def applicants(ctx: Ctx) -> Sequence[Action]:
    found = await ctx.services.volunteer_desk.applicants(ctx.user_id)
    people = [{"id": p.resident_id, **_who(p.name, p.resident_id), "building": p.building,
               "skills": profile.skills, "availability": profile.availability} for profile, p in found]  # fmt: skip
    rows = [[Button(L + "approve", data=router.data(APPROVE_VOLUNTEER.action, p["id"]), label_context=p),
             Button(L + "refuse", data=router.data(REFUSE_VOLUNTEER.action, p["id"]), label_context=p)]
            for p in people[:LIST_SHIFTS]]  # fmt: skip
    rows.append([Button(L + "back_list", data=router.data("list"))])
    return [AnswerCallback(), SendText(T + "applicants", {"people": people}, buttons=keyboard(*rows))]


@router.action(APPROVE_VOLUNTEER, needs=Needs.CONSENT)
async def approve_volunteer(ctx: Ctx) -> Sequence[Action]:
    return await _decide(ctx, True)


@router.action(REFUSE_VOLUNTEER, needs=Needs.CONSENT)
async def refuse_volunteer(ctx: Ctx) -> Sequence[Action]:
    return await _decide(ctx, False)


async def _decide(ctx: Ctx, approve: bool) -> list[Action]:
    person = await ctx.services.volunteer_desk.decide(ctx.user_id, int(ctx.args[0]), approve)
    context = _who(person.name, person.resident_id) | {"approved": approve}
    return [AnswerCallback(), SendText(T + "decided", context)]


# ---- /stats volunteers -------------------------------------------------------------------------------------------


@stats_view("volunteers")
async def figures(ctx: Ctx) -> Sequence[Action]:
    """``/stats volunteers [days]``: participation (volunteers / registered residents) against the 5% goal, and the
    period's hours by track and building, shifts, bookings and no-shows (last 30 days by default)."""
    words = ctx.incoming.args.split()[1:2]
    days = int(words[0]) if words and words[0].isdigit() and 0 < int(words[0]) <= DAYS_MAX else DAYS_DEFAULT
    since = ctx.services.report_stats.since_days(days)
    community, found = await ctx.services.volunteer_desk.figures_for(ctx.user_id, since)
    context = {
        "community": community.name,
        "days": days,
        "f": found,
        "share": round(100 * found.participation, 1),
        "goal": round(100 * PARTICIPATION_GOAL),
        "met": found.goal_met,
        "needed": _needed(found.residents, found.volunteers),
        "by_track": {k: hours(m) for k, m in sorted(found.minutes_by_track.items(), key=lambda kv: -kv[1])},
        "by_building": {k: hours(m) for k, m in sorted(found.minutes_by_building.items(), key=lambda kv: -kv[1])},
        "total": hours(sum(found.minutes_by_track.values())),
    }
    return [SendText(T + "stats", context)]


def _needed(residents: int, volunteers: int) -> int:
    """How many more volunteers the goal needs (0 when it is met)."""
    goal = -(-residents * round(100 * PARTICIPATION_GOAL) // 100)  # rounded up
    return max(0, goal - volunteers)


# ---- reading what organisers type ----------------------------------------------------------------------------------

_FULL_WIDTH = str.maketrans("０１２３４５６７８９：－．　／", "0123456789:-. /")
_NUMBER = re.compile(r"([+-]?\d+)\s*[^\d\s.,]*")
_MINUTES = re.compile(r"(\d+(?:[.,]\d+)?)\s*([a-z\u4e00-\u9fff]*)")
HOUR_UNITS = ("h", "hr", "hrs", "hour", "hours", "小时", "个小时", "钟头", "时")
MINUTE_UNITS = ("", "m", "min", "mins", "minute", "minutes", "分钟", "分")


def read_number(text: str) -> int | None:
    """A whole number typed (full-width digits and a trailing unit such as 人/小时/周 accepted), else None."""
    found = _NUMBER.fullmatch(text.translate(_FULL_WIDTH).strip())
    return int(found.group(1)) if found else None


def read_minutes(text: str) -> int | None:
    """Service time typed as minutes (``90``, ``90分钟``) or hours (``1.5``, ``2 小时``, ``1.5h``), else None."""
    found = _MINUTES.fullmatch(text.translate(_FULL_WIDTH).strip().lower())
    if found is None:
        return None
    figure, unit = found.group(1).replace(",", "."), found.group(2)
    if unit in HOUR_UNITS or (unit == "" and "." in figure):
        return round(float(figure) * 60)
    if unit in MINUTE_UNITS and "." not in figure:
        return int(figure)
    return None


def read_end(text: str, start: datetime) -> datetime:
    """The end of a shift: ``11:00`` (the start's day), ``12-08 11:00`` or ``2026-12-08 11:00`` in the start's zone
    (a local datetime); returned in UTC. Raises Unreadable."""
    cleaned = " ".join(text.translate(_FULL_WIDTH).replace("/", "-").replace("T", " ").split())
    try:
        if " " not in cleaned:
            clock = datetime.strptime(cleaned, "%H:%M").time()
            at = datetime.combine(start.date(), time(clock.hour, clock.minute), start.tzinfo)
        elif cleaned.count("-") == 1:
            at = datetime.strptime(f"{start.year}-{cleaned}", "%Y-%m-%d %H:%M").replace(tzinfo=start.tzinfo)
        else:
            at = datetime.strptime(cleaned, "%Y-%m-%d %H:%M").replace(tzinfo=start.tzinfo)
    except ValueError:
        raise Unreadable("bad_end") from None
    return at.astimezone(UTC)


async def _read_start(ctx: Ctx, text: str) -> datetime:
    """A start typed in the community's zone, in the future (the notices' reading of times: ``HH:MM``,
    ``MM-DD HH:MM``, ``YYYY-MM-DD HH:MM``)."""
    community = await _community(ctx)
    if community is None:
        raise NeedsConsent()
    try:
        return ctx.services.campaigns.schedule_time(community, text)
    except CampaignError as error:
        if error.code == "time_in_past":
            raise VolunteerError("starts_in_past") from None
        if error.code == "time_too_far":
            raise VolunteerError("too_far", days=error.context.get("days")) from None
        raise Unreadable("bad_time") from None


# ---- helpers -------------------------------------------------------------------------------------------------------


def _draft(data: dict[str, Any], **override: Any) -> ShiftDraft:
    """The shift as answered so far (later answers at their defaults), with ``override`` for the answer at hand."""
    start = override.pop("starts_at", None) or _at(data["start"])
    end = override.pop("ends_at", None) or (_at(data["end"]) if data.get("end") else start + timedelta(hours=1))
    values: dict[str, Any] = {
        "capacity": data.get("cap", 1),
        "points_per_hour": data.get("pts", DEFAULT_POINTS_PER_HOUR),
        "note": data.get("note") or "",
        "cutoff_hours": data.get("cut", DEFAULT_CUTOFF_HOURS),
        "repeat_weeks": data.get("rep", 1),
    }
    return ShiftDraft(start, end, **(values | override))


def _check(draft: ShiftDraft) -> None:
    """The domain's rules for a shift, for the answers given so far (whether the start is still to come is checked
    when the start is typed, and again when the shift is created)."""
    draft.check(draft.starts_at - timedelta(microseconds=1))


def _draft_context(data: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    start = _at(data["start"]).astimezone(zone) if data.get("start") else None
    end = _at(data["end"]).astimezone(zone) if data.get("end") else None
    return {
        "adding": "a" in data and "place" not in data,
        "track": data.get("track"),
        "title": data.get("title"),
        "desc": data.get("desc"),
        "place": data.get("place"),
        "located": "lat" in data,
        "contact": data.get("contact"),
        "start": start,
        "end": end,
        "cap": data.get("cap"),
        "pts": data.get("pts"),
        "cut": data.get("cut"),
        "note": data.get("note"),
        "rep": data.get("rep"),
        "weeks": [start + timedelta(weeks=w) for w in range(int(data["rep"]))] if start and data.get("rep") else [],
    }


def _next(step: str) -> str:
    return STEPS[STEPS.index(step) + 1]


def _default(step: str) -> int | None:
    return {"pts": DEFAULT_POINTS_PER_HOUR, "cut": DEFAULT_CUTOFF_HOURS, "rep": 1}.get(step)


def _dialog(ctx: Ctx, step: str) -> dict[str, Any] | None:
    """The draft when the dialog is at ``step`` (a button of an earlier question does nothing)."""
    if ctx.state is None or ctx.state.name != f"vd.{step}":
        return None
    return dict(ctx.state.data)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _when(shift: dict[str, Any]) -> dict[str, Any]:
    """A shift button's label context (local start and end)."""
    start, end = shift["start"], shift["end"]
    return {"month": start.month, "day": start.day, "weekday": start.isoweekday(), "start": start.strftime("%H:%M"),
            "end": end.strftime("%H:%M"), "booked": shift["booked"], "capacity": shift["capacity"],
            "waiting": shift["waiting"]}  # fmt: skip


def _activity_context(activity: Any) -> dict[str, Any]:
    return {"id": activity.id, "title": activity.title, "description": activity.description, "place": activity.place,
            "contact": activity.contact, "track": activity.track, "located": activity.has_coordinates}  # fmt: skip


def _who(name: str | None, resident_id: int) -> dict[str, Any]:
    """A person as templates and labels name them (a resident without a name by their number)."""
    return {"name": name, "rid": resident_id}


async def _community(ctx: Ctx) -> Community | None:
    resident = ctx.resident
    if resident is None or resident.community_id is None:
        return None
    return await ctx.services.communities.get(resident.community_id)


async def _zone(ctx: Ctx) -> ZoneInfo:
    return ctx.services.volunteers.zone(await _community(ctx))


def _say(edit: bool, name: str, context: dict[str, Any], buttons: Keyboard = ()) -> Action:
    if edit:
        return EditText(T + name, context, buttons=buttons)
    return SendText(T + name, context, buttons=buttons)


def _stale() -> list[Action]:
    return [AnswerCallback("errors/stale_button", alert=True)]
