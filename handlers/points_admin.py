"""Points for staff: /verify at a service point, /grant and /deduct, and the rewards catalogue dialog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, Button, EditText, Keyboard, SendText, keyboard
from bot.conversation.router import Router
from bot.domain.rewards import Reward
from bot.domain.roles import Role

router = Router("pta")
ORGANISER = Role.ORGANISER
ASK = "pta.ask"
ADD = "pta.add"
ADD_STEPS = ("name_zh", "name_en", "cost", "stock")
UNLIMITED = ("-", "不限", "无限", "unlimited")


@router.command("verify", role=Role.SERVICE_POINT, private_only=True)
async def verify(ctx: Ctx) -> Sequence[Action]:
    """``/verify CODE``: the service point hands the reward over once the code checks out."""
    code = ctx.incoming.args.strip()
    if not code:
        return [SendText("points/verify_usage")]
    ticket = await ctx.services.redemptions.verify(ctx.user_id, code)
    return [SendText("points/verified", {"ticket": ticket})]


@router.command("grant", role=ORGANISER, private_only=True)
async def grant(ctx: Ctx) -> Sequence[Action]:
    """``/grant <telegram_id> <points> <reason>``."""
    return await _manual(ctx, "grant", ctx.services.points.grant, "points/granted")


@router.command("deduct", role=ORGANISER, private_only=True)
async def deduct(ctx: Ctx) -> Sequence[Action]:
    """``/deduct <telegram_id> <points> <reason>``: a reversal, never below zero."""
    return await _manual(ctx, "deduct", ctx.services.points.reverse, "points/deducted")


async def _manual(
    ctx: Ctx, command: str, apply: Callable[[int, int, int, str, str], Awaitable[int]], template: str
) -> Sequence[Action]:
    """Both manual commands: parse, apply through the points service (audited there), report the new balance."""
    parsed = _manual_args(ctx.incoming.args)
    if parsed is None:
        return [SendText("points/manual_usage", {"command": command})]
    target, points, note = parsed
    balance = await apply(ctx.user_id, target, points, note, _key(ctx))
    return [SendText(template, {"target": target, "points": points, "balance": balance, "note": note})]


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
    """One question per message: Chinese name, English name, cost, stock ("-" for unlimited)."""
    data, text = ctx.data, (ctx.incoming.text or "").strip()
    step = data["step"]
    ok, value = _add_value(step, text)
    if not ok:
        return [SendText("points/admin_add", {"step": step, "invalid": True})]
    data[step] = value
    following = ADD_STEPS.index(step) + 1
    if following < len(ADD_STEPS):
        await ctx.set_state(ADD, **{**data, "step": ADD_STEPS[following]})
        return [SendText("points/admin_add", {"step": ADD_STEPS[following], "invalid": False})]
    await ctx.clear_state()
    reward = await ctx.services.rewards.add(ctx.user_id, data["name_zh"], data["name_en"], data["cost"], data["stock"])
    return [SendText("points/admin_reward", {"reward": reward, "saved": True}, buttons=_reward_buttons(reward))]


def _manual_args(args: str) -> tuple[int, int, str] | None:
    parts = args.split(maxsplit=2)
    if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1]), parts[2].strip()


def _key(ctx: Ctx) -> str:
    """What the organiser did: this message (chat, message id, Telegram's date stamp) grants once.

    Not the update id: update ids start again (a restarted sandbox, or Telegram after a week without updates), and
    a second /grant after that is a new grant. The inbox already makes a redelivered update count once.
    """
    inc = ctx.incoming
    return f"{ctx.user_id}:{inc.chat_id}:{inc.message_id}:{inc.sent_at}"


def _number(text: str | None) -> int | None:
    value = (text or "").strip()
    return int(value) if value.isdigit() and len(value) <= 7 else None


def _add_value(step: str, text: str) -> tuple[bool, str | int | None]:
    """(acceptable, value) for one add-dialog answer; stock "-" means unlimited (None)."""
    if step in ("name_zh", "name_en"):
        return bool(text), text[:48]
    if step == "stock" and text.lower() in UNLIMITED:
        return True, None
    number = _number(text)
    return number is not None and (step != "cost" or number >= 1), number


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
