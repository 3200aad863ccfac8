"""Starting the bot on a channel, with the periodic ticker: used by ``sicheng run`` and by the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.app import App, utcnow
from bot.channels.base import deliver
from bot.channels.gate import GateLimits, SendGate

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0


def make_gate(app: App) -> SendGate:
    """One gate per token, shared by every sender of this process."""
    telegram = app.settings.telegram
    limits = GateLimits.from_rates(telegram.chat_per_second, telegram.group_per_minute)
    return SendGate(limits, on_forbidden=app.services.residents.mark_unreachable)


def make_channel(app: App, channel: str, token: str, api_url: str) -> Any:
    """The aiogram (default) or python-telegram-bot channel over the same core, with photo downloads wired."""
    gate = make_gate(app)
    if channel == "ptb":
        from bot.channels.files import PtbDownloader
        from bot.channels.ptb_channel import PtbChannel, make_application

        ptb = PtbChannel(app.core, app.renderer, make_application(token, api_url, gate))
        app.services.reports.photos.use(PtbDownloader(ptb.application.bot))
        return ptb
    from bot.channels.aiogram_channel import AiogramChannel, make_bot
    from bot.channels.files import AiogramDownloader

    bot = make_bot(token, api_url, gate)
    app.services.reports.photos.use(AiogramDownloader(bot))
    return AiogramChannel(app.core, app.renderer, bot)


async def run_ticker(
    app: App, sender: Any, interval: float = TICK_SECONDS, clock: Callable[[], datetime] = utcnow
) -> None:
    """Run time-driven work (deadlines, 回头看, quiz rounds, expiry) forever, sending through the channel."""
    while True:
        try:
            await deliver(app.core, sender, await app.tick(clock()))
        except Exception:  # never let a bad tick stop the timers for good
            log.exception("periodic tick failed")
        await asyncio.sleep(interval)


async def run_polling(channel: Any, *, handle_signals: bool = True) -> None:
    """Long-poll until stopped (Ctrl+C)."""
    log.info("polling with %s", type(channel).__name__)
    if hasattr(channel, "dispatcher"):
        await channel.run_polling(handle_signals=handle_signals)
    else:
        await channel.run_polling()


async def run_bot(app: App, channel: Any, *, handle_signals: bool = True) -> None:
    """Polling plus the ticker; the ticker stops when polling ends."""
    # Everything built at start-up lives for the whole run: keep it out of the collector's sweeps (less GC time
    # per update under a burst, measured with bench.handling).
    gc.collect()
    gc.freeze()
    ticker = asyncio.create_task(run_ticker(app, channel.sender))
    try:
        await run_polling(channel, handle_signals=handle_signals)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
