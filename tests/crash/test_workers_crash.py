"""Several workers, one killed: an intake and three `sicheng worker` processes on PostgreSQL + Redis while 1,000 new
residents go through onboarding → a quiz → a redemption at once; one worker gets SIGKILL in the middle and is
started again.

Checked afterwards: every update handled (none left pending or set aside) and none twice (each resident registered
once, one quiz round of five answers, exactly one redemption), each person's updates handled in the order they were
sent, the points ledger consistent (`sicheng points check`), and no request made inside a 429 window (429s are
injected; the pause is shared through Redis).

``SICHENG_WORKERS_RESIDENTS`` sets the number of residents (default 1000).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_app
from bot.config import DatabaseSettings, FilesSettings, Settings, TelegramSettings
from bot.sandbox.demo import ORGANISER_ID, seed_database, seed_emulator
from bot.sandbox.limits import Faults, RateLimits
from bot.sandbox.server import run_emulator
from storage.db import upgrade
from storage.messaging_repository import sender_of
from tests.conftest import PG_ADMIN_URL, in_thread
from tests.support.crash import (
    REWARD_COST,
    REWARD_NAME,
    CrashEmulator,
    CrashEnv,
    Launcher,
    add_reward,
    labels,
    resident_ids,
    shown,
    wait_until,
)
from tests.support.pg import create_database, drop_database
from tests.support.workers import REDIS_URL

pytestmark = [pytest.mark.crash, pytest.mark.postgres]

RESIDENTS = int(os.environ.get("SICHENG_WORKERS_RESIDENTS") or 1000)
STEP_TIMEOUT = 240.0  # one resident's step, while a thousand others act and a worker restarts
KNOWN_AFTER = 1.0  # seconds for a 429 to come back and its pause to reach every process (a busy CI machine)
LOOK_EVERY = 0.25  # a resident looks at their chat this often (a thousand waiters woken on every event would not)


def _shows(message: dict[str, Any], needle: str) -> bool:
    return needle in shown(message) or any(needle in label for label in labels(message))


class Resident:
    """A new resident going through the bot step by step, looking at their own chat only."""

    def __init__(self, env: CrashEnv, user_id: int, gift: Callable[[int], Awaitable[None]]) -> None:
        self.env = env
        self.gift = gift
        self.emulator = env.emulator
        self.user_id = user_id
        self.steps = 0

    def _messages(self, after: int) -> list[dict[str, Any]]:
        return [m for m in self.emulator.transcript(self.user_id, after=after)["messages"] if m["from_bot"]]

    async def wait(self, check: Callable[[dict[str, Any]], bool], after: int, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            for message in reversed(self._messages(after)):
                if check(message):
                    return message
            if time.monotonic() > deadline:
                seen = [shown(m)[:50] for m in self._messages(0)[-3:]]
                raise AssertionError(f"resident {self.user_id}: no {what} after step {self.steps}; last: {seen}")
            await asyncio.sleep(LOOK_EVERY * (0.5 + random.random()))

    async def send(self, text_: str, needle: str) -> dict[str, Any]:
        version = self.emulator.events.version
        self.steps += 1
        self.emulator.send_text(self.user_id, text_)
        return await self.wait(lambda m: _shows(m, needle), version, repr(needle))

    async def tap(self, message: dict[str, Any], label: str, needle: str) -> dict[str, Any]:
        buttons = labels(message)
        exact = next((b for b in buttons if label in b), None)
        assert exact is not None, f"resident {self.user_id}: no button {label!r} in {buttons}"
        version = self.emulator.events.version
        self.steps += 1
        self.emulator.press_button(self.user_id, self.user_id, message["message_id"], text=exact)
        return await self.wait(lambda m: _shows(m, needle), version, repr(needle))

    async def press_first(self, message: dict[str, Any]) -> int:
        version = self.emulator.events.version
        self.steps += 1
        self.emulator.press_button(self.user_id, self.user_id, message["message_id"], text=labels(message)[0])
        return version

    async def journey(self) -> None:
        welcome = await self.send("/start cdemo", "中文")
        consent = await self.tap(welcome, "中文", "同意")
        building = await self.tap(consent, "同意", "3号楼")
        await self.tap(building, "3号楼", "欢迎加入")
        # A welcome point from the organiser (another process writing the same ledger), so the redemption does not
        # depend on how many answers were right.
        await self.gift(self.user_id)
        quiz = await self.send("/quiz", "国家园林城市")
        intro = await self.tap(quiz, "国家园林城市", "开始答题")
        question = await self.tap(intro, "开始答题", "第 1/5 题")
        for number in range(1, 6):
            after = await self.press_first(question)
            submit = next((b for b in labels(question) if "提交答案" in b), None)
            if submit is not None:  # several answers: one ticked, then submitted at once — in this order, or the
                self.steps += 1  # submission finds nothing ticked and the journey stalls
                self.emulator.press_button(self.user_id, self.user_id, question["message_id"], text=submit)
            wanted = f"第 {number + 1}/5 题" if number < 5 else "题，获得"
            question = await self.wait(lambda m, w=wanted: w in shown(m), after, repr(wanted))
        overview = await self.send("/points", "我的文明积分")
        rewards = await self.tap(overview, "兑换奖励", "点击奖励查看详情")
        card = await self.tap(rewards, f"{REWARD_NAME} · {REWARD_COST} 分", "确认兑换吗")
        await self.tap(card, "确认兑换", "兑换码")


async def test_three_workers_one_killed_handle_every_update_once_in_order(
    launcher: Launcher, seed: int, tmp_path: Path
) -> None:
    name = f"sicheng_crash_{uuid.uuid4().hex[:8]}"
    url = await create_database(PG_ADMIN_URL, name)
    prefix = f"sicheng-crash-{uuid.uuid4().hex[:8]}"
    try:
        in_thread(upgrade, url)
        await _run(launcher, seed, tmp_path, url, prefix)
    finally:
        await drop_database(PG_ADMIN_URL, name)
        from redis.asyncio import Redis

        redis: Redis = Redis.from_url(REDIS_URL)
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def _run(launcher: Launcher, seed: int, tmp: Path, url: str, prefix: str) -> None:
    media = tmp / "media"
    media.mkdir()
    settings = Settings(
        database=DatabaseSettings(url=url), files=FilesSettings(root=media), telegram=TelegramSettings()
    )
    app = await build_app(settings)
    people = resident_ids(RESIDENTS)
    try:
        await seed_database(app)
        reward_id = await add_reward(app, tmp)
        emulator = CrashEmulator(
            # The token's limit is lifted so a thousand journeys fit in CI; 429s are injected instead, and every
            # process must keep away from the token while one is in force (the pause lives in Redis).
            rate_limits=RateLimits(per_bot_per_second=3000, bot_burst=3000, per_chat_per_second=50, chat_burst=50),
            faults=Faults(share_429=0.002, seed=seed, retry_after=3),
        )
        seed_emulator(emulator)
        for number, telegram_id in enumerate(people, 1):
            emulator.create_user(f"新居民{number:04d}", user_id=telegram_id, language_code="zh-hans")
        async with run_emulator("127.0.0.1", 0, emulator=emulator) as (_, base_url):
            env = CrashEnv(
                "aiogram", tmp, url, media, emulator, base_url, app, seed, random.Random(seed), launcher, people,
                reward_id, tmp / "bot.log",
            )  # fmt: skip
            env.tables = frozenset({"inbox_update", "outbox_message"})
            env.extra_env = {
                "SICHENG_REDIS__URL": REDIS_URL,
                "SICHENG_REDIS__PREFIX": prefix,
                "SICHENG_TELEGRAM__BOT_PER_SECOND": "3000",
            }
            try:
                await _journeys(env, app, people)
            finally:
                for process in env.bots:
                    await process.stop()
    finally:
        await app.aclose()


async def _journeys(env: CrashEnv, app: Any, people: list[int]) -> None:
    base = ["--api-url", env.base_url, "--channel", "aiogram"]
    intake = env.bot(["intake", "--polling", *base])
    workers = [env.bot(["worker", "--concurrency", "24", *base]) for _ in range(3)]
    for worker in workers:
        await worker.start()
    await intake.restart()
    env.mark("intake polling, three workers started")

    async def gift(user_id: int) -> None:
        await app.services.points.grant(ORGANISER_ID, user_id, REWARD_COST, "欢迎", f"welcome:{user_id}")

    residents = [Resident(env, uid, gift) for uid in people]
    journeys = asyncio.gather(*(r.journey() for r in residents))
    expected_steps = 17 * len(people)

    async def kill_one() -> None:
        victim = workers[env.rng.randrange(len(workers))]
        share = env.rng.uniform(0.25, 0.6)
        # Reaching the share takes time in proportion to the residents (17,000 steps for 1,000 on a shared 2-core
        # machine): allow 5 steps a second on top of one step's timeout; a stuck resident fails their own step.
        allowed = STEP_TIMEOUT + share * expected_steps / 5
        await wait_until(lambda: sum(r.steps for r in residents) >= share * expected_steps, allowed, "progress")
        done = await victim.kill(signal.SIGKILL)
        env.mark(f"worker killed at {share:.0%} of the steps ({done})")
        await asyncio.sleep(env.rng.uniform(0.5, 3.0))
        await victim.start()
        env.mark("worker started again")

    killer = asyncio.create_task(kill_one())
    try:
        await journeys
    except AssertionError as error:
        stuck = re.search(r"resident (\d+)", str(error))
        user = int(stuck.group(1)) if stuck else 0
        rows = await env.sql(
            "SELECT id, update_id, status, attempts, not_before, handled_at, error FROM inbox_update "
            "WHERE user_id = :user ORDER BY id",
            user=user,
        )
        sent = await env.sql(
            "SELECT id, kind, status, attempts, claimed_by, claimed_until, not_before, sent_at, error FROM "
            "outbox_message WHERE chat_id = :user ORDER BY id",
            user=user,
        )
        queue = env.emulator.queues[env.emulator.bot().id].items  # made by Telegram's side, not yet confirmed
        waiting = [u["update_id"] for u in queue if sender_of(u) == user]
        found = f"\nnot yet fetched from the emulator: {len(queue)} update(s), theirs: {waiting}"
        found += await _redis_state(str(env.extra_env["SICHENG_REDIS__PREFIX"]), user, [int(r[0]) for r in rows])
        busy = await env.sql(
            "SELECT pid, state, wait_event_type, wait_event, now() - xact_start, left(query, 160) "
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
        )
        found += f"\ndatabase sessions not idle (pid, state, waiting on, in transaction for, query): {busy}"
        stalls = [line for line in env.log_lines() if "in hand for" in line]
        found += "\nworkers' stalled announcements:\n" + ("\n".join(stalls[-20:]) or "none logged")
        raise AssertionError(env.explain(f"{error}\ntheir updates: {rows}\nto them: {sent}{found}")) from None
    await killer
    env.mark(f"{len(people)} journeys done")
    await _settle(env)

    rows = await env.sql("SELECT status, COUNT(*) FROM inbox_update GROUP BY status")
    assert dict(rows) == {"done": dict(rows).get("done", 0)}, env.explain(f"inbox: {rows}")
    # Each person's updates were handled in the order they came, one at a time.
    order = await env.sql("SELECT user_id, id, handled_at FROM inbox_update WHERE user_id IS NOT NULL ORDER BY id")
    last: dict[int, Any] = {}
    for user_id, row_id, handled_at in order:
        if user_id in last:
            assert handled_at >= last[user_id], env.explain(f"resident {user_id}: row {row_id} handled out of order")
        last[user_id] = handled_at
    # Nothing handled twice: one registration, one quiz round of five answers, one redemption each.
    ids = {"ids": people}
    registered = await env.sql(
        "SELECT COUNT(*) FROM resident WHERE telegram_id = ANY(:ids) AND consent_at IS NOT NULL", **ids
    )
    assert registered[0][0] == len(people)
    redemptions = await env.sql(
        "SELECT r.telegram_id, COUNT(*) FROM redemption d JOIN points_account a ON a.id = d.account_id "
        "JOIN resident r ON r.id = a.resident_id "
        "WHERE r.telegram_id = ANY(:ids) GROUP BY r.telegram_id",
        **ids,
    )
    assert sorted(n for _, n in redemptions) == [1] * len(people), env.explain("redemptions per resident")
    answers = await env.sql(
        "SELECT r.telegram_id, COUNT(*) FROM quiz_answer a JOIN quiz_round q ON q.id = a.round_id "
        "JOIN resident r ON r.id = q.resident_id WHERE r.telegram_id = ANY(:ids) GROUP BY r.telegram_id",
        **ids,
    )
    assert sorted(n for _, n in answers) == [5] * len(people), env.explain("quiz answers per resident")
    assert await app.services.points.check() == [], "sicheng points check: a balance differs from its entries"
    late, in_flight = _inside_known_windows(env)
    assert late == [], f"{len(late)} requests made inside a 429 window the bot knew of ({in_flight} were in flight)"
    injected = [r for r in env.emulator.call_log if r.status == 429]
    env.mark(
        f"{len(injected)} injected 429s honoured ({in_flight} requests were already in flight); {len(order)} updates"
    )


def _inside_known_windows(env: CrashEnv) -> tuple[list[Any], int]:
    """Requests the emulator logged inside a token-wide 429 window, less those already on their way: a request that
    arrives within ``KNOWN_AFTER`` of the 429 left a process before the 429 (or the pause it set in Redis) could have
    reached it. Every later one is a process sending while it should have been waiting."""
    windows = [r for r in env.emulator.call_log if r.status == 429 and r.until is not None]
    late, in_flight = [], 0
    for record in env.emulator.flood_violations():
        inside = [w for w in windows if w.seq < record.seq and w.t <= record.t < w.until]
        if any(record.t >= w.t + KNOWN_AFTER for w in inside):
            late.append(record)
        else:
            in_flight += 1
    return late, in_flight


async def _settle(env: CrashEnv) -> None:
    deadline = time.monotonic() + 120
    while True:
        backlog = await env.backlog()
        if not backlog and not env.emulator.pending_updates and not env.emulator.in_flight:
            return
        assert time.monotonic() < deadline, env.explain(f"backlog left: {backlog}")
        await asyncio.sleep(0.2)


async def _redis_state(prefix: str, user: int, rows: list[int]) -> str:
    """For a stuck resident: their lock (who holds it, for how long) and where their rows' announcements are (read
    and unacknowledged by which worker, how long idle, how often delivered; or still waiting to be read)."""
    from redis.asyncio import Redis

    redis: Redis = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        locks = [key async for key in redis.scan_iter(match=f"{prefix}:*lock:{user}")]
        lock = [(key, await redis.get(key), await redis.pttl(key)) for key in locks]
        streams = [key async for key in redis.scan_iter(match=f"{prefix}:*:updates")]
        if not streams:
            return f"\ntheir lock: {lock}; no stream"
        stream = streams[0]
        announced = [(entry, int(fields.get("row", 0))) for entry, fields in await redis.xrange(stream)]
        theirs = {entry: row for entry, row in announced if row in rows}
        pending = await redis.xpending_range(stream, "workers", min="-", max="+", count=100_000)
        held = [(theirs[p["message_id"]], p["consumer"], p["time_since_delivered"], p["times_delivered"])
                for p in pending if p["message_id"] in theirs]  # fmt: skip
        groups = await redis.xinfo_groups(stream)
        return (f"\ntheir lock: {lock}\ntheir announcements (row, entry): {sorted((r, e) for e, r in theirs.items())}"
                f"\nunacknowledged (row, worker, idle ms, deliveries): {held}\ngroup: {groups}")  # fmt: skip
    finally:
        await redis.aclose()
