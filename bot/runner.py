"""Running the bot on a channel: intake, inbox worker, outbox dispatcher and the periodic ticker.

Used by ``sicheng run`` and by the sandbox. SIGINT/SIGTERM stop it cleanly: polling ends (nothing more is
confirmed to Telegram), updates in hand get a few seconds to finish, the rest stay pending in the inbox and are
handled on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from bot.app import App, utcnow
from bot.channels.dispatcher import Dispatcher, bulk_rate
from bot.channels.gate import GateLimits, SendGate
from bot.channels.inbox import Inbox, poll
from bot.channels.webhook import WebhookIntake, start_webhook
from bot.metrics import start_metrics_server
from storage.db import ping

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
DRAIN_SECONDS = 5.0


def make_gate(app: App, token: str) -> SendGate:
    """One gate per token, shared by every sender of this process; with Redis, the token's pace is shared too."""
    telegram = app.settings.telegram
    limits = GateLimits.from_rates(telegram.chat_per_second, telegram.group_per_minute, telegram.bot_per_second)
    if not app.settings.redis.url:
        return SendGate(limits)
    from bot.channels.redis_pace import RedisPace

    log.info("send pace of the token shared through Redis")
    prefix = f"{app.settings.redis.prefix}:pace"
    return SendGate(limits, pace=RedisPace(app.settings.redis.url, token, limits.token, prefix=prefix))


def make_channel(app: App, channel: str, token: str, api_url: str) -> Any:
    """The aiogram (default) or python-telegram-bot channel over the same core, with photo downloads wired."""
    gate = make_gate(app, token)
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


def make_dispatcher(app: App, sender: Any, clock: Callable[[], datetime] = utcnow) -> Dispatcher:
    return Dispatcher(
        app.uow,
        app.transactions,
        app.core.renderer,
        app.router.codec,
        sender,
        clock,
        on_poll=app.core.poll_posted,
        bot_username=lambda: str(app.core.settings.get("bot_username", "")),
        bulk_per_second=bulk_rate(((1.0, app.settings.telegram.bot_per_second),)),
    )


def make_inbox(app: App, dispatcher: Dispatcher, clock: Callable[[], datetime] = utcnow) -> Inbox:
    return Inbox(app.core, app.uow, app.transactions, dispatcher, clock, prefetch=app.prefetch)


async def run_ticker(
    app: App,
    dispatcher: Dispatcher,
    stop: asyncio.Event,
    interval: float = TICK_SECONDS,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Run time-driven work (deadlines, 回头看, quiz rounds, expiry) until stopped; its messages go to the outbox."""
    while not stop.is_set():
        try:
            await app.tick(clock())
        except Exception:  # never let a bad tick stop the timers for good
            log.exception("periodic tick failed")
        dispatcher.wake()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


@dataclass(frozen=True)
class Timing:
    """The clocks the running pieces read. Production uses the real ones; the broadcast test and benchmark run the
    emulator faster and hand the bot the same emulated time (wall clock, the bulk pace's monotonic clock, sleep)."""

    now: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    tick_seconds: float = TICK_SECONDS
    poll_seconds: int = 25
    drain_seconds: float = DRAIN_SECONDS


@contextlib.asynccontextmanager
async def serving(
    app: App, channel: Any, timing: Timing = Timing(), webhook: WebhookIntake | None = None
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Start intake, the inbox worker, the outbox dispatcher and the ticker; yield their tasks (intake first). On exit
    intake ends first (polling stops, or the webhook server stops accepting: nothing more is confirmed to Telegram),
    updates in hand get ``drain_seconds`` to finish, the rest stay pending in the inbox for the next start.

    Intake is long polling, or with ``webhook`` a server whose 200 follows ``inbox.take``'s commit; setWebhook is called
    at start and the webhook is *not* deleted on exit: Telegram keeps the updates for the next start."""
    stop: asyncio.Event = channel.stopping
    await channel.start()
    dispatcher = make_dispatcher(app, channel.sender, timing.now)
    dispatcher.monotonic, dispatcher.sleep = timing.monotonic, timing.sleep
    inbox = make_inbox(app, dispatcher, timing.now)
    channel.inbox = inbox
    if app.single_process:  # nothing of a killed predecessor is still running
        await dispatcher.release_all()  # its claims on outbox rows
        removed = await app.services.reports.photos.store.remove_temporaries()  # its half-written photos
        if removed:
            log.info("removed %s half-written photo file(s) left by a crash", removed)
    await inbox.recover()
    intake: Coroutine[Any, Any, None]
    if webhook is None:
        intake = poll(channel.fetch_updates, inbox, stop, seconds=timing.poll_seconds)
    else:
        intake = (await start_webhook(channel, webhook, inbox.take, partial(ping, app.engine))).serve(stop)
    tasks = [
        asyncio.create_task(intake, name="intake"),
        asyncio.create_task(inbox.run(stop), name="inbox"),
        asyncio.create_task(dispatcher.run(stop), name="outbox"),
        asyncio.create_task(run_ticker(app, dispatcher, stop, timing.tick_seconds, timing.now), name="ticker"),
    ]
    try:
        yield tasks
    finally:
        stop.set()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(tasks[0], 5)
        await inbox.drain(timing.drain_seconds)
        for task in tasks[1:]:
            task.cancel()
        for task in tasks[1:]:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await channel.close()


async def run_bot(
    app: App,
    channel: Any,
    *,
    handle_signals: bool = True,
    timing: Timing = Timing(),
    webhook: WebhookIntake | None = None,
) -> None:
    """Intake (long polling, or ``webhook``), handling, delivery and timers until ``channel.stopping`` is set (or a
    signal arrives)."""
    stop: asyncio.Event = channel.stopping
    metrics = await start_metrics_server(app.settings, app.uow)  # GET /metrics when SICHENG_METRICS__PORT is set
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(app, channel, timing, webhook) as tasks:
            # Everything built at start-up lives for the whole run: keep it out of the collector's sweeps (less GC
            # time per update under a burst, measured with bench.handling).
            gc.collect()
            gc.freeze()
            log.info("%s with %s", "webhook intake" if webhook else "polling", type(channel).__name__)
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is not None and not stop.is_set():
                    raise task.exception()  # type: ignore[misc]
    finally:
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        await metrics.stop()
        log.info("stopped")
