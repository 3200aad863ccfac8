"""/settings: language, building and notices (opting out, quiet hours, track subscriptions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, Keyboard, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.campaigns import QUIET_CHOICES, TRACKS, Preferences
from bot.domain.residents import LOCALES
from handlers import menu, onboarding

router = Router("set")


@router.command("settings", private_only=True, in_menu=True)
async def settings_command(ctx: Ctx) -> Sequence[Action]:
    return await show(ctx)


@menu.feature("settings")
async def show(ctx: Ctx) -> Sequence[Action]:
    """Current settings with buttons to change them."""
    context, buttons = await _overview(ctx)
    return [SendText("settings/show", context, buttons=buttons)]


@router.callback("back")
async def back(ctx: Ctx) -> Sequence[Action]:
    """From a settings page back to the overview, in place."""
    context, buttons = await _overview(ctx)
    return [EditText("settings/show", context, buttons=buttons)]


@router.callback("lang")
async def language_menu(ctx: Ctx) -> Sequence[Action]:
    buttons = keyboard([Button(f"language.{loc}", data=router.data("setlang", loc)) for loc in LOCALES])
    return [EditText("onboarding/choose_language", buttons=buttons)]


@router.callback("setlang", str)
async def set_language(ctx: Ctx) -> Sequence[Action]:
    resident = await ctx.services.residents.set_locale(ctx.user_id, str(ctx.args[0]))
    ctx.locale, ctx.resident = resident.locale, resident
    return [EditText("onboarding/language_set"), await menu.main_menu(ctx)]


@router.callback("building", needs=Needs.REGISTRATION)
async def building_menu(ctx: Ctx) -> Sequence[Action]:
    assert ctx.resident is not None and ctx.resident.community_id is not None
    community = await ctx.services.communities.get(ctx.resident.community_id)
    buttons = onboarding.building_buttons(community, "setbld", router)
    return [EditText("onboarding/choose_building", {"community": community.name}, buttons=buttons)]


@router.callback("setbld", int, int, needs=Needs.REGISTRATION)
async def set_building(ctx: Ctx) -> Sequence[Action]:
    community_id, building_id = int(ctx.args[0]), int(ctx.args[1])
    ctx.resident = await ctx.services.residents.join(ctx.user_id, community_id, building_id or None)
    return [EditText("settings/building_set", await menu.place(ctx))]


# ---- notices ----------------------------------------------------------------------------------------------------


def notices_button() -> Button:
    """The button that opens the notice settings as a new message (offered under /notices)."""
    return Button("settings.notices", data=router.data("nt", 1))


@router.callback("nt", int, needs=Needs.REGISTRATION)
async def notices(ctx: Ctx) -> Sequence[Action]:
    """Notice settings: in place from /settings, as a new message from /notices (which stays as it was)."""
    prefs = await ctx.services.campaigns.preferences(ctx.user_id)
    if ctx.args[0] == 1:
        context, buttons = await _notices_page(ctx, prefs, None)
        return [AnswerCallback(), SendText("settings/notices", context, buttons=buttons)]
    return await _notices_changed(ctx, prefs, None)


@router.callback("ntonoff", int, needs=Needs.REGISTRATION)
async def notices_on_off(ctx: Ctx) -> Sequence[Action]:
    """Turn notices on (1) or off (0: none at all, urgent ones included)."""
    on = ctx.args[0] == 1
    prefs = await ctx.services.campaigns.set_notices(ctx.user_id, on)
    return await _notices_changed(ctx, prefs, {"what": "on" if on else "off"})


@router.callback("quiet", int, needs=Needs.REGISTRATION)
async def quiet_hours(ctx: Ctx) -> Sequence[Action]:
    """One of QUIET_CHOICES by its index (the last one turns quiet hours off)."""
    index = int(ctx.args[0])
    if not 0 <= index < len(QUIET_CHOICES):
        return [AnswerCallback("errors/stale_button", alert=True)]
    chosen = QUIET_CHOICES[index]
    prefs = await ctx.services.campaigns.set_quiet(ctx.user_id, chosen)
    return await _notices_changed(ctx, prefs, {"what": "quiet", "quiet": chosen.label() if chosen else None})


@router.callback("track", str, needs=Needs.REGISTRATION)
async def track(ctx: Ctx) -> Sequence[Action]:
    """Subscribe to a track, or unsubscribe."""
    name = str(ctx.args[0])
    if name not in TRACKS:
        return [AnswerCallback("settings/unknown_track", alert=True)]
    prefs = await ctx.services.campaigns.toggle_track(ctx.user_id, name)
    what = "subscribed" if name in prefs.tracks else "unsubscribed"
    return await _notices_changed(ctx, prefs, {"what": what, "track": name})


async def _notices_changed(ctx: Ctx, prefs: Preferences, changed: dict[str, Any] | None) -> list[Action]:
    context, buttons = await _notices_page(ctx, prefs, changed)
    return [EditText("settings/notices", context, buttons=buttons)]


async def _notices_page(
    ctx: Ctx, prefs: Preferences, changed: dict[str, Any] | None
) -> tuple[dict[str, Any], Keyboard]:
    assert ctx.resident is not None and ctx.resident.community_id is not None
    community = await ctx.services.communities.get(ctx.resident.community_id)
    context = {
        "changed": changed,
        "off": prefs.notices_off,
        "quiet": prefs.quiet.label() if prefs.quiet else None,
        "zone": ctx.services.campaigns.zone(community).key,
        "tracks": [t for t in TRACKS if t in prefs.tracks],
    }
    rows: list[list[Button]] = []
    if prefs.notices_off:
        rows.append([Button("settings.notices_on", data=router.data("ntonoff", 1))])
    else:
        quiet = [_quiet_button(i, prefs) for i in range(len(QUIET_CHOICES))]
        rows += [quiet[i : i + 2] for i in range(0, len(quiet), 2)]
        tracks = [Button("settings.track", data=router.data("track", t),
                         label_context={"track": t, "on": t in prefs.tracks}) for t in TRACKS]  # fmt: skip
        rows += [tracks[i : i + 2] for i in range(0, len(tracks), 2)]
        rows.append([Button("settings.notices_off", data=router.data("ntonoff", 0))])
    rows.append([Button("settings.back", data=router.data("back"))])
    return context, keyboard(*rows)


def _quiet_button(index: int, prefs: Preferences) -> Button:
    choice = QUIET_CHOICES[index]
    current = choice == prefs.quiet
    if choice is None:
        return Button("settings.quiet_off", data=router.data("quiet", index), label_context={"current": current})
    context = {"label": choice.label(), "current": current}
    return Button("settings.quiet", data=router.data("quiet", index), label_context=context)


async def _overview(ctx: Ctx) -> tuple[dict[str, Any], Keyboard]:
    registered = bool(ctx.resident and ctx.resident.is_registered)
    buttons = [[Button("settings.language", data=router.data("lang"))]]
    if ctx.resident and ctx.resident.has_consent:
        buttons.append([Button("settings.building", data=router.data("building"))])
    prefs = None
    if registered:
        buttons.append([Button("settings.notices", data=router.data("nt", 0))])
        prefs = await ctx.services.campaigns.preferences(ctx.user_id)
    notices = None
    if prefs is not None:
        notices = {"off": prefs.notices_off, "quiet": prefs.quiet.label() if prefs.quiet else None,
                   "tracks": [t for t in TRACKS if t in prefs.tracks]}  # fmt: skip
    context = {**await menu.place(ctx), "locale": ctx.locale, "notices": notices}
    return context, keyboard(*buttons)
