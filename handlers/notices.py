"""Buttons on campaign notices: they open a feature as a new message (the notice itself stays as it was), and the
organiser's 停止发送 on a progress message."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, EditText, SendText
from bot.conversation.router import Needs, Router
from bot.services.campaigns import OPEN_QUIZ, OPEN_REPORT, OPEN_REWARDS, STOP
from handlers import points, quiz, reports

router = Router("nt")


@router.action(OPEN_QUIZ, needs=Needs.REGISTRATION)
async def open_quiz(ctx: Ctx) -> Sequence[Action]:
    return _below(await quiz.track(ctx))


@router.action(OPEN_REWARDS, needs=Needs.REGISTRATION)
async def open_rewards(ctx: Ctx) -> Sequence[Action]:
    return _below(await points.shop(ctx))


@router.action(OPEN_REPORT, needs=Needs.REGISTRATION)
async def open_report(ctx: Ctx) -> Sequence[Action]:
    return _below(await reports.report(ctx))


@router.action(STOP)
async def stop(ctx: Ctx) -> Sequence[Action]:
    """Stop sending (the service checks the organiser role and audits); the next progress edit shows it."""
    await ctx.services.campaigns.cancel(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback("notices/stopping", alert=True)]


def _below(actions: Sequence[Action]) -> list[Action]:
    """A feature answers a tap by editing its own message; under a notice it is sent as a new message instead."""
    out: list[Action] = [AnswerCallback()]
    for action in actions:
        if isinstance(action, EditText):
            out.append(SendText(action.template, action.context, buttons=action.buttons))
        elif not isinstance(action, AnswerCallback):
            out.append(action)
    return out
