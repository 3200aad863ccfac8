"""The quiz burst over HTTP: the sandbox emulator plays 1,000 residents, the bot runs the real aiogram channel.

Used by ``python -m bench.quiz_burst``; the baseline is a bare aiogram bot (one poll_answer handler, no database)
polling the same emulator for answers to its own quiz poll. Sicheng runs as in production (``bot.runner.run_bot``):
intake stores each getUpdates batch in the inbox, the inbox worker handles each update in one transaction, the
outbox dispatcher posts the polls the periodic step queued. An answer counts as handled once its handling
transaction has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import PollAnswer
from sqlalchemy import text

from bench.quiz_burst import GROUP, ORGANISER, check_ledger, percentiles, seed
from bot.app import App, build_app
from bot.channels.inbox import Inbox
from bot.config import DatabaseSettings, Settings
from bot.domain.messaging import InboxItem
from bot.runner import make_channel, run_bot
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.emulator import Emulator
from bot.sandbox.models import PollState
from bot.sandbox.server import run_emulator

ECHO_TOKEN = "100000002:SANDBOX-echo-token"
ECHO_GROUP = -100_900_000_002


async def wait_for(check: Callable[[], bool], within: float = 120.0) -> None:
    deadline = time.perf_counter() + within
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError("the bot did not keep up")
        await asyncio.sleep(0.005)


def new_poll(emu: Emulator, chat_id: int, seen: Iterable[str] = ()) -> PollState | None:
    return next((p for p in emu.polls.values() if p.chat_id == chat_id and p.id not in set(seen)), None)


async def poll_recorded(app: App, poll_id: str) -> None:
    """Answers to a poll count once ``poll_sent`` stored it (right after sendPoll returned)."""
    for _ in range(1000):
        async with app.engine.connect() as conn:
            query = text("SELECT 1 FROM group_quiz_poll WHERE poll_id = :p")
            if (await conn.execute(query, {"p": poll_id})).first():
                return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"poll {poll_id} was never recorded")


def answer(emu: Emulator, user_id: int, poll: PollState) -> None:
    right = (poll.correct_option_ids or [0])[0]
    emu.answer_poll(user_id, poll.id, [right if user_id % 2 == 0 else (right + 1) % len(poll.options)])


def timed_inbox(inbox: Inbox, done: dict[tuple[str, int], float], per_poll: Counter[str]) -> None:
    """Note when each poll answer's handling transaction has committed (the inbox worker calls ``handle``), and how
    many answers of each poll are done (counted here: the waits below must not cost the bot CPU by scanning)."""
    handle: Callable[[InboxItem], Awaitable[Any]] = inbox.handle

    async def timed(item: InboxItem) -> None:
        await handle(item)
        answer = item.payload.get("poll_answer")
        if answer is not None:
            key = (str(answer["poll_id"]), int(answer["user"]["id"]))
            if key not in done:
                per_poll[key[0]] += 1
            done[key] = time.perf_counter()

    inbox.handle = timed  # type: ignore[method-assign]


async def echo_drain(emu: Emulator, base_url: str, ids: list[int]) -> float:
    """A bare aiogram bot's time to take in every answer to its own poll, all sent at once."""
    emu.create_group("回声群", ids, chat_id=ECHO_GROUP, bot_ids=[int(ECHO_TOKEN.split(":")[0])])
    bot = Bot(ECHO_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
    dispatcher, seen = Dispatcher(), [0.0]
    count = [0]

    async def echo(_: PollAnswer) -> None:
        count[0] += 1
        seen[0] = time.perf_counter()

    dispatcher.poll_answer.register(echo)
    message = await bot.send_poll(
        ECHO_GROUP, "回声", ["A", "B"], type="quiz", correct_option_ids=[0], is_anonymous=False, open_period=600
    )
    task = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        await asyncio.sleep(0.5)
        start = time.perf_counter()
        for user_id in ids:
            emu.answer_poll(user_id, message.poll.id if message.poll else "", [user_id % 2])
        await wait_for(lambda: count[0] >= len(ids))
        return seen[0] - start
    finally:
        with contextlib.suppress(RuntimeError):
            await dispatcher.stop_polling()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await bot.session.close()


async def over_http(url: str, residents: int, seen: bool = False) -> list[str]:
    emu = Emulator(tokens=(DEFAULT_TOKEN, ECHO_TOKEN))
    async with run_emulator(emulator=emu) as (_, base_url):
        app = await build_app(Settings(database=DatabaseSettings(url=url)))
        try:
            return await _run(app, emu, base_url, residents, seen)
        finally:
            await app.aclose()


async def _run(app: App, emu: Emulator, base_url: str, residents: int, seen: bool) -> list[str]:
    ids = await seed(app, residents, seen=seen)
    for user_id in (ORGANISER, *ids):
        emu.create_user("居民", user_id=user_id)
    emu.create_group("基准群", [ORGANISER, *ids], chat_id=GROUP)
    done: dict[tuple[str, int], float] = {}
    per_poll: Counter[str] = Counter()
    channel = make_channel(app, "aiogram", DEFAULT_TOKEN, base_url)
    running = asyncio.create_task(run_bot(app, channel, handle_signals=False))
    try:
        await wait_for(lambda: channel.inbox is not None or running.done(), 10)
        if running.done():
            running.result()
        timed_inbox(channel.inbox, done, per_poll)
        emu.send_command(ORGANISER, "groupquiz", "garden 2 120", chat_id=GROUP)
        await wait_for(lambda: new_poll(emu, GROUP) is not None, 10)
        first = new_poll(emu, GROUP)
        assert first is not None
        await poll_recorded(app, first.id)
        sent: dict[int, float] = {}
        start = time.perf_counter()
        for k, user_id in enumerate(ids):
            await asyncio.sleep(max(0.0, start + k * 10.0 / residents - time.perf_counter()))
            sent[user_id] = time.perf_counter()
            answer(emu, user_id, first)
        await wait_for(lambda: per_poll[first.id] >= residents)
        latencies = [done[(first.id, u)] - sent[u] for u in ids]
        lines = [
            f"over HTTP (aiogram channel, sandbox emulator), {residents} residents, sqlite",
            f"(a) spread over 10 s: {percentiles(latencies)} (emulator → stored → handled, committed)",
        ]

        # What the periodic runner does: the next poll is queued in the outbox, the dispatcher posts it.
        await app.services.quiz.group.due(datetime.now(UTC) + timedelta(minutes=5))
        channel.inbox.dispatcher.wake()
        await wait_for(lambda: new_poll(emu, GROUP, [first.id]) is not None, 10)
        second = new_poll(emu, GROUP, [first.id])
        assert second is not None
        await poll_recorded(app, second.id)
        start = time.perf_counter()
        for user_id in ids:
            answer(emu, user_id, second)
        await wait_for(lambda: per_poll[second.id] >= residents)
        drain = max(t for (p, _), t in done.items() if p == second.id) - start
        echo = await echo_drain(emu, base_url, ids)
        lines.append(
            f"(b) {residents} answers at once: drained in {drain:.2f} s ({residents / drain:.0f}/s); "
            f"bare aiogram echo {echo:.2f} s ({residents / echo:.0f}/s); ratio {echo / drain:.2f}"
        )
        await app.services.quiz.group.due(datetime.now(UTC) + timedelta(minutes=10))  # the poll closes: credit
        channel.inbox.dispatcher.wake()  # the leaderboard
        lines.append(await check_ledger(app))
        return lines
    finally:
        await channel.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(running, 20)
