"""Handling throughput over HTTP: Sicheng against a bare echo bot, on the aiogram and the python-telegram-bot channel.

    python -m bench.handling [--updates N] [--repeats 3] [--channel aiogram|ptb|both] [--emulator process|inprocess]

Method. The sandbox emulator (``bot.sandbox``) plays Telegram over HTTP. ``--updates`` registered residents (consent
given, community and building joined, through ``ResidentService``) have each written to both bots and hold a main
menu message with Sicheng's real keyboard. A burst makes every resident tap the menu's 设置 (settings) button at
once: one ``callback_query`` of action ``menu.open`` each, injected through the emulator's Python API as fast as
it takes them. A burst lasts from the first tap to the moment the emulator has logged, for every tap, a successful
``answerCallbackQuery`` and ``sendMessage``; updates/s is taps / that time. The bots of a channel run at once
(an idle bot waits in its long poll, costing nothing); each gets 50 warm-up taps, then the ``--repeats`` timed bursts
go round in turns (echo, Sicheng, echo, Sicheng, ...), so that a shared machine slowing down or speeding up during the
run weighs on both alike. The median of each bot's bursts is reported, and the ratio of the medians with the ratio of
each round's pair of bursts beside it.

* Bare echo: one unfiltered handler that answers the query and sends a fixed text — the same two Bot API calls
  per update as Sicheng, nothing else. aiogram: ``Dispatcher(disable_fsm=True)`` (as Sicheng's channel; an echo
  keeps no state); PTB: ``Application`` with one ``TypeHandler`` and PTB's defaults (one update at a time, which
  for an echo is about twice as fast as 64 concurrent updates, see docs/benchmarks.md; PTB's httpx transport). The
  ratio is taken against these. A second echo runs on the transport Sicheng's channel uses — PTB over aiohttp
  (``bot.channels.ptb_request``), aiogram with JSON bodies (``bot.channels.aiogram_session``) — and the ratio
  against it is printed too: the stricter comparison.
* Sicheng: the real channel adapter (``AiogramChannel`` / ``PtbChannel``), core, services and SQLite database, run
  by ``run_bot`` (intake, inbox worker, outbox dispatcher, periodic ticker), like ``sicheng sandbox``. Per tap:
  intake stores the update in the inbox (one INSERT per getUpdates batch); the worker handles it in one
  transaction (marks the row done and reads the cache revisions with it, takes the resident, the dialog state and the
  community from the process's caches when their revisions match, reads the notice settings, renders the settings
  template with its inline keyboard, queues both replies in the outbox) and then sends them, marking each row sent.

Pacing. The send gate stays in the path but must not be what is measured: each burst taps once per resident, so
per-chat pacing never binds within a burst, and ``Settings.telegram.chat_per_second`` is raised to 1000 so the
repeated bursts on the same chats are not held back either. The gate's per-token pace (Telegram's ≈30 messages/s
per bot, fixed in ``GateLimits``) is lifted for the benchmark: with it, Sicheng could never send more than 30
messages/s and the benchmark would measure the limit instead of the handling.

Where the emulator runs (``--emulator``). ``process`` (default): in a child process with its own event loop, which
also injects the taps and watches its call log, so the bot's process does nothing but be the bot. ``inprocess``:
emulator, injector and bot share one event loop and one core, for the bare echo and Sicheng alike. See
docs/benchmarks.md for both and why ``process`` is the reported figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import inspect
import logging
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, Message

from bench.remote import RemoteEmulator, emulator_process
from bot.app import App, build_app, build_renderer, prepare_database
from bot.channels.aiogram_session import JsonSession
from bot.channels.base import ALLOWED_UPDATES
from bot.channels.gate import GateLimits, SendGate
from bot.config import DatabaseSettings, Settings, TelegramSettings
from bot.runner import run_bot
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.demo import COMMUNITY, seed_database
from bot.sandbox.emulator import Emulator
from bot.sandbox.server import run_emulator
from handlers import build_router
from handlers.menu import FEATURES

ECHO_TOKEN = "100000002:SANDBOX-echo-token"
ECHO_AIOHTTP_TOKEN = "100000003:SANDBOX-echo-aiohttp-token"  # the echo on Sicheng's transport
TOKENS = (DEFAULT_TOKEN, ECHO_TOKEN, ECHO_AIOHTTP_TOKEN)  # Sicheng, the bare echo, an echo on Sicheng's transport
FIRST_USER = 2_000_001  # clear of the demo personas (1000001...)
WARMUP = 50
ECHO_TEXT = "收到"
CHAT_PER_SECOND = 1000.0  # Settings.telegram.chat_per_second for the benchmark (default 1)
UNLIMITED_TOKEN = ((1.0, 1_000_000),)  # the gate's per-token window, lifted
BURST_TIMEOUT = 120.0
EXPECTED = ("answercallbackquery", "sendmessage")  # per tap, for the echo and for Sicheng


# --- Telegram's side: the emulator, the residents' taps and the stopwatch --------------------------------------


@dataclasses.dataclass(frozen=True)
class Burst:
    updates: int
    seconds: float  # first tap → last expected response logged by the emulator
    emulator_cpu: float  # CPU seconds of the emulator's process during the burst (process mode only)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds


class Driver:
    """Works the emulator from its own event loop: residents, their menus, timed bursts of taps."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.menus: dict[tuple[int, int], int] = {}  # (bot id, user id) → message id of the user's menu

    async def add_residents(self, user_ids: Sequence[int], menu_text: str, markup: dict[str, Any]) -> None:
        """Each resident writes to every bot (bots may only message people who did) and gets a menu from each."""
        for user_id in user_ids:
            self.emu.create_user("居民", user_id=user_id)
            for token in TOKENS:
                self.emu.send_text(user_id, "/start", bot_id=self.emu.bot_for_token(token).id)
        for token in TOKENS:
            bot_id = self.emu.bot_for_token(token).id
            for user_id in user_ids:
                params = {"chat_id": user_id, "text": menu_text, "parse_mode": "HTML", "reply_markup": markup}
                sent = await self.emu.call_api(token, "sendMessage", params)
                self.menus[bot_id, user_id] = sent["message_id"]
            await self.reset(token)

    async def reset(self, token: str) -> None:
        """Drop pending updates (the /start messages, anything a stopped bot left unconfirmed)."""
        await self.emu.call_api(token, "deleteWebhook", {"drop_pending_updates": True})

    async def burst(self, token: str, user_ids: Sequence[int], data: str) -> Burst:
        """Every user taps the button ``data`` on their menu; returns once every tap has both answers."""
        bot_id = self.emu.bot_for_token(token).id
        seen = self.emu.call_log[-1].seq if self.emu.call_log else 0
        counts = dict.fromkeys(EXPECTED, 0)
        cpu, start = time.process_time(), time.monotonic()
        queries = [
            self.emu.press_button(user_id, user_id, self.menus[bot_id, user_id], data=data, bot_id=bot_id)
            for user_id in user_ids
        ]
        last, deadline = start, start + BURST_TIMEOUT
        while min(counts.values()) < len(user_ids):
            await asyncio.sleep(0.005)
            fresh = self._calls_since(seen)
            for record in fresh:
                method = record.method.lower()
                if record.bot_id != bot_id or method not in counts:
                    continue
                if record.status != 200:
                    raise RuntimeError(f"{record.method} to {record.chat_id} failed: {record.description}")
                counts[method] += 1
                last = max(last, record.t)
            seen = fresh[-1].seq if fresh else seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"after {BURST_TIMEOUT:.0f} s: {counts} of {len(user_ids)} responses each")
        cpu = time.process_time() - cpu
        if not all(self.emu.callbacks[query].answered for query in queries):
            raise RuntimeError("some taps were never answered (and others more than once)")
        return Burst(len(user_ids), last - start, cpu)

    def _calls_since(self, seq: int) -> list[Any]:
        """Request-log records after ``seq``, oldest first, reading only the new end of the log."""
        fresh = []
        for record in reversed(self.emu.call_log):
            if record.seq <= seq:
                break
            fresh.append(record)
        return fresh[::-1]


class LocalEmulator:
    """``--emulator inprocess``: the driver runs on the bot's own event loop."""

    def __init__(self, driver: Driver, base_url: str) -> None:
        self.driver, self.base_url = driver, base_url

    async def call(self, name: str, *args: Any) -> Any:
        result = getattr(self.driver, name)(*args)
        return await result if inspect.isawaitable(result) else result


def _driver() -> tuple[Emulator, Driver]:
    """The emulator and its driver, built in the emulator's child process (``--emulator process``)."""
    emulator = Emulator(tokens=TOKENS)
    return emulator, Driver(emulator)


@contextlib.asynccontextmanager
async def emulator_side(mode: str) -> AsyncIterator[LocalEmulator | RemoteEmulator]:
    if mode == "inprocess":
        emulator = Emulator(tokens=TOKENS)
        async with run_emulator(emulator=emulator) as (_, base_url):
            yield LocalEmulator(Driver(emulator), base_url)
        return
    async with emulator_process(_driver) as remote:
        yield remote


# --- the bots under test ------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def aiogram_echo(base_url: str, token: str = ECHO_TOKEN, transport: str = "form") -> AsyncIterator[None]:
    # aiogram's own session (forms) unless ``transport`` is "json", the session Sicheng's aiogram channel uses.
    api = TelegramAPIServer.from_base(base_url)
    bot = Bot(token, session=JsonSession(api=api) if transport == "json" else AiohttpSession(api=api))
    dispatcher = Dispatcher(disable_fsm=True)

    async def on_press(query: CallbackQuery) -> None:
        await query.answer()
        await bot.send_message(query.from_user.id, ECHO_TEXT)

    async def on_message(message: Message) -> None:
        await bot.send_message(message.chat.id, ECHO_TEXT)

    dispatcher.callback_query.register(on_press)
    dispatcher.message.register(on_message)
    task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, allowed_updates=ALLOWED_UPDATES, close_bot_session=True)
    )
    try:
        yield
    finally:
        with contextlib.suppress(RuntimeError):  # not polling any more
            await dispatcher.stop_polling()
        await _finish(task)


@contextlib.asynccontextmanager
async def ptb_echo(base_url: str, token: str, transport: str = "httpx") -> AsyncIterator[None]:
    from telegram import Update
    from telegram.ext import ApplicationBuilder, ContextTypes, TypeHandler

    # PTB's defaults: updates one at a time, which is faster for an echo than many updates in flight; PTB's own
    # HTTP transport (httpx) unless ``transport`` is "aiohttp", the one Sicheng's PTB channel uses.
    builder = ApplicationBuilder().token(token).base_url(f"{base_url}/bot").base_file_url(f"{base_url}/file/bot")
    if transport == "aiohttp":
        from bot.channels.ptb_request import AiohttpRequest

        builder = builder.request(AiohttpRequest()).get_updates_request(AiohttpRequest(1))
    application = builder.build()

    async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            await update.callback_query.answer()
        if update.effective_chat is not None:
            await context.bot.send_message(update.effective_chat.id, ECHO_TEXT)

    application.add_handler(TypeHandler(Update, on_update))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        try:
            yield
        finally:
            await application.updater.stop()
            await application.stop()


def make_gate(app: App) -> SendGate:
    """The gate of ``bot.runner.make_gate`` with the per-token pace lifted (see the module docstring)."""
    telegram = app.settings.telegram
    limits = GateLimits.from_rates(telegram.chat_per_second, telegram.group_per_minute)
    return SendGate(
        dataclasses.replace(limits, token=UNLIMITED_TOKEN), on_forbidden=app.services.residents.mark_unreachable
    )


def make_channel(app: App, channel: str, base_url: str) -> Any:
    """The real channel adapter, as ``bot.runner.make_channel`` builds it (photo downloads left out)."""
    if channel == "ptb":
        from bot.channels.ptb_channel import PtbChannel, make_application

        return PtbChannel(app.core, app.renderer, make_application(DEFAULT_TOKEN, base_url, make_gate(app)))
    from bot.channels.aiogram_channel import AiogramChannel, make_bot

    return AiogramChannel(app.core, app.renderer, make_bot(DEFAULT_TOKEN, base_url, make_gate(app)))


@contextlib.asynccontextmanager
async def sicheng(app: App, channel_name: str, base_url: str) -> AsyncIterator[None]:
    channel = make_channel(app, channel_name, base_url)
    task = asyncio.create_task(run_bot(app, channel, handle_signals=False))
    try:
        for _ in range(400):  # polling starts after getMe and setMyCommands
            if channel.username or task.done():
                break
            await asyncio.sleep(0.025)
        if task.done():
            task.result()
        yield
    finally:
        await channel.stop()  # run_bot stops polling, lets the updates in hand finish and closes the channel
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=20)
        await _finish(task)


async def _finish(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, timeout=10)


# --- setup and the measurement -----------------------------------------------------------------------------------


async def register_residents(app: App, user_ids: Sequence[int]) -> None:
    """Registered residents of the demo community, through the same services onboarding uses."""
    await seed_database(app)
    community = await app.services.communities.by_code(COMMUNITY)
    assert community is not None
    buildings: list[int | None] = [b.id for b in community.buildings] or [None]
    limit = asyncio.Semaphore(8)

    async def register(n: int, user_id: int) -> None:
        async with limit:
            await app.services.residents.give_consent(user_id, f"居民{n}", "zh_Hans")
            await app.services.residents.join(user_id, community.id, buildings[n % len(buildings)])

    await asyncio.gather(*(register(n, user_id) for n, user_id in enumerate(user_ids)))


def main_menu() -> tuple[str, dict[str, Any], str]:
    """Sicheng's main menu (text, inline keyboard) and the callback data of its 设置 button."""
    renderer, codec = build_renderer(Settings()), build_router().codec
    text = renderer.render("zh_Hans", "menu/main", {"name": "居民", "registered": True})
    buttons = [
        {"text": renderer.label("zh_Hans", f"menu.{key}"), "callback_data": codec.encode("menu", "open", key)}
        for key in FEATURES
    ]
    markup = {"inline_keyboard": [buttons[i : i + 2] for i in range(0, len(buttons), 2)]}
    return text, markup, codec.encode("menu", "open", "settings")


@dataclasses.dataclass
class Result:
    runs: list[Burst]
    bot_cpu: list[float]  # CPU seconds of this process (the bot's) per burst
    separate: bool  # the emulator ran in its own process

    @property
    def rate(self) -> float:
        return statistics.median(b.rate for b in self.runs)

    def describe(self) -> str:
        runs = ", ".join(f"{b.rate:.0f}" for b in self.runs)
        cpu = statistics.median(c / b.updates for c, b in zip(self.bot_cpu, self.runs, strict=True)) * 1000
        if not self.separate:
            return f"{self.rate:6.0f} updates/s (runs {runs}; CPU {cpu:.2f} ms/update, bot and emulator)"
        emulator = statistics.median(b.emulator_cpu / b.updates for b in self.runs) * 1000
        return f"{self.rate:6.0f} updates/s (runs {runs}; CPU ms/update: bot {cpu:.2f}, emulator {emulator:.2f})"


@dataclasses.dataclass(frozen=True)
class Contender:
    label: str
    token: str
    bot: contextlib.AbstractAsyncContextManager[None]


async def measure(
    emulator: LocalEmulator | RemoteEmulator,
    contenders: Sequence[Contender],
    user_ids: Sequence[int],
    data: str,
    repeats: int,
) -> list[Result]:
    """All bots run at once (an idle bot waits in its long poll); each is warmed up, then the timed bursts go round
    in turns — echo, Sicheng, echo, Sicheng, ... — so a machine that slows down or speeds up during the run (other
    tenants of a shared host) weighs on every bot alike instead of on whichever was measured at that moment."""
    results = [Result([], [], isinstance(emulator, RemoteEmulator)) for _ in contenders]
    async with contextlib.AsyncExitStack() as stack:
        for contender in contenders:
            await emulator.call("reset", contender.token)
            await stack.enter_async_context(contender.bot)
        for contender in contenders:
            await emulator.call("burst", contender.token, list(user_ids[:WARMUP]), data)
        for _ in range(repeats):
            for contender, result in zip(contenders, results, strict=True):
                await asyncio.sleep(0.2)  # let the last burst's stragglers (confirming getUpdates) settle
                start = time.process_time()
                result.runs.append(await emulator.call("burst", contender.token, list(user_ids), data))
                result.bot_cpu.append(time.process_time() - start)
    return results


def ratio(ours: Result, echo: Result) -> str:
    """Sicheng's median rate over the echo's, and the same for each round of bursts (taken side by side)."""
    rounds = ", ".join(f"{a.rate / b.rate:.2f}" for a, b in zip(ours.runs, echo.runs, strict=True))
    return f"{ours.rate / echo.rate:.2f} (rounds {rounds})"


async def main(args: argparse.Namespace) -> None:
    channels = ["aiogram", "ptb"] if args.channel == "both" else [args.channel]
    user_ids = [FIRST_USER + n for n in range(args.updates)]
    menu_text, markup, data = main_menu()
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await prepare_database(url)
        telegram = TelegramSettings(chat_per_second=CHAT_PER_SECOND)
        app = await build_app(Settings(database=DatabaseSettings(url=url), telegram=telegram))
        try:
            await register_residents(app, user_ids)
            async with emulator_side(args.emulator) as emulator:
                await emulator.call("add_residents", user_ids, menu_text, markup)
                print(
                    f"{args.updates} residents tap 设置 at once; emulator: {args.emulator}; "
                    f"median of {args.repeats} bursts after {WARMUP} warm-up taps, the bots' bursts taken in turns"
                )
                for channel in channels:
                    base = emulator.base_url
                    contenders = [
                        Contender(
                            "bare echo",
                            ECHO_TOKEN,
                            aiogram_echo(base) if channel == "aiogram" else ptb_echo(base, ECHO_TOKEN),
                        ),
                        Contender("Sicheng", DEFAULT_TOKEN, sicheng(app, channel, base)),
                    ]
                    # The stricter baseline: an echo on the transport Sicheng's channel uses.
                    if channel == "ptb":
                        strict = ptb_echo(base, ECHO_AIOHTTP_TOKEN, "aiohttp")
                    else:
                        strict = aiogram_echo(base, ECHO_AIOHTTP_TOKEN, "json")
                    contenders.append(Contender("echo on Sicheng's transport", ECHO_AIOHTTP_TOKEN, strict))
                    results = await measure(emulator, contenders, user_ids, data, args.repeats)
                    for contender, result in zip(contenders, results, strict=True):
                        print(f"{channel:8} {contender.label:9} {result.describe()}")
                    strict_ratio = ratio(results[1], results[2])
                    lines.append(f"ratio {channel}={ratio(results[1], results[0])}; against that echo: {strict_ratio}")
        finally:
            await app.aclose()
    for line in lines:
        print(line)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.handling", description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=500, help="taps per burst = distinct residents (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="timed bursts per bot; the median counts (default 3)")
    parser.add_argument("--channel", choices=("aiogram", "ptb", "both"), default="both")
    parser.add_argument(
        "--emulator",
        choices=("process", "inprocess"),
        default="process",
        help="run the emulator in a child process (default) or on the bot's own event loop",
    )
    args = parser.parse_args(argv)
    if args.updates < WARMUP:
        parser.error(f"--updates must be at least {WARMUP}")
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parse()))
