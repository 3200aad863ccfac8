"""/settings: language and building."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, Button, EditText, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.residents import LOCALES
from handlers import menu, onboarding

router = Router("set")


@router.command("settings", private_only=True, in_menu=True)
async def settings_command(ctx: Ctx) -> Sequence[Action]:
    return await show(ctx)


@menu.feature("settings")
async def show(ctx: Ctx) -> Sequence[Action]:
    """Current settings with buttons to change them."""
    buttons = [[Button("settings.language", data=router.data("lang"))]]
    if ctx.resident and ctx.resident.has_consent:
        buttons.append([Button("settings.building", data=router.data("building"))])
    return [SendText("settings/show", {**await menu.place(ctx), "locale": ctx.locale}, buttons=keyboard(*buttons))]


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
