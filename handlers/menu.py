"""The main menu, /help, /cancel and the answers for features that are still being built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, SendText, keyboard
from bot.conversation.router import Handler, Needs, Router
from bot.domain.errors import NeedsConsent
from bot.domain.roles import STAFF, Role

router = Router("menu")

# Order of the main menu; each entry is a feature key with a label ``menu.<key>``.
FEATURES = ("learn", "report", "volunteer", "points", "survey", "proposals", "notices", "settings")
# Features that have landed register their entry point with @feature("key"); the rest say "coming soon".
ENTRIES: dict[str, tuple[Handler, Needs]] = {}
MenuMaker = Callable[[Ctx], Awaitable[Action]]
TextReader = Callable[[Ctx], Awaitable[Sequence[Action] | None]]
# Roles with a menu of their own (a service point's counter): the menu, and what free text means to them
# (None: the usual answer). Registered by the feature with role_menu().
ROLE_MENUS: dict[Role, tuple[MenuMaker, TextReader]] = {}


def role_menu(role: Role, menu: MenuMaker, text: TextReader) -> None:
    """Give holders of ``role`` ``menu`` instead of the residents' one, and let ``text`` read their free text."""
    ROLE_MENUS[role] = (menu, text)


def feature(key: str, needs: Needs = Needs.NOTHING) -> Callable[[Handler], Handler]:
    """Make ``handler`` what the main-menu button ``key`` opens; ``needs`` is checked here, as for a route."""
    if key not in FEATURES:
        raise ValueError(f"not a main-menu feature: {key}")

    def register(handler: Handler) -> Handler:
        ENTRIES[key] = (handler, needs)
        return handler

    return register


async def main_menu(ctx: Ctx) -> Action:
    """The main menu for this person (read-only hint when they have not consented)."""
    own = _own_menu(ctx)
    if own is not None:
        return await own[0](ctx)
    context = {"name": _name(ctx), "registered": bool(ctx.resident and ctx.resident.is_registered)}
    return SendText("menu/main", context, buttons=keyboard(*feature_rows()))


def feature_rows() -> list[list[Button]]:
    """The residents' feature buttons, two to a row."""
    return [[_feature_button(k) for k in FEATURES[i : i + 2]] for i in range(0, len(FEATURES), 2)]


async def place(ctx: Ctx) -> dict[str, Any]:
    """Community and building names of the sender, for templates."""
    resident = ctx.resident
    if resident is None or resident.community_id is None:
        return {"community": None, "building": None}
    community = await ctx.services.communities.get(resident.community_id)
    building = next((b.name for b in community.buildings if b.id == resident.building_id), None)
    return {"community": community.name, "building": building}


@router.command("menu", in_menu=True)
async def show_menu(ctx: Ctx) -> Sequence[Action]:
    return [await main_menu(ctx)]


@router.callback("open", str)
async def open_feature(ctx: Ctx) -> Sequence[Action]:
    """A main-menu button; features not built yet say so honestly."""
    key = str(ctx.args[0])
    if key not in FEATURES:
        return [AnswerCallback("errors/stale_button", alert=True)]
    entry = ENTRIES.get(key)
    if entry is not None:
        handler, needs = entry
        if not needs.met_by(ctx.resident):
            raise NeedsConsent()
        return await handler(ctx)
    return [AnswerCallback(), SendText("menu/coming_soon", {"feature": key})]


@router.command("help", in_menu=True)
async def help_(ctx: Ctx) -> Sequence[Action]:
    resident = ctx.resident
    staff = bool(resident and any(g.role in STAFF for g in resident.roles))
    merchant = bool(resident and resident.has_role(Role.SERVICE_POINT))
    return [
        SendText(
            "menu/help",
            {"staff": staff, "merchant": merchant, "registered": bool(resident and resident.is_registered)},
        )
    ]


@router.command("cancel", in_menu=True)
async def cancel(ctx: Ctx) -> Sequence[Action]:
    had_dialog = ctx.state is not None
    await ctx.clear_state()
    # A dialog may have shown a reply keyboard ("send my location"): it goes with the dialog.
    return [SendText("menu/cancelled", {"had_dialog": had_dialog}, remove_reply_keyboard=had_dialog)]


@router.on("unknown")
async def unknown_command(ctx: Ctx) -> Sequence[Action]:
    if not ctx.incoming.is_private:
        return []  # other bots' commands in a group are not ours to answer
    return [SendText("errors/unknown_command", {"command": ctx.incoming.command or ""})]


@router.on("text")
async def free_text(ctx: Ctx) -> Sequence[Action]:
    """Text outside any dialog: point to the menu rather than guess."""
    own = _own_menu(ctx)
    if own is not None and (answer := await own[1](ctx)) is not None:
        return answer
    return [SendText("menu/not_understood"), await main_menu(ctx)]


@router.on("too_long")
async def too_long(ctx: Ctx) -> Sequence[Action]:
    return [SendText("errors/too_long", {"limit": 4096})]


def _feature_button(key: str) -> Button:
    return Button(f"menu.{key}", data=router.data("open", key))


def _own_menu(ctx: Ctx) -> tuple[MenuMaker, TextReader] | None:
    resident = ctx.resident
    held = {g.role for g in resident.roles} if resident else set()
    return next((entry for role, entry in ROLE_MENUS.items() if role in held), None)


def _name(ctx: Ctx) -> str:
    if ctx.resident and ctx.resident.display_name:
        return ctx.resident.display_name
    return ctx.incoming.first_name
