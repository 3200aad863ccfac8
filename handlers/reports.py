"""随手拍: a resident reports a problem — category, photos, place, nearby duplicates (+1), description, confirm.

Dialog state carries everything entered so far (photo file ids and stored keys included), so the dialog
resumes where it was after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.errors import InvalidInput, NeedsConsent
from bot.domain.geo import GeoPoint
from bot.domain.reports import ADDRESS_MAX, ADDRESS_MIN, MAX_PHOTOS, SKIP_REASONS, BadText, Draft, clean_text
from handlers import menu

router = Router("rp")
PHOTOS, WHERE, DESC, ANON = "rp.photos", "rp.where", "rp.desc", "rp.anon"
PENDING = "rp.pending"  # a photo sent outside any dialog, kept while its sender chooses a category
# /report in a group: its button opens the private chat with ``/start report``, which starts the dialog there.
START_PAYLOAD = "report"
TRACK_ORDER = ("civilised", "sanitary", "garden", "food_safety", None)


@router.command("report", needs=Needs.REGISTRATION, private_only=True, in_menu=True, start_payload=START_PAYLOAD)
async def report(ctx: Ctx) -> Sequence[Action]:
    """Start a report: categories grouped by track."""
    return [await _categories(ctx)]


@menu.feature("report", needs=Needs.REGISTRATION)
async def from_menu(ctx: Ctx) -> Sequence[Action]:
    return [AnswerCallback(), await _categories(ctx)]


@router.on("photo", needs=Needs.REGISTRATION)
async def photo_first(ctx: Ctx) -> Sequence[Action]:
    """A photo sent in the private chat outside any dialog is taken as the start of a report: the categories are
    asked for, and the photo (with its caption) goes into the report once one is chosen. Photos sent together (an
    album arrives as one message per photo) are kept together; the categories are asked for once."""
    waiting = list(ctx.data.get("first", [])) if ctx.state is not None and ctx.state.name == PENDING else []
    photo = {"file": ctx.incoming.photo_file_ids[-1], "size": ctx.incoming.file_size, "caption": ctx.incoming.text}
    waiting = [*waiting, photo][:MAX_PHOTOS]
    if len(waiting) > 1:
        await ctx.set_state(PENDING, first=waiting)
        return [SendText("reports/photo_waiting", {"count": len(waiting)})]
    choose = await _categories(ctx, photo_first=True)
    await ctx.set_state(PENDING, first=waiting)
    return [choose]


@router.callback("cat", str, needs=Needs.REGISTRATION)
async def category(ctx: Ctx) -> Sequence[Action]:
    chosen = ctx.services.reports.category(str(ctx.args[0]))
    waiting = ctx.data.get("first", []) if ctx.state is not None and ctx.state.name == PENDING else []
    await ctx.set_state(PHOTOS, cat=chosen.key, photos=[], keys=[])
    if not waiting:
        return [EditText("reports/ask_photos", _draft_context(ctx), buttons=_photo_buttons(chosen.photo_optional))]
    taken: list[Action] = []
    for photo in waiting:  # in the order they were sent; the last one's answer says how many there are
        taken = await _take_photo(ctx, photo["file"], photo.get("size"), photo.get("caption"))
    return [EditText("reports/ask_photos", _draft_context(ctx)), *taken]


@router.step(PHOTOS, needs=Needs.REGISTRATION)
async def photo(ctx: Ctx) -> Sequence[Action]:
    """Each photo (or image sent as a file) is checked, stripped of metadata and stored as it arrives; its caption,
    if any, becomes the description (checked like a typed one: the photo is kept either way)."""
    file_id = (ctx.incoming.photo_file_ids or (ctx.incoming.document_file_id,))[-1]
    if file_id is None:
        return [SendText("reports/ask_photos_hint", _draft_context(ctx))]
    return await _take_photo(ctx, file_id, ctx.incoming.file_size, ctx.incoming.text)


async def _take_photo(ctx: Ctx, file_id: str, size: int | None, caption_text: str | None) -> list[Action]:
    key = await ctx.services.reports.add_photo(file_id, len(ctx.data.get("keys", [])), size)
    data = ctx.data | {"photos": [*ctx.data["photos"], file_id], "keys": [*ctx.data["keys"], key]}
    caption: dict[str, Any] = {"caption_used": False, "caption_problem": None}
    if (caption_text or "").strip():
        try:
            data["desc"] = ctx.services.reports.description(caption_text or "")
            caption["caption_used"] = True
        except BadText as error:
            caption["caption_problem"] = error.context
    await ctx.set_state(PHOTOS, **data)
    context = _draft_context(ctx) | caption
    return [SendText("reports/photo_received", context, buttons=_photo_buttons(False, done=True))]


@router.callback("photos_done", needs=Needs.REGISTRATION)
async def photos_done(ctx: Ctx) -> Sequence[Action]:
    if ctx.state is None or ctx.state.name != PHOTOS:  # a report sent or cancelled already: nothing to go on with
        return [AnswerCallback("errors/stale_button", alert=True)]
    if not ctx.data.get("keys"):
        return [AnswerCallback("reports/ask_photos_hint", _draft_context(ctx), alert=True)]
    return await _ask_place(ctx)


@router.callback("skip", needs=Needs.REGISTRATION)
async def skip_photos(ctx: Ctx) -> Sequence[Action]:
    if ctx.state is None or ctx.state.name != PHOTOS:
        return [AnswerCallback("errors/stale_button", alert=True)]
    rows = [[Button(f"reports.skip.{r}", data=router.data("skipwhy", r))] for r in SKIP_REASONS]
    return [EditText("reports/ask_skip_reason", _draft_context(ctx), buttons=keyboard(*rows))]


@router.callback("skipwhy", str, needs=Needs.REGISTRATION)
async def skip_reason(ctx: Ctx) -> Sequence[Action]:
    reason = str(ctx.args[0])
    if reason not in SKIP_REASONS or not ctx.data.get("cat"):
        return [AnswerCallback("errors/stale_button", alert=True)]
    if not ctx.services.reports.category(ctx.data["cat"]).photo_optional:
        raise InvalidInput(field="photos", low=1)
    await ctx.set_state(PHOTOS, **ctx.data | {"skip": reason})
    return await _ask_place(ctx)


@router.step(WHERE, needs=Needs.REGISTRATION)
async def place(ctx: Ctx) -> Sequence[Action]:
    """A shared location, or a typed address."""
    where = ctx.incoming.location
    if where is not None:
        point = GeoPoint(where.latitude, where.longitude)
        return await _place_known(ctx, lat=point.latitude, lon=point.longitude)
    address = clean_text(ctx.incoming.text, ADDRESS_MIN, ADDRESS_MAX, "address")
    return await _place_known(ctx, address=address)


@router.callback("bld", int, needs=Needs.REGISTRATION)
async def building(ctx: Ctx) -> Sequence[Action]:
    return await _place_known(ctx, building=int(ctx.args[0]))


@router.callback("plus", int, needs=Needs.REGISTRATION)
async def plus_one(ctx: Ctx) -> Sequence[Action]:
    """我也遇到了: follow the open report instead of opening a duplicate."""
    outcome = await ctx.services.reports.follow(ctx.user_id, int(ctx.args[0]))
    await ctx.clear_state()
    return [EditText("reports/followed", {"ticket": outcome.report.ticket, "points": outcome.points})]


@router.callback("new", needs=Needs.REGISTRATION)
async def not_the_same(ctx: Ctx) -> Sequence[Action]:
    return await _ask_description(ctx, ctx.data, edit=True)


@router.step(DESC, needs=Needs.REGISTRATION)
async def description(ctx: Ctx) -> Sequence[Action]:
    text = ctx.services.reports.description(ctx.incoming.text)
    await ctx.set_state(ANON, **ctx.data | {"desc": text})
    if "anon" in ctx.data:  # changed at the confirm step: back to it
        return [await _confirm(ctx, edit=False)]
    return [_ask_anonymous()]


@router.callback("anon", int, needs=Needs.REGISTRATION)
async def anonymous(ctx: Ctx) -> Sequence[Action]:
    if ctx.state is None or ctx.state.name != ANON:
        return [AnswerCallback("errors/stale_button", alert=True)]
    await ctx.set_state(ANON, **ctx.data | {"anon": ctx.args[0] == 1})
    return [await _confirm(ctx, edit=True)]


@router.callback("redesc", needs=Needs.REGISTRATION)
async def change_description(ctx: Ctx) -> Sequence[Action]:
    """✏️ at the confirm step: type the description again (a photo's caption included)."""
    if ctx.state is None or ctx.state.name != ANON or "anon" not in ctx.data:
        return [AnswerCallback("errors/stale_button", alert=True)]
    await ctx.set_state(DESC, **ctx.data)
    return [EditText("reports/ask_description", _draft_context(ctx))]


@router.callback("submit", needs=Needs.REGISTRATION)
async def submit(ctx: Ctx) -> Sequence[Action]:
    if ctx.state is None or ctx.state.name != ANON or "anon" not in ctx.data:
        return [AnswerCallback("errors/stale_button", alert=True)]
    outcome = await ctx.services.reports.submit(ctx.user_id, _draft(ctx.data))
    await ctx.clear_state()
    context = await ctx.services.reports.context(outcome.report, ctx.locale)
    return [EditText("reports/submitted", context)]


@router.callback("cancel")
async def cancel(ctx: Ctx) -> Sequence[Action]:
    await ctx.clear_state()
    return [EditText("reports/cancelled")]


async def _categories(ctx: Ctx, *, photo_first: bool = False) -> Action:
    await ctx.clear_state()
    cats = ctx.services.reports.policy.categories
    ordered = sorted(cats, key=lambda c: TRACK_ORDER.index(c.track))
    buttons = [Button("plain", data=router.data("cat", c.key), label_context={"text": c.name(ctx.locale)})
               for c in ordered]  # fmt: skip
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    groups = [{"track": t, "names": [c.name(ctx.locale) for c in ordered if c.track == t]} for t in TRACK_ORDER]
    return SendText("reports/choose_category", {"groups": groups, "photo_first": photo_first}, buttons=keyboard(*rows))


async def _ask_place(ctx: Ctx) -> list[Action]:
    await ctx.set_state(WHERE, **ctx.data)
    community = await ctx.services.communities.get(_community_id(ctx))
    share = keyboard([Button("reports.btn.send_location", request_location=True)])
    rows = [[Button("plain", data=router.data("bld", b.id), label_context={"text": b.name})
             for b in community.buildings[i : i + 3]] for i in range(0, len(community.buildings), 3)]  # fmt: skip
    return [SendText("reports/ask_location", reply_keyboard=share),
            SendText("reports/ask_building", buttons=keyboard(*rows))]  # fmt: skip


async def _place_known(ctx: Ctx, **where: Any) -> list[Action]:
    """The place is known: offer +1 on open reports nearby, else ask for the description."""
    if ctx.state is None or ctx.state.name != WHERE:
        return [AnswerCallback("errors/stale_button", alert=True)]
    data = ctx.data | where
    await ctx.set_state(DESC, **data)
    point = GeoPoint(data["lat"], data["lon"]) if "lat" in data else None
    found = await ctx.services.reports.nearby(ctx.user_id, data["cat"], point, data.get("building"))
    first = SendText("reports/place_noted", remove_reply_keyboard=True)
    if not found:
        return [first, *await _ask_description(ctx, data, edit=False)]
    items = [{"ticket": n.report.ticket, "metres": n.metres and round(n.metres), "description": n.report.description,
              "status": n.report.status.value} for n in found]  # fmt: skip
    rows = [[Button("reports.btn.plus_one", data=router.data("plus", n.report.id),
                    label_context={"ticket": n.report.ticket})] for n in found]  # fmt: skip
    rows.append([Button("reports.btn.not_same", data=router.data("new"))])
    return [first, SendText("reports/nearby", {"items": items}, buttons=keyboard(*rows))]


async def _ask_description(ctx: Ctx, data: dict[str, Any], *, edit: bool) -> list[Action]:
    """Ask for the description, unless a photo's caption gave it: then on to the next question."""
    if data.get("desc"):
        await ctx.set_state(ANON, **data)
        return [_ask_anonymous(ctx.data["desc"])]
    await ctx.set_state(DESC, **data)
    return [(EditText if edit else SendText)("reports/ask_description", _draft_context(ctx))]


def _ask_anonymous(from_caption: str | None = None) -> Action:
    rows = [[Button("reports.btn.anonymous", data=router.data("anon", 1))],
            [Button("reports.btn.named", data=router.data("anon", 0))]]  # fmt: skip
    return SendText("reports/ask_anonymous", {"from_caption": from_caption}, buttons=keyboard(*rows))


async def _confirm(ctx: Ctx, *, edit: bool) -> Action:
    rows = [[Button("reports.btn.submit", data=router.data("submit")), Button("reports.btn.cancel",
                                                                            data=router.data("cancel"))],
            [Button("reports.btn.edit_description", data=router.data("redesc"))]]  # fmt: skip
    context = _draft_context(ctx) | await _place_names(ctx)
    return (EditText if edit else SendText)("reports/confirm", context, buttons=keyboard(*rows))


def _draft(data: dict[str, Any]) -> Draft:
    point = GeoPoint(data["lat"], data["lon"]) if "lat" in data else None
    return Draft(data["cat"], data.get("desc", ""), tuple(data.get("keys", ())), data.get("skip"), point,
                 data.get("building"), data.get("address"), bool(data.get("anon")))  # fmt: skip


def _draft_context(ctx: Ctx) -> dict[str, Any]:
    data = ctx.data
    chosen = ctx.services.reports.category(data["cat"]) if data.get("cat") else None
    return {"category": chosen.name(ctx.locale) if chosen else "", "optional": bool(chosen and chosen.photo_optional),
            "count": len(data.get("keys", [])), "max": 5, "skip": data.get("skip"), "description": data.get("desc"),
            "anonymous": bool(data.get("anon")), "address": data.get("address"),
            "has_location": "lat" in data}  # fmt: skip


def _community_id(ctx: Ctx) -> int:
    if ctx.resident is None or ctx.resident.community_id is None:
        raise NeedsConsent()
    return ctx.resident.community_id


async def _place_names(ctx: Ctx) -> dict[str, Any]:
    building_id = ctx.data.get("building")
    if not building_id:
        return {"building": None}
    community = await ctx.services.communities.get(_community_id(ctx))
    return {"building": next((b.name for b in community.buildings if b.id == building_id), None)}


def _photo_buttons(optional: bool, *, done: bool = False) -> tuple[tuple[Button, ...], ...]:
    rows = [[Button("reports.btn.photos_done", data=router.data("photos_done"))]] if done else []
    if optional:
        rows.append([Button("reports.btn.skip_photos", data=router.data("skip"))])
    rows.append([Button("reports.btn.cancel", data=router.data("cancel"))])
    return keyboard(*rows)
