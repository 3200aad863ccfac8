"""/start, language, consent, community and building: how a resident joins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, Button, EditText, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.reports import TASKS_PAYLOAD
from bot.domain.residents import CONSENT_VERSION, LOCALES, Community, parse_deep_link
from handlers import menu, proposals, quiz, report_staff, reports

router = Router("onb")
PENDING = "onb.pending"


@router.command("start", in_menu=True)
async def start(ctx: Ctx) -> Sequence[Action]:
    """Welcome; a poster's deep link pre-fills community and building."""
    if not ctx.incoming.is_private:
        return [
            SendText(
                "group/open_private",
                {"bot": ctx.settings.get("bot_username", "")},
                buttons=_private_button(ctx),
            )
        ]
    if ctx.incoming.deep_link == reports.START_PAYLOAD and ctx.resident is not None and ctx.resident.is_registered:
        return await reports.report(ctx)  # /report sent in a group: its button opened this chat
    if ctx.incoming.deep_link == proposals.START_PAYLOAD and ctx.resident is not None and ctx.resident.is_registered:
        return await proposals.propose(ctx)  # /propose sent in a group (or a group notice): its button opened this chat
    link = parse_deep_link(ctx.incoming.deep_link)
    pending: dict[str, Any] = {"community": link.community_code, "building": link.building_code} if link else {}
    resident = ctx.resident
    if ctx.incoming.deep_link == TASKS_PAYLOAD:  # a grid worker's link from the staff group: their /tasks
        if resident is not None and resident.has_consent:
            return await report_staff.task_list(ctx)
        pending["then"] = TASKS_PAYLOAD  # shown right after consent
    if resident is not None and resident.is_registered:
        return [await menu.main_menu(ctx)]  # moving building is done in /settings, not by scanning a poster
    await ctx.set_state(PENDING, **pending)
    if resident is not None and resident.has_consent:
        return await _choose_community(ctx, edit=False)
    return [SendText("onboarding/choose_language", buttons=_language_buttons())]


@router.callback("begin")
async def begin(ctx: Ctx) -> Sequence[Action]:
    """The "register" button shown when a feature needs registration."""
    if ctx.resident is not None and ctx.resident.has_consent:
        return await _choose_community(ctx, edit=True)
    return [EditText("onboarding/choose_language", buttons=_language_buttons())]


@router.callback("lang", str)
async def choose_language(ctx: Ctx) -> Sequence[Action]:
    locale = str(ctx.args[0])
    resident = await ctx.services.residents.set_locale(ctx.user_id, locale)
    ctx.locale = resident.locale
    if resident.has_consent:
        return [EditText("onboarding/language_set"), await menu.main_menu(ctx)]
    return [EditText("onboarding/privacy", {"version": CONSENT_VERSION}, buttons=_consent_buttons())]


@router.callback("consent", int)
async def consent(ctx: Ctx) -> Sequence[Action]:
    if ctx.args[0] != 1:
        await ctx.clear_state()
        return [EditText("onboarding/consent_refused"), await menu.main_menu(ctx)]
    ctx.resident = await ctx.services.residents.give_consent(ctx.user_id, ctx.incoming.first_name, ctx.locale)
    if ctx.data.get("then") == TASKS_PAYLOAD:  # came by the link for a grid worker: their tasks first
        await ctx.clear_state()
        return [EditText("reports/staff/welcome"), *await report_staff.task_list(ctx)]
    return await _choose_community(ctx, edit=True)


@router.callback("community", int, needs=Needs.CONSENT)
async def choose_community(ctx: Ctx) -> Sequence[Action]:
    community = await ctx.services.communities.get(int(ctx.args[0]))
    return [
        EditText(
            "onboarding/choose_building",
            {"community": community.name},
            buttons=building_buttons(community, "building"),
        )
    ]


@router.callback("building", int, int, needs=Needs.CONSENT)
async def choose_building(ctx: Ctx) -> Sequence[Action]:
    community_id, building_id = int(ctx.args[0]), int(ctx.args[1])
    ctx.resident = await ctx.services.residents.join(ctx.user_id, community_id, building_id or None)
    await ctx.clear_state()
    credited = await quiz.credit_after_join(ctx)  # group-quiz answers given before registering
    return [EditText("onboarding/joined", await menu.place(ctx)), *credited, await menu.main_menu(ctx)]


async def _choose_community(ctx: Ctx, *, edit: bool) -> Sequence[Action]:
    """Skip the questions a poster already answered; otherwise list communities."""
    pending = ctx.data
    community = await ctx.services.communities.by_code(pending["community"]) if pending.get("community") else None
    if community is not None:
        building = community.building(pending.get("building") or "")
        if building is not None:
            ctx.resident = await ctx.services.residents.join(ctx.user_id, community.id, building.id)
            await ctx.clear_state()
            first = EditText if edit else SendText
            credited = await quiz.credit_after_join(ctx)
            return [first("onboarding/joined", await menu.place(ctx)), *credited, await menu.main_menu(ctx)]
        buttons = building_buttons(community, "building")
        return [_say(edit, "onboarding/choose_building", {"community": community.name}, buttons)]
    communities = await ctx.services.communities.list()
    if not communities:
        return [_say(edit, "onboarding/no_communities", {}, ())]
    rows = [[Button("plain", data=router.data("community", c.id), label_context={"text": c.name})] for c in communities]
    return [
        _say(
            edit,
            "onboarding/choose_community",
            {"unknown_link": bool(pending.get("community"))},
            keyboard(*rows),
        )
    ]


def building_buttons(community: Community, action: str, namespace: Router = router) -> tuple[tuple[Button, ...], ...]:
    """Buildings three to a row, and "no building" for people who'd rather not say."""
    buttons = [
        Button("plain", data=namespace.data(action, community.id, b.id), label_context={"text": b.name})
        for b in community.buildings
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append([Button("onboarding.no_building", data=namespace.data(action, community.id, 0))])
    return keyboard(*rows)


def _say(edit: bool, template: str, context: dict[str, object], buttons: tuple[tuple[Button, ...], ...]) -> Action:
    return EditText(template, context, buttons) if edit else SendText(template, context, buttons)


def _language_buttons() -> tuple[tuple[Button, ...], ...]:
    return keyboard([Button(f"language.{loc}", data=router.data("lang", loc)) for loc in LOCALES])


def _consent_buttons() -> tuple[tuple[Button, ...], ...]:
    return keyboard(
        [
            Button("onboarding.agree", data=router.data("consent", 1)),
            Button("onboarding.disagree", data=router.data("consent", 0)),
        ]
    )


def _private_button(ctx: Ctx) -> tuple[tuple[Button, ...], ...]:
    bot = ctx.settings.get("bot_username", "")
    return keyboard([Button("group.open_private", url=f"https://t.me/{bot}?start")]) if bot else ()
