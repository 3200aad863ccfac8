"""`sicheng sandbox`: the bot on the real aiogram (or PTB) channel over HTTP against the local emulator + the page."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.engine import make_url

from bot.app import App, build_app, prepare_database
from bot.config import DatabaseSettings, Settings
from bot.runner import make_channel, run_bot
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.demo import PERSONAS, seed_database, seed_emulator
from bot.sandbox.emulator import Emulator
from bot.sandbox.server import run_emulator

log = logging.getLogger(__name__)


@dataclass
class Sandbox:
    url: str
    emulator: Emulator
    app: App
    channel: Any


def remove_database(url: str) -> None:
    """``--fresh``: delete the sandbox's SQLite file (and its WAL companions)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        raise ValueError("--fresh only deletes an SQLite sandbox database")
    for suffix in ("", "-wal", "-shm"):
        Path(parsed.database + suffix).unlink(missing_ok=True)


def _configure(app: web.Application) -> None:
    async def personas(_: web.Request) -> web.Response:
        return web.json_response([p.to_view() for p in PERSONAS])

    app.router.add_get("/sandbox/api/personas", personas)
    try:
        from bot.sandbox.web import setup_web
    except ImportError:  # the page is optional for tests that only need the emulator
        return
    setup_web(app)


@contextlib.asynccontextmanager
async def start_sandbox(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    channel: str = "aiogram",
    fresh: bool = False,
    emulator: Emulator | None = None,
) -> AsyncIterator[Sandbox]:
    """Emulator + page on host:port, the bot polling it through ``channel``; stops everything on exit."""
    url = settings.sandbox.database
    if fresh:
        remove_database(url)
    await prepare_database(url)
    app = await build_app(settings.model_copy(update={"database": DatabaseSettings(url=url)}))
    emu = emulator or Emulator()
    try:
        await seed_database(app)
        seed_emulator(emu)
        async with run_emulator(host, port, emulator=emu, configure=_configure) as (_, base_url):
            bot_channel = make_channel(app, channel, DEFAULT_TOKEN, base_url)
            task = asyncio.create_task(run_bot(app, bot_channel, handle_signals=False))
            try:
                await _wait_ready(bot_channel, task)
                yield Sandbox(base_url, emu, app, bot_channel)
            finally:
                await _stop(bot_channel, task)
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
