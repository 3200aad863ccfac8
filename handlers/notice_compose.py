"""/notice: an organiser composes a campaign notice — text, photo, track, buttons, audience, preview, send or schedule.

The whole draft lives in the dialog state (JSON), so a restart resumes it where it was. Every draft card re-reads the
number of recipients through the campaign service, which checks the organiser role (and audits a refusal) each
time; sending, scheduling and cancelling are checked and audited there too. Buttons of a draft that is no longer
open (sent, discarded, expired, or never this person's) get a clear answer and change nothing.

The text is Telegram-HTML: formatting made in Telegram (bold, links...) arrives as ``Incoming.html``; a message
without formatting is read as HTML source typed by hand (``<b>...</b>``), so a literal ``<`` is written ``&lt;``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.conversation.callbacks import CallbackCodec
from bot.conversation.context import Ctx
from bot.conversation.incoming import Incoming
from bot.conversation.replies import (
    Action,
    AnswerCallback,
    Button,
    EditText,
    Keyboard,
    SendPhoto,
    SendText,
    keyboard,
)
from bot.conversation.router import Router
from bot.domain.actions import ActionRef
from bot.domain.campaigns import (
    BODY_LIMIT,
    BUTTONS_MAX,
    CAPTION_BODY_LIMIT,
    PAID_RATE,
    PAID_STARS_PER_MESSAGE,
    SCHEDULE_HORIZON,
    TRACKS,
    URL_LABEL_MAX,
    Audience,
    AudienceKind,
    ButtonKind,
    CampaignError,
    CampaignStatus,
    Draft,
    NoticeButton,
)
from bot.domain.errors import Forbidden, NotFound
from bot.domain.notices import Notice
from bot.domain.residents import LOCALES, Community
from bot.domain.roles import Role
from bot.domain.telegram_html import check_html, escape, parse_html, plain_length

router = Router("nc")
TEXT, DRAFT, PHOTO, URL, TIME = "nc.text", "nc.draft", "nc.photo", "nc.url", "nc.time"
TTL = 7 * 24 * 3600  # a draft may wait a few days for the organiser to come back to it
T = "notices/compose/"
L = "notice_compose.btn."
GENERAL = "general"  # the track choice "no particular track"
# A library notice starts with its track and a weekly repeat: they are recurring notices.
TEMPLATE_DEFAULTS: dict[str, tuple[str | None, bool]] = {"sorting_weekly": ("sanitary", True)}
AUDIENCE_CHOICES = ("all", "buildings", "track", "groups", "volunteer", "grid_worker")
SNIPPET_BEFORE, SNIPPET_AFTER = 12, 24
ACTIVITY_BUTTONS = 5  # volunteer activities offered as buttons (the soonest)


# ---- starting -----------------------------------------------------------------------------------------------------


@router.command("notice", private_only=True)
async def notice_command(ctx: Ctx) -> Sequence[Action]:
    return await start(ctx)


async def start(ctx: Ctx) -> list[Action]:
    """Open the composer (an unfinished draft is offered first); refused, and audited, for non-organisers."""
    data = _open(ctx)
    if data is not None and _has_content(data):
        rows = [[Button(L + "continue", data=router.data("card"))], [Button(L + "start_over", data=router.data("new"))]]
        return [SendText(T + "resume", buttons=keyboard(*rows))]
    return await _begin(ctx, edit=False)


@router.callback("new")
async def start_over(ctx: Ctx) -> Sequence[Action]:
    return await _begin(ctx, edit=True)


@router.callback("comm", int)
async def choose_community(ctx: Ctx) -> Sequence[Action]:
    communities = await ctx.services.campaigns.communities_of(ctx.user_id)
    chosen = next((c for c in communities if c.id == ctx.args[0]), None)
    if chosen is None:
        return _gone()
    return await _ask_text(ctx, chosen, edit=True)


async def _begin(ctx: Ctx, *, edit: bool) -> list[Action]:
    communities = await ctx.services.campaigns.communities_of(ctx.user_id)
    if not communities:
        await ctx.services.access.check(ctx.user_id, Role.ORGANISER, "notice")  # records the refusal
        raise Forbidden(role=Role.ORGANISER.value).audited()
    if len(communities) == 1:
        return await _ask_text(ctx, communities[0], edit=edit)
    await ctx.clear_state()
    rows = [[Button("plain", data=router.data("comm", c.id), label_context={"text": c.name})] for c in communities]
    return [_say(edit, "choose_community", {}, keyboard(*rows))]


async def _ask_text(ctx: Ctx, community: Community, *, edit: bool) -> list[Action]:
    await ctx.set_state(TEXT, ttl=TTL, **_blank(community.id))
    rows = [
        [Button(L + "template", data=router.data("tpl", key), label_context={"key": key})]
        for key in ctx.services.campaigns.templates
    ]
    context = {"community": community.name, "limit": BODY_LIMIT, "caption_limit": CAPTION_BODY_LIMIT}
    return [_say(edit, "ask_text", context, keyboard(*rows))]


@router.callback("tpl", str)
async def use_template(ctx: Ctx) -> Sequence[Action]:
    """A recurring notice from the content library: its text comes in each resident's language when sent."""
    data = _open(ctx)
    if data is None:
        return _gone()
    key = str(ctx.args[0])
    if key not in ctx.services.campaigns.templates:
        raise CampaignError("unknown_template")
    track, weekly = TEMPLATE_DEFAULTS.get(key, (None, True))
    data |= {"template": key, "body": "", "track": track, "weekly": weekly}
    return await _card(ctx, data, edit=True, note="template")


# ---- free input: the text, a photo, a link button, a time ----------------------------------------------------------


@router.step(TEXT)
async def text_given(ctx: Ctx) -> Sequence[Action]:
    return await _content(ctx)


@router.step(DRAFT)
async def draft_input(ctx: Ctx) -> Sequence[Action]:
    """On the draft card a photo becomes the picture; a text is not taken as the notice's new text (it may be a
    time typed after a refused tap on 定时发送): the text changes only after ✏️."""
    inc = ctx.incoming
    if inc.photo_file_ids or inc.document_file_id is not None:
        return await _content(ctx)
    rows = [[Button(L + "text", data=router.data("edit")), Button(L + "show_card", data=router.data("card"))]]
    return [SendText(T + "draft_hint", buttons=keyboard(*rows))]


@router.callback("edit")
async def edit_text(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    await ctx.set_state(TEXT, ttl=TTL, **data)
    context = {"limit": CAPTION_BODY_LIMIT if data.get("photo") else BODY_LIMIT, "photo": bool(data.get("photo"))}
    return [EditText(T + "ask_new_text", context, buttons=keyboard([_back()]))]


async def _content(ctx: Ctx) -> list[Action]:
    data = _open(ctx)
    if data is None:
        return []
    inc = ctx.incoming
    if inc.photo_file_ids:
        return await _photo_given(ctx, data, inc.photo_file_ids[-1])
    if inc.document_file_id is not None:
        return [SendText(T + "not_photo")]
    source = _source(inc)
    if source is None:
        return [SendText(T + "need_text", {"limit": BODY_LIMIT})]
    problem = _problem(source, photo=bool(data.get("photo")))
    if problem is not None:
        return [SendText(T + "bad_text", problem)]
    data |= {"body": source, "template": None}
    return await _card(ctx, data, edit=False, note="text")


@router.step(PHOTO)
async def photo_given(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return []
    inc = ctx.incoming
    if inc.photo_file_ids:
        return await _photo_given(ctx, data, inc.photo_file_ids[-1])
    if inc.document_file_id is not None:
        return [SendText(T + "not_photo")]
    return [SendText(T + "ask_photo", _photo_context(data, hint=True), buttons=_photo_buttons(data))]


async def _photo_given(ctx: Ctx, data: dict[str, Any], file_id: str) -> list[Action]:
    """A photo (its caption, if any, becomes the text); the text must then fit in a caption."""
    caption = _source(ctx.incoming)
    if caption is not None and caption.strip():
        problem = _problem(caption, photo=True)
        if problem is not None:
            return [SendText(T + "bad_text", problem)]
        data |= {"body": caption, "template": None}
    elif data.get("body") and not data.get("template"):
        problem = _problem(data["body"], photo=True)
        if problem is not None:
            return [SendText(T + "bad_text", problem | {"photo_refused": True})]
    data["photo"] = file_id
    if not _has_content(data):  # the photo came first: the text follows
        await ctx.set_state(TEXT, ttl=TTL, **data)
        return [SendText(T + "photo_first", {"limit": CAPTION_BODY_LIMIT})]
    return await _card(ctx, data, edit=False, note="photo")


@router.step(URL)
async def url_given(ctx: Ctx) -> Sequence[Action]:
    """``text | https://...`` in one message."""
    data = _open(ctx)
    if data is None:
        return []
    label, sep, url = (ctx.incoming.text or "").replace("｜", "|").partition("|")
    if not sep:
        raise CampaignError("bad_url_format")
    button = NoticeButton(ButtonKind.URL, url.strip(), label.strip())
    data["buttons"] = _with_button(data, button)
    return await _card(ctx, data, edit=False, note="button")


@router.step(TIME)
async def time_given(ctx: Ctx) -> Sequence[Action]:
    """A local time in the community's zone: shown back with the draft for a last confirmation."""
    data = _open(ctx)
    if data is None:
        return []
    community = await ctx.services.communities.get(int(data["c"]))
    at = ctx.services.campaigns.schedule_time(community, ctx.incoming.text or "")
    data["at"] = at.isoformat()
    return await _confirm(ctx, data, edit=False)


# ---- the draft card and its parts ----------------------------------------------------------------------------------


@router.callback("card")
async def back_to_card(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    for passing in ("at", "pick"):
        data.pop(passing, None)
    if not _has_content(data):
        community = await ctx.services.communities.get(int(data["c"]))
        return await _ask_text(ctx, community, edit=True)
    return await _card(ctx, data, edit=True)


@router.callback("photo")
async def photo_menu(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    await ctx.set_state(PHOTO, ttl=TTL, **data)
    return [EditText(T + "ask_photo", _photo_context(data), buttons=_photo_buttons(data))]


@router.callback("nophoto")
async def remove_photo(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    data["photo"] = None
    return await _card(ctx, data, edit=True, note="photo_removed")


@router.callback("track")
async def track_menu(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    choices = [*TRACKS, GENERAL]
    buttons = [
        Button(L + "track", data=router.data("settrack", t), label_context={"track": t, "on": _track(data) == t})
        for t in choices
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return [EditText(T + "track_menu", {"track": data.get("track")}, buttons=keyboard(*rows, [_back()]))]


@router.callback("settrack", str)
async def set_track(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    value = str(ctx.args[0])
    if value != GENERAL and value not in TRACKS:
        raise CampaignError("unknown_track")
    data["track"] = None if value == GENERAL else value
    return await _card(ctx, data, edit=True, note="track")


@router.callback("btns")
async def buttons_menu(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    return [await _buttons_screen(ctx, data)]


@router.callback("addquiz", str)
async def add_quiz(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    data["buttons"] = _with_button(data, NoticeButton(ButtonKind.QUIZ, str(ctx.args[0])))
    await ctx.set_state(DRAFT, ttl=TTL, **data)
    return [await _buttons_screen(ctx, data, note="button")]


@router.callback("addact", int)
async def add_activity(ctx: Ctx) -> Sequence[Action]:
    """A button that opens one of the community's upcoming volunteer activities (to sign up for its shifts)."""
    data = _open(ctx)
    if data is None:
        return _gone()
    title = dict(await _activities(ctx, data)).get(int(ctx.args[0]))
    if title is None:
        raise CampaignError("unknown_activity")
    data["buttons"] = _with_button(data, NoticeButton(ButtonKind.ACTIVITY, str(ctx.args[0]), title))
    await ctx.set_state(DRAFT, ttl=TTL, **data)
    return [await _buttons_screen(ctx, data, note="button")]


@router.callback("addbtn", str)
async def add_button(ctx: Ctx) -> Sequence[Action]:
    """Rewards and 随手拍 are added at once; a link asks for its text and address next."""
    data = _open(ctx)
    if data is None:
        return _gone()
    kind = str(ctx.args[0])
    if kind == ButtonKind.URL.value:
        if len(data["buttons"]) >= BUTTONS_MAX:
            raise CampaignError("too_many_buttons", limit=BUTTONS_MAX)
        await ctx.set_state(URL, ttl=TTL, **data)
        return [EditText(T + "ask_url", {"limit": URL_LABEL_MAX}, buttons=keyboard([_back()]))]
    if kind not in (ButtonKind.REWARDS.value, ButtonKind.REPORT.value):
        return _gone()
    data["buttons"] = _with_button(data, NoticeButton(ButtonKind(kind)))
    await ctx.set_state(DRAFT, ttl=TTL, **data)
    return [await _buttons_screen(ctx, data, note="button")]


@router.callback("clrbtn")
async def clear_buttons(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    data["buttons"] = []
    await ctx.set_state(DRAFT, ttl=TTL, **data)
    return [await _buttons_screen(ctx, data, note="buttons_cleared")]


@router.callback("aud")
async def audience_menu(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    data.pop("pick", None)
    context = await _context(ctx, data)
    current = _audience_choice(data)
    buttons = [
        Button(L + "audience", data=router.data("setaud", kind), label_context={"kind": kind, "on": kind == current})
        for kind in AUDIENCE_CHOICES
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    await ctx.set_state(DRAFT, ttl=TTL, **data)
    return [EditText(T + "audience_menu", context, buttons=keyboard(*rows, [_back()]))]


@router.callback("setaud", str)
async def set_audience(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    kind = str(ctx.args[0])
    if kind == "buildings":
        current = Audience.from_json(data["aud"])
        data["pick"] = list(current.buildings) if current.kind is AudienceKind.BUILDINGS else []
        await ctx.set_state(DRAFT, ttl=TTL, **data)
        return [await _buildings_screen(ctx, data)]
    if kind == "track":
        current_track = data["aud"].get("track") if data["aud"].get("kind") == AudienceKind.TRACK.value else None
        buttons = [
            Button(L + "track", data=router.data("audtrack", t), label_context={"track": t, "on": t == current_track})
            for t in TRACKS
        ]
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
        back = Button(L + "back_audience", data=router.data("aud"))
        return [EditText(T + "audience_track", {}, buttons=keyboard(*rows, [back]))]
    if kind == "all":
        audience = Audience()
    elif kind == "groups":
        audience = Audience(AudienceKind.GROUPS)
    elif kind in (Role.VOLUNTEER.value, Role.GRID_WORKER.value):
        audience = Audience(AudienceKind.ROLE, role=Role(kind))
    else:
        return _gone()
    data["aud"] = audience.to_json()
    return await _card(ctx, data, edit=True, note="audience")


@router.callback("audtrack", str)
async def audience_track(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    data["aud"] = Audience(AudienceKind.TRACK, track=str(ctx.args[0])).to_json()
    return await _card(ctx, data, edit=True, note="audience")


@router.callback("bld", int)
async def toggle_building(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None or "pick" not in data:
        return _gone()
    community = await ctx.services.communities.get(int(data["c"]))
    building = int(ctx.args[0])
    if building not in {b.id for b in community.buildings}:
        raise NotFound(what="building")
    pick = set(data["pick"]) ^ {building}
    data["pick"] = [b.id for b in community.buildings if b.id in pick]
    await ctx.set_state(DRAFT, ttl=TTL, **data)
    return [await _buildings_screen(ctx, data)]


@router.callback("blddone")
async def buildings_done(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None or "pick" not in data:
        return _gone()
    audience = Audience(AudienceKind.BUILDINGS, tuple(data["pick"]))  # none chosen: "no_buildings"
    data.pop("pick")
    data["aud"] = audience.to_json()
    return await _card(ctx, data, edit=True, note="audience")


@router.callback("urgent")
async def toggle_urgent(ctx: Ctx) -> Sequence[Action]:
    return await _toggle(ctx, "urgent")


@router.callback("paid")
async def toggle_paid(ctx: Ctx) -> Sequence[Action]:
    return await _toggle(ctx, "paid")


@router.callback("weekly")
async def toggle_weekly(ctx: Ctx) -> Sequence[Action]:
    return await _toggle(ctx, "weekly")


async def _toggle(ctx: Ctx, flag: str) -> list[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    data[flag] = not data.get(flag)
    return await _card(ctx, data, edit=True, note=f"{flag}_{'on' if data[flag] else 'off'}")


@router.callback("prev", str)
async def preview(ctx: Ctx) -> Sequence[Action]:
    """The notice exactly as residents reading ``locale`` get it; the draft card follows it below."""
    data = _open(ctx)
    locale = str(ctx.args[0])
    if data is None or locale not in LOCALES:
        return _gone()
    notice = await ctx.services.campaigns.preview(ctx.user_id, _draft(data), locale)
    shown = notice_actions(notice, str(ctx.settings.get("bot_username", "")))
    return [
        EditText(T + "preview_below", {"locale": locale, "groups": _groups(data)}),
        *shown,
        *await _card(ctx, data, edit=False),
    ]


# ---- sending, scheduling, discarding -------------------------------------------------------------------------------


@router.callback("send")
async def send(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    data.pop("at", None)
    return await _confirm(ctx, data, edit=True)


@router.callback("sched")
async def schedule(ctx: Ctx) -> Sequence[Action]:
    data = _open(ctx)
    if data is None:
        return _gone()
    data.pop("at", None)
    if await ctx.services.campaigns.audience_size(ctx.user_id, _draft(data)) == 0:
        raise CampaignError("empty_audience")
    community = await ctx.services.communities.get(int(data["c"]))
    zone = ctx.services.campaigns.zone(community)
    await ctx.set_state(TIME, ttl=TTL, **data)
    context = {"zone": zone.key, "days": SCHEDULE_HORIZON.days}
    return [EditText(T + "ask_time", context, buttons=keyboard([_back()]))]


@router.callback("go")
async def send_now(ctx: Ctx) -> Sequence[Action]:
    """Confirmed: the service starts the campaign and queues the live progress message itself."""
    data = _open(ctx)
    if data is None or "at" in data:  # an older "send now" after a time was chosen: not what is on screen
        return _gone()
    campaign = await ctx.services.campaigns.create(ctx.user_id, _draft(data), progress_chat_id=ctx.chat_id)
    await ctx.clear_state()
    context = {"id": campaign.id, "recipients": campaign.recipients, "groups": _groups(data), "weekly": data["weekly"]}
    return [EditText(T + "sending", context)]


@router.callback("goat", int)
async def send_later(ctx: Ctx) -> Sequence[Action]:
    """Confirmed for the time shown (its timestamp is on the button, so an older confirmation cannot slip in)."""
    data = _open(ctx)
    at = _at(data) if data is not None else None
    if data is None or at is None or int(at.timestamp()) != ctx.args[0]:
        return _gone()
    draft = _draft(data, at)
    campaign = await ctx.services.campaigns.create(ctx.user_id, draft, progress_chat_id=ctx.chat_id)
    await ctx.clear_state()
    context = await _scheduled_context(ctx, data, campaign.id, campaign.recipients, at)
    cancel = Button(L + "cancel_notice", data=router.data("cancel", campaign.id))
    return [EditText(T + "scheduled", context, buttons=keyboard([cancel]))]


@router.callback("cancel", int)
async def cancel_notice(ctx: Ctx) -> Sequence[Action]:
    """Cancel a scheduled notice (one already sending stops); the service checks the role and audits."""
    try:
        campaign = await ctx.services.campaigns.cancel(ctx.user_id, int(ctx.args[0]))
    except NotFound:
        raise CampaignError("no_notice") from None
    sending = campaign.status is not CampaignStatus.CANCELLED
    return [EditText(T + "cancelled", {"id": campaign.id, "stopped": sending})]


@router.callback("discard")
async def discard(ctx: Ctx) -> Sequence[Action]:
    if _open(ctx) is None:
        return _gone()
    rows = [[Button(L + "discard_yes", data=router.data("drop"))], [_back()]]
    return [EditText(T + "discard_confirm", buttons=keyboard(*rows))]


@router.callback("drop")
async def drop(ctx: Ctx) -> Sequence[Action]:
    if _open(ctx) is None:
        return _gone()
    await ctx.clear_state()
    return [EditText(T + "discarded")]


async def _confirm(ctx: Ctx, data: dict[str, Any], *, edit: bool) -> list[Action]:
    """The draft once more with the recipients (and the cost of a paid broadcast) before it goes."""
    at = _at(data)
    context = await _context(ctx, data, at)
    if context["recipients"] == 0:
        raise CampaignError("empty_audience")
    context["held"] = await ctx.services.campaigns.held(ctx.user_id, _draft(data, at))
    if at is None:
        rows = [[Button(L + "confirm_send", data=router.data("go"))], [_back()]]
    else:
        rows = [
            [Button(L + "confirm_schedule", data=router.data("goat", int(at.timestamp())))],
            [Button(L + "change_time", data=router.data("sched")), _back()],
        ]
    await ctx.set_state(TIME if at else DRAFT, ttl=TTL, **data)
    return [_say(edit, "confirm", context, keyboard(*rows))]


# ---- showing a notice as residents get it --------------------------------------------------------------------------


def notice_actions(notice: Notice, bot_username: str) -> list[Action]:
    """A notice (as the campaign service makes it for one recipient) as the reply actions that show it the same way:
    the same template and context, photo and buttons (deep links need the bot's username, as in the dispatcher)."""
    rows: list[list[Button]] = []
    for line in notice.choices:
        row: list[Button] = []
        for choice in line:
            if choice.url is not None:
                row.append(Button(choice.label, url=choice.url, label_context=choice.label_context))
            elif choice.start is not None:
                if bot_username:
                    link = f"https://t.me/{bot_username}?start={choice.start}"
                    row.append(Button(choice.label, url=link, label_context=choice.label_context))
            elif choice.action is not None:
                data = _encode(choice.action, choice.args)
                row.append(Button(choice.label, data=data, label_context=choice.label_context))
        if row:
            rows.append(row)
    buttons = keyboard(*rows)
    if notice.photo:
        return [SendPhoto(notice.photo, notice.template, notice.context, buttons, locale=notice.locale)]
    return [SendText(notice.template, notice.context, buttons=buttons, locale=notice.locale)]


# ---- helpers -------------------------------------------------------------------------------------------------------


def _blank(community_id: int) -> dict[str, Any]:
    return {
        "c": community_id,
        "body": "",
        "template": None,
        "photo": None,
        "track": None,
        "buttons": [],
        "aud": Audience().to_json(),
        "urgent": False,
        "paid": False,
        "weekly": False,
    }


def _open(ctx: Ctx) -> dict[str, Any] | None:
    """The draft being composed (a copy), or None when this person has none open."""
    state = ctx.state
    if state is None or not state.name.startswith("nc.") or "c" not in state.data:
        return None
    return copy.deepcopy(dict(state.data))


def _has_content(data: dict[str, Any]) -> bool:
    return bool(str(data.get("body") or "").strip() or data.get("template"))


def _draft(data: dict[str, Any], at: datetime | None = None) -> Draft:
    return Draft(
        community_id=int(data["c"]),
        body=str(data.get("body") or ""),
        audience=Audience.from_json(data["aud"]),
        track=data.get("track"),
        photo=data.get("photo"),
        buttons=tuple(NoticeButton.from_json(b) for b in data.get("buttons") or ()),
        urgent=bool(data.get("urgent")),
        paid=bool(data.get("paid")),
        repeat_weekly=bool(data.get("weekly")),
        template=data.get("template"),
        send_at=at,
    )


def _at(data: dict[str, Any]) -> datetime | None:
    return datetime.fromisoformat(data["at"]) if data.get("at") else None


def _track(data: dict[str, Any]) -> str:
    return str(data.get("track") or GENERAL)


def _groups(data: dict[str, Any]) -> bool:
    return bool(data["aud"].get("kind") == AudienceKind.GROUPS.value)


def _audience_choice(data: dict[str, Any]) -> str:
    audience = Audience.from_json(data["aud"])
    if audience.kind is AudienceKind.ROLE and audience.role is not None:
        return audience.role.value
    return audience.kind.value


def _source(inc: Incoming) -> str | None:
    """The HTML of a text or caption: Telegram's formatting when the organiser used it, else the text as typed."""
    if inc.text is None:
        return None
    if inc.html is not None and inc.html != escape(inc.text):
        return inc.html
    return inc.text


def _problem(source: str, *, photo: bool) -> dict[str, Any] | None:
    """Why Telegram would refuse this text (as a caption when there is a photo), for the bad_text template."""
    limit = CAPTION_BODY_LIMIT if photo else BODY_LIMIT
    found = check_html(source, caption=photo)
    if found is None:
        text, _ = parse_html(source)
        if not text.strip():
            return {"code": "empty", "caption": photo}
        length = plain_length(source)
        return None if length <= limit else {"code": "too_long", "length": length, "limit": limit, "caption": photo}
    context: dict[str, Any] = {"code": found.code, "tag": found.tag, "position": found.position, "caption": photo}
    if found.code == "too_long":
        context |= {"length": plain_length(source), "limit": limit}
    elif found.position:
        start = max(0, found.position - 1 - SNIPPET_BEFORE)
        end = found.position - 1 + SNIPPET_AFTER
        context |= {"snippet": source[start:end], "cut_before": start > 0, "cut_after": end < len(source)}
    return context


def _with_button(data: dict[str, Any], button: NoticeButton) -> list[dict[str, str]]:
    """The draft's buttons with one more (at most BUTTONS_MAX; the same bot action once)."""
    entries = list(data.get("buttons") or [])
    entry = button.to_json()
    if button.kind is not ButtonKind.URL and entry in entries:
        raise CampaignError("duplicate_button")
    if len(entries) >= BUTTONS_MAX:
        raise CampaignError("too_many_buttons", limit=BUTTONS_MAX)
    return [*entries, entry]


def _excerpt(body: str, size: int = 80) -> tuple[str, int]:
    text, _ = parse_html(body)
    flat = " ".join(text.split())
    return (flat if len(flat) <= size else flat[: size - 1] + "…"), plain_length(body)


async def _context(ctx: Ctx, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    """Everything the draft card shows; the recipients are counted by the service (which checks the role)."""
    draft = _draft(data, at)
    recipients = await ctx.services.campaigns.audience_size(ctx.user_id, draft)
    community = await ctx.services.communities.get(draft.community_id)
    names = {b.id: b.name for b in community.buildings}
    excerpt, length = _excerpt(draft.body) if draft.body else ("", 0)
    audience = draft.audience
    context: dict[str, Any] = {
        "community": community.name,
        "template": draft.template,
        "excerpt": excerpt,
        "length": length,
        "photo": draft.photo is not None,
        "track": draft.track,
        "buttons": [b.to_json() for b in draft.buttons],
        "audience": {
            "kind": audience.kind.value,
            "buildings": [names.get(b, str(b)) for b in audience.buildings],
            "track": audience.track,
            "role": audience.role.value if audience.role else None,
        },
        "recipients": recipients,
        "urgent": draft.urgent,
        "paid": draft.paid,
        "cost": ctx.services.campaigns.cost(recipients),
        "per_message": PAID_STARS_PER_MESSAGE,
        "rate": PAID_RATE,
        "weekly": draft.repeat_weekly,
        "when": None,
        "note": None,
    }
    return context | _when(ctx, community, at)


def _when(ctx: Ctx, community: Community, at: datetime | None) -> dict[str, Any]:
    zone = ctx.services.campaigns.zone(community)
    if at is None:
        return {"zone": zone.key, "when": None, "weekday": None, "clock": None}
    local = at.astimezone(zone)
    return {
        "zone": zone.key,
        "when": local.strftime("%Y-%m-%d %H:%M"),
        "weekday": local.isoweekday(),
        "clock": local.strftime("%H:%M"),
    }


async def _scheduled_context(
    ctx: Ctx, data: dict[str, Any], campaign_id: int, recipients: int, at: datetime
) -> dict[str, Any]:
    community = await ctx.services.communities.get(int(data["c"]))
    context = {"id": campaign_id, "recipients": recipients, "groups": _groups(data), "weekly": data["weekly"]}
    return context | _when(ctx, community, at)


async def _card(ctx: Ctx, data: dict[str, Any], *, edit: bool, note: str | None = None) -> list[Action]:
    """The draft card (counted and checked first, then the draft is kept)."""
    context = await _context(ctx, data) | {"note": note}
    await ctx.set_state(DRAFT, ttl=TTL, **data)
    return [_say(edit, "card", context, _card_buttons(ctx, data))]


def _card_buttons(ctx: Ctx, data: dict[str, Any]) -> Keyboard:
    other = next(loc for loc in LOCALES if loc != ctx.locale) if ctx.locale in LOCALES else LOCALES[0]
    return keyboard(
        [
            Button(L + "text", data=router.data("edit")),
            Button(L + "photo", data=router.data("photo")),
            Button(L + "track_menu", data=router.data("track")),
        ],
        [Button(L + "buttons", data=router.data("btns")), Button(L + "audience_menu", data=router.data("aud"))],
        [
            Button(L + "urgent", data=router.data("urgent"), label_context={"on": bool(data.get("urgent"))}),
            Button(L + "weekly", data=router.data("weekly"), label_context={"on": bool(data.get("weekly"))}),
            Button(L + "paid", data=router.data("paid"), label_context={"on": bool(data.get("paid"))}),
        ],
        [
            Button(L + "preview", data=router.data("prev", ctx.locale)),
            Button(L + "preview_in", data=router.data("prev", other), label_context={"locale": other}),
        ],
        [Button(L + "send", data=router.data("send")), Button(L + "schedule", data=router.data("sched"))],
        [Button(L + "discard", data=router.data("discard"))],
    )


async def _buttons_screen(ctx: Ctx, data: dict[str, Any], note: str | None = None) -> Action:
    quiz = [Button(L + "add_quiz", data=router.data("addquiz", t), label_context={"track": t}) for t in TRACKS]
    rows: list[list[Button]] = [quiz[:2], quiz[2:]]
    rows.append([Button(L + "add_rewards", data=router.data("addbtn", "rewards")),
                 Button(L + "add_report", data=router.data("addbtn", "report"))])  # fmt: skip
    activities = await _activities(ctx, data)
    rows += [[Button(L + "add_activity", data=router.data("addact", a), label_context={"title": t})]
             for a, t in activities]  # fmt: skip
    rows.append([Button(L + "add_url", data=router.data("addbtn", "url"))])
    if data["buttons"]:
        rows.append([Button(L + "clear_buttons", data=router.data("clrbtn"))])
    rows.append([_back()])
    context = {"buttons": data["buttons"], "max": BUTTONS_MAX, "note": note, "activities": bool(activities)}
    return EditText(T + "buttons_menu", context, buttons=keyboard(*rows))


async def _activities(ctx: Ctx, data: dict[str, Any]) -> list[tuple[int, str]]:
    """(id, title) of the draft's community's volunteer activities with shifts to come (the organiser's own
    community: the volunteer desk lists that one)."""
    if ctx.resident is None or ctx.resident.community_id != int(data["c"]):
        return []
    _, views = await ctx.services.volunteer_desk.activities(ctx.user_id)
    found = {v.activity.id: v.activity.title for v in views if v.activity.community_id == int(data["c"])}
    return list(found.items())[:ACTIVITY_BUTTONS]


def _encode(ref: ActionRef, args: tuple[int | str, ...]) -> str:
    """Callback data of a declared action (a notice's button may name another feature's router)."""
    codec = CallbackCodec()
    codec.register(ref.namespace, ref.action, *ref.arg_types)
    return codec.encode(ref.namespace, ref.action, *args)


async def _buildings_screen(ctx: Ctx, data: dict[str, Any]) -> Action:
    community = await ctx.services.communities.get(int(data["c"]))
    pick = set(data["pick"])
    buttons = [
        Button(L + "building", data=router.data("bld", b.id), label_context={"name": b.name, "on": b.id in pick})
        for b in community.buildings
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    done = Button(L + "buildings_done", data=router.data("blddone"))
    back = Button(L + "back_audience", data=router.data("aud"))
    chosen = [b.name for b in community.buildings if b.id in pick]
    return EditText(T + "buildings_menu", {"chosen": chosen}, buttons=keyboard(*rows, [done, back]))


def _photo_context(data: dict[str, Any], *, hint: bool = False) -> dict[str, Any]:
    return {"has_photo": bool(data.get("photo")), "limit": CAPTION_BODY_LIMIT, "hint": hint}


def _photo_buttons(data: dict[str, Any]) -> Keyboard:
    rows = [[Button(L + "remove_photo", data=router.data("nophoto"))]] if data.get("photo") else []
    return keyboard(*rows, [_back()])


def _back() -> Button:
    return Button(L + "back", data=router.data("card"))


def _say(edit: bool, name: str, context: dict[str, Any], buttons: Keyboard = ()) -> Action:
    if edit:
        return EditText(T + name, context, buttons=buttons)
    return SendText(T + name, context, buttons=buttons)


def _gone() -> list[Action]:
    return [AnswerCallback(T + "gone", alert=True)]
