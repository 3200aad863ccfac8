"""/dashboard: a grid worker's or organiser's one-time link to the web dashboard (工作台).

The link rides on a URL button, never in the text: Telegram fetches links in a message's text for a preview, and that
fetch would spend a link meant to be opened once.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, Button, SendText, keyboard
from bot.conversation.router import Router

router = Router("dash")


@router.command("dashboard", private_only=True)
async def dashboard(ctx: Ctx) -> Sequence[Action]:
    url = await ctx.services.dashboard.issue(ctx.user_id)
    access = ctx.services.dashboard
    context = {
        "minutes": round(access.link_ttl.total_seconds() / 60),
        "hours": round(access.session_ttl.total_seconds() / 3600),
    }
    return [SendText("dashboard/link", context, buttons=keyboard([Button("dashboard.open", url=url)]))]
