"""/notices and the main menu's 通知公告: residents read their community's recent notices; organisers see theirs with
counts; notice settings (subscriptions, quiet hours, opting out)."""

from __future__ import annotations

from bot.conversation.router import Router

router = Router("nb")
