"""Points for staff: the service point's counter, /grant and /deduct, and the rewards catalogue dialog."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, Keyboard, SendText, keyboard
from bot.conversation.router import Router
from bot.domain.rewards import Reward, normalise_code
from bot.domain.roles import Role
from bot.services.points import Candidate
from handlers import menu

router = Router("pta")
ORGANISER = Role.ORGANISER
SERVICE_POINT = Role.SERVICE_POINT
ASK = "pta.ask"
ADD = "pta.add"
CODE = "pta.code"  # the service point pressed "verify a code": the next message is the code
PICK = "pta.pick"  # /grant or /deduct by name: waiting for the organiser to pick the person and confirm
ADD_STEPS = ("name_zh", "name_en", "cost", "stock", "place", "description", "limit")
OPTIONAL = ("description", "limit")  # these steps have a "skip" button
UNLIMITED = ("-", "不限", "无限", "unlimited")
MANUAL = ("grant", "deduct")


# ---- the service point's counter -------------------------------------------------------------------------------


async def counter_menu(ctx: Ctx) -> Action:
    """A service point's main menu: its two counter buttons first, then the residents' features."""
    name = (ctx.resident.display_name if ctx.resident else None) or ctx.incoming.first_name
    return SendText("points/counter_menu", {"name": name}, buttons=keyboard(_counter_row(), *menu.feature_rows()))


async def counter_text(ctx: Ctx) -> Sequence[Action] | None:
    """A service point's free text: a bare redemption code is verified as ``/verify CODE`` would; else not ours."""
    text = ctx.incoming.text or ""
    if not ctx.incoming.is_private or normalise_code(text) is None:
        return None
    return await _verify(ctx, text)


menu.role_menu(SERVICE_POINT, counter_menu, counter_text)


@router.command("verify", role=SERVICE_POINT, private_only=True)
async def verify(ctx: Ctx) -> Sequence[Action]:
    """``/verify CODE``: the service point hands the reward over once the code checks out."""
    code = ctx.incoming.args.strip()
    if not code:
        return [SendText("points/verify_usage")]
    return await _verify(ctx, code)


@router.callback("code", role=SERVICE_POINT)
async def ask_code(ctx: Ctx) -> Sequence[Action]:
    await ctx.set_state(CODE)
    return [AnswerCallback(), SendText("points/verify_ask")]


@router.step(CODE)
async def code_given(ctx: Ctx) -> Sequence[Action]:
    text = (ctx.incoming.text or "").strip()
    if normalise_code(text) is None:
        return [SendText("points/verify_ask", {"invalid": True})]
    actions = await _verify(ctx, text)  # a wrong code raises: the dialog stays open for the next try
    await ctx.clear_state()
    return actions


@router.callback("today", role=SERVICE_POINT)
async def today(ctx: Ctx) -> Sequence[Action]:
    tickets = await ctx.services.redemptions.today(ctx.user_id)
    return [AnswerCallback(), SendText("points/today", {"tickets": tickets}, buttons=keyboard(_counter_row()))]


async def _verify(ctx: Ctx, code: str) -> Sequence[Action]:
    ticket = await ctx.services.redemptions.verify(ctx.user_id, code)
    return [SendText("points/verified", {"ticket": ticket}, buttons=keyboard(_counter_row()))]


def _counter_row() -> list[Button]:
    return [Button("points.verify", data=router.data("code")), Button("points.today", data=router.data("today"))]


# ---- /grant and /deduct ----------------------------------------------------------------------------------------


@router.command("grant", role=ORGANISER)
async def grant(ctx: Ctx) -> Sequence[Action]:
    """``/grant <points> <reason>`` replying to someone in a group, ``/grant <name> ...`` or ``/grant <id> ...``."""
    return await _manual(ctx, "grant")


@router.command("deduct", role=ORGANISER)
async def deduct(ctx: Ctx) -> Sequence[Action]:
    """The same forms as /grant: a reversal, never below zero."""
    return await _manual(ctx, "deduct")


async def _manual(ctx: Ctx, command: str) -> Sequence[Action]:
    """Who: the author of the replied-to message, a Telegram id, or a choice among residents found by name."""
    inc = ctx.incoming
    parsed = _manual_args(inc.args, inc.reply_to_user_id)
    if parsed is None:
        return [SendText("points/manual_usage", {"command": command}, chat_id=ctx.user_id)]
    who, points, note = parsed
    if isinstance(who, int):
        return await _apply_now(ctx, command, who, points, note)
    if not inc.is_private:
        return [SendText("points/manual_usage", {"command": command}, chat_id=ctx.user_id)]
    found = await ctx.services.points.find(ctx.user_id, who)
    if not found:
        return [SendText("points/nobody_found", {"name": who, "command": command})]
    await ctx.set_state(PICK, command=command, points=points, note=note, key=_key(ctx))
    rows = [[_person_button(p)] for p in found]
    context = {"name": who, "command": command, "points": points, "note": note, "count": len(found)}
    return [SendText("points/pick_person", context, buttons=keyboard(*rows, [_drop_button()]))]


@router.callback("pick", int, role=ORGANISER)
async def pick(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data if ctx.state and ctx.state.name == PICK else None
    if data is None:
        return [AnswerCallback("errors/stale_button", alert=True)]
    person = await ctx.services.points.person(ctx.user_id, int(ctx.args[0]))
    confirm = Button(f"points.confirm_{data['command']}", data=router.data("apply", person.telegram_id))
    context = {"person": person, "command": data["command"], "points": data["points"], "note": data["note"]}
    return [EditText("points/confirm_manual", context, keyboard([confirm, _drop_button()]))]


@router.callback("apply", int, role=ORGANISER)
async def apply_picked(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data if ctx.state and ctx.state.name == PICK else None
    if data is None:
        return [AnswerCallback("errors/stale_button", alert=True)]
    await ctx.clear_state()
    # The key is the command message's: a second tap on confirm, or another card of that command, counts once.
    template, context = await _apply(ctx, data["command"], int(ctx.args[0]), data["points"], data["note"], data["key"])
    return [EditText(template, context)]


@router.callback("drop", role=ORGANISER)
async def drop(ctx: Ctx) -> Sequence[Action]:
    if ctx.state and ctx.state.name == PICK:
        await ctx.clear_state()
    return [EditText("points/manual_dropped")]


async def _apply_now(ctx: Ctx, command: str, target: int, points: int, note: str) -> Sequence[Action]:
    """A reply or an id names the person: apply at once; in a group the organiser is answered privately."""
    template, context = await _apply(ctx, command, target, points, note, _key(ctx))
    if ctx.incoming.is_private:
        return [SendText(template, context)]
    told: list[Action] = [SendText(template, context, chat_id=ctx.user_id)]
    if command == "grant":  # a thank-you where it happened; a deduction is not announced
        told.insert(0, SendText("points/thanks", context))
    return told


async def _apply(ctx: Ctx, command: str, target: int, points: int, note: str, key: str) -> tuple[str, dict[str, Any]]:
    """Apply through the points service (audited there); the confirmation names the person."""
    person = await ctx.services.points.person(ctx.user_id, target)
    service = ctx.services.points
    apply = service.grant if command == "grant" else service.reverse
    balance = await apply(ctx.user_id, target, points, note, key)
    context = {"person": person, "points": points, "balance": balance, "note": note}
    return ("points/granted" if command == "grant" else "points/deducted"), context


def _manual_args(args: str, reply_to: int | None) -> tuple[int | str, int, str] | None:
    """(who, points, reason): who is the replied-to person's or a typed Telegram id, or a name to look up."""
    if reply_to is not None:
        head, _, note = args.partition(" ")
        if head.isdigit() and note.strip():
            return reply_to, int(head), note.strip()
    parts = args.split(maxsplit=2)
    if len(parts) < 3 or not parts[1].isdigit() or not parts[2].strip():
        return None
    return (int(parts[0]) if parts[0].isdigit() else parts[0]), int(parts[1]), parts[2].strip()


def _key(ctx: Ctx) -> str:
    """What the organiser did: this message (chat, message id, Telegram's date stamp) grants once.

    Not the update id: update ids start again (a restarted sandbox, or Telegram after a week without updates), and
    a second /grant after that is a new grant. The inbox already makes a redelivered update count once.
    """
    inc = ctx.incoming
    return f"{ctx.user_id}:{inc.chat_id}:{inc.message_id}:{inc.sent_at}"


def _person_button(person: Candidate) -> Button:
    context: dict[str, Any] = {"name": person.name or str(person.telegram_id), "building": person.building}
    return Button("points.person", data=router.data("pick", person.telegram_id), label_context=context)


def _drop_button() -> Button:
    return Button("points.drop", data=router.data("drop"))


# ---- the rewards catalogue -------------------------------------------------------------------------------------


@router.command("rewardsadmin", role=ORGANISER, private_only=True)
async def manage_command(ctx: Ctx) -> Sequence[Action]:
    rewards = await ctx.services.rewards.manage(ctx.user_id)
    return [SendText("points/admin_list", {"rewards": rewards}, buttons=_list_buttons(ctx, rewards))]


@router.callback("list", role=ORGANISER)
async def manage(ctx: Ctx) -> Sequence[Action]:
    rewards = await ctx.services.rewards.manage(ctx.user_id)
    return [EditText("points/admin_list", {"rewards": rewards}, _list_buttons(ctx, rewards))]


@router.callback("show", int, role=ORGANISER)
async def show(ctx: Ctx) -> Sequence[Action]:
    reward = await ctx.services.rewards.get(ctx.user_id, int(ctx.args[0]))
    return [EditText("points/admin_reward", {"reward": reward}, _reward_buttons(reward))]


@router.callback("active", int, int, role=ORGANISER)
async def set_active(ctx: Ctx) -> Sequence[Action]:
    reward = await ctx.services.rewards.edit(ctx.user_id, int(ctx.args[0]), "active", int(ctx.args[1]))
    return [EditText("points/admin_reward", {"reward": reward}, _reward_buttons(reward))]


@router.callback("ask", int, str, role=ORGANISER)
async def ask_number(ctx: Ctx) -> Sequence[Action]:
    """Cost, stock or restock: the next message is the number."""
    await ctx.set_state(ASK, reward=int(ctx.args[0]), field=str(ctx.args[1]))
    return [EditText("points/admin_ask", {"field": str(ctx.args[1])})]


@router.step(ASK)
async def number_given(ctx: Ctx) -> Sequence[Action]:
    value, data = _number(ctx.incoming.text), ctx.data
    if value is None:
        return [SendText("points/admin_ask", {"field": data["field"], "invalid": True})]
    await ctx.clear_state()
    reward = await ctx.services.rewards.edit(ctx.user_id, data["reward"], data["field"], value)
    return [SendText("points/admin_reward", {"reward": reward, "saved": True}, buttons=_reward_buttons(reward))]


@router.callback("add", role=ORGANISER)
async def add(ctx: Ctx) -> Sequence[Action]:
    await ctx.set_state(ADD, step=ADD_STEPS[0])
    return [EditText("points/admin_add", {"step": ADD_STEPS[0], "invalid": False})]


@router.step(ADD)
async def add_step(ctx: Ctx) -> Sequence[Action]:
    """One question per message: names, cost, stock ("-": unlimited), pickup place; description and limit optional."""
    data, text = ctx.data, (ctx.incoming.text or "").strip()
    step = data["step"]
    ok, value = _add_value(step, text)
    if not ok:
        return [_add_prompt(step, invalid=True)]
    return await _add_next(ctx, {**data, step: value})


@router.callback("skip", str, role=ORGANISER)
async def skip(ctx: Ctx) -> Sequence[Action]:
    """ "Skip" under an optional question: only the question being asked now (an older card's button is stale)."""
    data, step = ctx.data, str(ctx.args[0])
    if not (ctx.state and ctx.state.name == ADD and data.get("step") == step and step in OPTIONAL):
        return [AnswerCallback("errors/stale_button", alert=True)]
    return [EditText("points/admin_add", {"step": step, "skipped": True}), *await _add_next(ctx, {**data, step: None})]


async def _add_next(ctx: Ctx, data: dict[str, Any]) -> Sequence[Action]:
    following = ADD_STEPS.index(data["step"]) + 1
    if following < len(ADD_STEPS):
        await ctx.set_state(ADD, **{**data, "step": ADD_STEPS[following]})
        return [_add_prompt(ADD_STEPS[following])]
    await ctx.clear_state()
    reward = await ctx.services.rewards.add(
        ctx.user_id,
        data["name_zh"],
        data["name_en"],
        data["cost"],
        data["stock"],
        place=data["place"],
        description=data.get("description"),
        limit=data.get("limit"),
    )
    return [SendText("points/admin_reward", {"reward": reward, "saved": True}, buttons=_reward_buttons(reward))]


def _add_prompt(step: str, *, invalid: bool = False) -> SendText:
    buttons = keyboard([Button("points.skip", data=router.data("skip", step))]) if step in OPTIONAL else ()
    return SendText("points/admin_add", {"step": step, "invalid": invalid}, buttons=buttons)


def _number(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.isdigit() and len(value) <= 7 else None


def _add_value(step: str, text: str) -> tuple[bool, str | int | None]:
    """(acceptable, value) for one add-dialog answer; stock or limit "-" means unlimited (None)."""
    if step in ("name_zh", "name_en"):
        return bool(text), text[:48]
    if step == "place":
        return bool(text), text[:64]
    if step == "description":
        return bool(text), text[:300]
    if step in ("stock", "limit") and text.lower() in UNLIMITED:
        return True, None
    number = _number(text)
    return number is not None and (step not in ("cost", "limit") or number >= 1), number


def _list_buttons(ctx: Ctx, rewards: list[Reward]) -> Keyboard:
    rows = [
        [
            Button(
                "points.admin_item",
                data=router.data("show", r.id),
                label_context={"name": r.title(ctx.locale), "active": r.active},
            )
        ]
        for r in rewards
    ]
    return keyboard(*rows, [Button("points.admin_add", data=router.data("add"))])


def _reward_buttons(reward: Reward) -> Keyboard:
    fields = [Button(f"points.admin_{f}", data=router.data("ask", reward.id, f)) for f in ("cost", "stock", "restock")]
    toggle = "deactivate" if reward.active else "activate"
    switch = Button(f"points.admin_{toggle}", data=router.data("active", reward.id, int(not reward.active)))
    return keyboard(fields, [switch, Button("points.back", data=router.data("list"))])
