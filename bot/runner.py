"""Starting the bot on a channel: used by ``sicheng run`` and by the sandbox."""

from __future__ import annotations

import logging
from typing import Any

from bot.app import App
from bot.channels.gate import GateLimits, SendGate

log = logging.getLogger(__name__)


def make_gate(app: App) -> SendGate:
    """One gate per token, shared by every sender of this process."""
    telegram = app.settings.telegram
    limits = GateLimits.from_rates(telegram.chat_per_second, telegram.group_per_minute)
    return SendGate(limits, on_forbidden=app.services.residents.mark_unreachable)


def make_channel(app: App, channel: str, token: str, api_url: str) -> Any:
    """The aiogram (default) or python-telegram-bot channel over the same core."""
    gate = make_gate(app)
    if channel == "ptb":
        from bot.channels.ptb_channel import PtbChannel, make_application

        return PtbChannel(app.core, app.renderer, make_application(token, api_url, gate))
    from bot.channels.aiogram_channel import AiogramChannel, make_bot

    return AiogramChannel(app.core, app.renderer, make_bot(token, api_url, gate))


async def run_polling(channel: Any, *, handle_signals: bool = True) -> None:
    """Long-poll until stopped (Ctrl+C)."""
    log.info("polling with %s", type(channel).__name__)
    if hasattr(channel, "dispatcher"):
        await channel.run_polling(handle_signals=handle_signals)
    else:
        await channel.run_polling()
