"""`sicheng sandbox`: the bot on the real aiogram (or PTB) channel over HTTP against the local emulator + the page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.engine import make_url

from bot.app import App, build_app, prepare_database, utcnow
from bot.channels.webhook import WebhookIntake
from bot.config import DatabaseSettings, Settings
from bot.runner import Timing, make_channel, run_bot
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.demo import PERSONAS, seed_database, seed_emulator
from bot.sandbox.emulator import Emulator
from bot.sandbox.history import ChatHistory, history_path
from bot.sandbox.server import run_emulator

log = logging.getLogger(__name__)


@dataclass
class Sandbox:
    url: str
    emulator: Emulator
    app: App
    channel: Any
    history: ChatHistory | None = None  # None: the database is not a file, chats start empty at every start


def remove_database(url: str) -> None:
    """``--fresh``: delete the sandbox's SQLite file (and its WAL companions)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        raise ValueError("--fresh only deletes an SQLite sandbox database")
    for suffix in ("", "-wal", "-shm"):
        Path(parsed.database + suffix).unlink(missing_ok=True)


def _configurer(instance: str | None, bot: App | None = None) -> Callable[[web.Application], None]:
    def configure(app: web.Application) -> None:
        async def personas(_: web.Request) -> web.Response:
            return web.json_response([p.to_view() for p in PERSONAS])

        app.router.add_get("/sandbox/api/personas", personas)
        if bot is not None:  # the organisers' dashboard at /dashboard, as `sicheng run` serves it
            from bot.dashboard.app import mount

            mount(app, bot)
        try:
            from bot.sandbox.web import setup_web
        except ImportError:  # the page is optional for tests that only need the emulator
            return
        setup_web(app, instance=instance)

    return configure


@contextlib.asynccontextmanager
async def start_sandbox(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    channel: str = "aiogram",
    fresh: bool = False,
    emulator: Emulator | None = None,
    clock: Callable[[], datetime] = utcnow,
    webhook: WebhookIntake | None = None,
) -> AsyncIterator[Sandbox]:
    """Emulator + page on host:port, the bot polling it through ``channel``; stops everything on exit. ``clock`` is
    the bot's wall clock (services, inbox, outbox, ticker): a test may set it forward instead of waiting. With
    ``webhook`` the emulator posts updates to the bot's webhook server instead (its own address if ``url`` is None)."""
    url = settings.sandbox.database
    where = history_path(url)
    history = ChatHistory(where) if where is not None else None
    if fresh:
        remove_database(url)
        if history is not None:
            history.remove()
    await prepare_database(url)
    app = await build_app(settings.model_copy(update={"database": DatabaseSettings(url=url)}), clock=clock)
    emu = emulator or Emulator()
    try:
        await seed_database(app)
        seed_emulator(emu)
        if history is not None and (restored := history.load(emu)):
            log.info("sandbox: %s earlier messages restored from %s", restored, history.path)
        instance = history.instance if history is not None else None
        async with run_emulator(host, port, emulator=emu, configure=_configurer(instance, app)) as (_, base_url):
            if not app.services.dashboard.url:  # /dashboard's links open the dashboard served here
                app.services.dashboard.url = base_url
            bot_channel = make_channel(app, channel, DEFAULT_TOKEN, base_url)
            running = run_bot(app, bot_channel, handle_signals=False, timing=Timing(now=clock), webhook=webhook)
            task = asyncio.create_task(running)
            keeper = asyncio.create_task(history.keep(emu)) if history is not None else None
            try:
                await _wait_ready(bot_channel, task)
                yield Sandbox(base_url, emu, app, bot_channel, history)
            finally:
                await _stop(bot_channel, task)
                if keeper is not None:
                    keeper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await keeper
                if history is not None:
                    history.save_quietly(emu)
    finally:
        await app.aclose()


async def _wait_ready(channel: Any, task: asyncio.Task[None]) -> None:
    """Polling starts after getMe and setMyCommands: wait until the username is known."""
    for _ in range(200):
        if channel.username or task.done():
            break
        await asyncio.sleep(0.025)
    if task.done():
        task.result()  # raises what stopped it


async def _stop(channel: Any, task: asyncio.Task[None]) -> None:
    """A clean stop: polling ends, updates in hand finish (the rest wait in the inbox for the next start)."""
    await channel.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, timeout=15)
