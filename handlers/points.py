"""文明积分 for residents: balance, rewards, redeeming with confirmation, my redemptions, rankings."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, Keyboard, SendPhoto, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.rewards import RedemptionStatus
from bot.services.points import Overview, Rankings
from bot.services.redemptions import AlreadyUsed, Ticket
from handlers import menu

router = Router("pts")
REGISTERED = Needs.REGISTRATION


@router.command("points", private_only=True, needs=REGISTERED, in_menu=True)
async def points_command(ctx: Ctx) -> Sequence[Action]:
    return [_overview(await ctx.services.points.overview(ctx.user_id), edit=False)]


@menu.feature("points", needs=REGISTERED)
async def open_points(ctx: Ctx) -> Sequence[Action]:
    """The main-menu entry (a button press): the points screen as a new message."""
    return [AnswerCallback(), _overview(await ctx.services.points.overview(ctx.user_id), edit=False)]


@router.callback("home", needs=REGISTERED)
async def home(ctx: Ctx) -> Sequence[Action]:
    return [_overview(await ctx.services.points.overview(ctx.user_id), edit=True)]


@router.callback("hide", int, needs=REGISTERED)
async def toggle_ranking(ctx: Ctx) -> Sequence[Action]:
    view = await ctx.services.points.set_hidden(ctx.user_id, bool(ctx.args[0]))
    return [AnswerCallback("points/hidden_set", {"hidden": view.hidden}), _overview(view, edit=True)]


@router.callback("shop", needs=REGISTERED)
async def shop(ctx: Ctx) -> Sequence[Action]:
    shelf = await ctx.services.rewards.shelf(ctx.user_id)
    rows = [[_reward_button(r.id, r.title(ctx.locale), r.cost)] for r in shelf.rewards]
    return [EditText("points/shop", {"shelf": shelf}, keyboard(*rows, [_back()]))]


@router.callback("item", int, needs=REGISTERED)
async def item(ctx: Ctx) -> Sequence[Action]:
    """A reward's details; the confirm button only when it can be redeemed, else why not. Nothing is spent yet."""
    offer = await ctx.services.rewards.offer(ctx.user_id, int(ctx.args[0]))
    confirm = [] if offer.blocked else [Button("points.confirm", data=router.data("redeem", offer.reward.id))]
    return [EditText("points/item", {"offer": offer}, keyboard([*confirm, _back("shop")]))]


@router.callback("redeem", int, needs=REGISTERED)
async def redeem(ctx: Ctx) -> Sequence[Action]:
    # The card's message identifies the tap: a double tap on one confirm button redeems once.
    inc = ctx.incoming
    request = f"{inc.chat_id}:{inc.callback_message_id}:{inc.sent_at}" if inc.callback_message_id else None
    ticket = await ctx.services.redemptions.redeem(ctx.user_id, int(ctx.args[0]), request)
    buttons = keyboard([_cancel_button(ticket)], [Button("points.mine", data=router.data("mine"))])
    actions: list[Action] = [EditText("points/redeemed", {"ticket": ticket}, buttons)]
    if ticket.qr:
        actions.append(SendPhoto(ticket.qr, "points/qr_caption", {"ticket": ticket}))
    return actions


@router.command("myredemptions", private_only=True, needs=REGISTERED, in_menu=True)
async def my_redemptions_command(ctx: Ctx) -> Sequence[Action]:
    tickets = await ctx.services.redemptions.mine(ctx.user_id)
    return [SendText("points/mine", {"tickets": tickets}, buttons=_mine_buttons(tickets))]


@router.callback("mine", needs=REGISTERED)
async def my_redemptions(ctx: Ctx) -> Sequence[Action]:
    tickets = await ctx.services.redemptions.mine(ctx.user_id)
    return [EditText("points/mine", {"tickets": tickets}, _mine_buttons(tickets))]


@router.callback("cancel", int, needs=REGISTERED)
async def cancel(ctx: Ctx) -> Sequence[Action]:
    try:
        ticket = await ctx.services.redemptions.cancel(ctx.user_id, int(ctx.args[0]))
    except AlreadyUsed as used:
        # Verified at the service point since this card was sent: say so, and the card loses its cancel button.
        buttons = keyboard([Button("points.mine", data=router.data("mine"))], [_back()])
        context = {"ticket": used.ticket}
        return [AnswerCallback("points/already_used", context, alert=True), EditText("points/used", context, buttons)]
    return [EditText("points/cancelled", {"ticket": ticket}, keyboard([_back()]))]


@router.command("rank", private_only=True, needs=REGISTERED, in_menu=True)
async def rank_command(ctx: Ctx) -> Sequence[Action]:
    ranks = await ctx.services.points.rankings(ctx.user_id, "month")
    return [SendText("points/rank", {"ranks": ranks}, buttons=_rank_buttons(ranks))]


@router.callback("rank", str, needs=REGISTERED)
async def rank(ctx: Ctx) -> Sequence[Action]:
    ranks = await ctx.services.points.rankings(ctx.user_id, str(ctx.args[0]))
    return [EditText("points/rank", {"ranks": ranks}, _rank_buttons(ranks))]


def _overview(view: Overview, *, edit: bool) -> Action:
    toggle = Button("points.show" if view.hidden else "points.hide", data=router.data("hide", int(not view.hidden)))
    buttons = keyboard(
        [Button("points.shop", data=router.data("shop")), Button("points.mine", data=router.data("mine"))],
        [Button("points.rank", data=router.data("rank", "month")), toggle],
    )
    return (
        EditText("points/overview", {"view": view}, buttons)
        if edit
        else SendText("points/overview", {"view": view}, buttons=buttons)
    )


def _mine_buttons(tickets: list[Ticket]) -> Keyboard:
    open_ = [[_cancel_button(t)] for t in tickets if t.redemption.status is RedemptionStatus.RESERVED]
    return keyboard(*open_, [_back()])


def _rank_buttons(ranks: Rankings) -> Keyboard:
    other = "all" if ranks.period == "month" else "month"
    return keyboard([Button(f"points.rank_{other}", data=router.data("rank", other)), _back()])


def _cancel_button(ticket: Ticket) -> Button:
    code = ticket.redemption.code_shown
    return Button("points.cancel_item", data=router.data("cancel", ticket.redemption.id), label_context={"code": code})


def _reward_button(reward_id: int, name: str, cost: int) -> Button:
    return Button("points.reward_item", data=router.data("item", reward_id), label_context={"name": name, "cost": cost})


def _back(to: str = "home") -> Button:
    return Button("points.back", data=router.data(to))
