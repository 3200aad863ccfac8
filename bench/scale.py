"""Scale: one mixed load through ``sicheng intake`` and 1, 2 and 3 ``sicheng worker`` processes (PostgreSQL + Redis).

    python -m bench.scale --pg-url postgresql+asyncpg://user@host/db [--residents 300] [--workers 1,2,3]
                          [--single] [--intake webhook|polling] [--redis-url redis://host:6379/0]
                          [--concurrency 16] [--logs FOLDER]

Method. For each worker count, from scratch: a PostgreSQL database is created on the ``--pg-url`` server (used as
the admin connection), migrated as ``sicheng db upgrade`` does, seeded with the demo community, ``--residents``
× 3/4 registered residents with 5 points each and a reward costing 1 point with no stock limit, and dropped after
the run; Redis keys live under a prefix of their own, deleted after the run. The sandbox emulator plays Telegram
over HTTP in a child process of its own (as ``bench.handling --emulator process``), which also plays the
residents and keeps the stopwatch. The bot runs as real processes, started as an operator starts them:
``sicheng intake`` (by webhook: it sets its webhook and the emulator posts each update to it, one at a time; or
``--intake polling``: ``sicheng intake --polling``) and N × ``sicheng worker``, each its own interpreter with its
own connections and caches. ``--single`` first runs ``sicheng run`` (one process doing everything, ``--webhook``
likewise) on the same load, for reference.

Load. Every resident starts at once and acts like a person: each next step is sent once the bot has answered the
previous one (every Bot API call that step is answered with has been logged by the emulator). A quarter are new
people onboarding (``/start cdemo``, 中文, 同意, a building: 4 updates); the others are registered and open the
menu (/menu, 设置), take a private quiz (/quiz, a track, 开始答题, five answers; a multiple-answer question is a
tick and 提交答案), and redeem the reward (/points, 兑换奖励, the reward, 确认兑换): 14 or more updates each.

Figures. Latency of an update: from the emulator queueing it to the emulator logging the last call of the bot's
answer to it (p50 and p99 over every update of the run). Throughput: updates / (first update queued → last answer
logged). Before the timed load, ten more residents warm the processes up (not timed, but checked). Under each
line: CPU milliseconds per update of each process during the load (and of the PostgreSQL backends serving the
run's database, when the server is on this machine), and how busy the whole machine was.

Checks after each run (the run fails loudly otherwise): every inbox row ``done`` and one per update sent; every
step answered with exactly the calls it expects, and no call more once everything has settled (an update handled
twice would answer twice); one redemption per redeeming resident; ``sicheng points check`` clean (the service it
calls); no failed Bot API call.

Pacing. As in ``bench.handling``: the per-chat pace is raised to 1000/s and the per-token pace (Telegram's ≈30
messages/s per bot) lifted through the settings, so the figure is handling, not Telegram's send limit; the last
line says where that limit would put this mix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text

from bench.remote import RemoteEmulator, emulator_process, pg_database
from bot.app import App, build_app
from bot.config import DatabaseSettings, FilesSettings, Settings
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.demo import COMMUNITY, ORGANISER_ID, seed_database
from bot.sandbox.emulator import Emulator
from bot.sandbox.errors import ApiError
from storage.db import upgrade_async

log = logging.getLogger("bench.scale")
ROOT = Path(__file__).resolve().parents[1]
CLI = ("-c", "from bot.cli import main; main()")  # what the `sicheng` script runs
REDIS_URL = "redis://127.0.0.1:6379/0"
REGISTERED_BASE = 2_000_000  # registered residents 2000001..., newcomers 3000001..., warm-up 4000001...
NEWCOMER_BASE = 3_000_000
WARMUP_BASE = 4_000_000
WARMUP = 10
POINTS = 5
REWARD_SLUG = "scale-voucher"
REWARD_LABEL = "测试券 · 1 分"
TRACKS = ("全国文明城市", "国家卫生城市", "国家园林城市", "国家食品安全示范城市")
CHAT_PER_SECOND = "1000"  # per-chat pace (default 1/s), as bench.handling
BOT_PER_SECOND = "1000000"  # the token's pace (Telegram's 30/s), lifted
STEP_TIMEOUT = 120.0  # seconds for the bot to answer one step
START_TIMEOUT = 240.0  # seconds for a process to be taking updates (importing aiogram is slow on a busy host)
SETTLE_TIMEOUT = 60.0
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b")
QUIET = 1.5  # seconds with nothing pending, after the last answer, before looking for answers too many

# The calls a step is answered with, by Bot API method (lower case).
SEND, EDIT, ANSWER, PHOTO = "sendmessage", "editmessagetext", "answercallbackquery", "sendphoto"
TEXT = {SEND: 1}
TAP_EDIT = {ANSWER: 1, EDIT: 1}
TAP_SEND = {ANSWER: 1, SEND: 1}
TAP_EDIT_SEND = {ANSWER: 1, EDIT: 1, SEND: 1}
REDEEMED = {ANSWER: 1, EDIT: 1, PHOTO: 1}
# Calls that put something in a chat or answer a tap; everything else (getUpdates, getMe...) is not an answer.
ANSWER_PREFIXES = ("send", "edit", "answercallbackquery", "delete", "copy", "forward")
IGNORED = frozenset({"deletewebhook", "sendchataction"})
METERED = ("send", "edit")  # what Telegram's ≈30 messages/s per token counts
TELEGRAM_PER_SECOND = 30


# --- Telegram's side: the emulator, the residents and the stopwatch (in the emulator's process) ----------------


class ScaleEmulator(Emulator):
    """The sandbox emulator, also noting for every private chat when each answer to it was logged."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.answers: dict[int, list[tuple[str, float]]] = defaultdict(list)  # chat → (method, monotonic time)
        self.waiters: dict[int, asyncio.Event] = {}
        self.errors: list[str] = []

    async def call_api(
        self, token: str, method: str, params: Mapping[str, Any] | None = None, uploads: Any = None
    ) -> Any:
        try:
            result = await super().call_api(token, method, params, uploads)
        except ApiError as error:
            if len(self.errors) < 20:
                self.errors.append(f"{method}: {error.description}")
            raise
        name = method.lower()
        if name.startswith(ANSWER_PREFIXES) and name not in IGNORED:
            chat = self._chat_of(name, params or {})
            if chat is not None:
                self.answers[chat].append((name, time.monotonic()))
                waiter = self.waiters.pop(chat, None)
                if waiter is not None:
                    waiter.set()
        return result

    def _chat_of(self, method: str, params: Mapping[str, Any]) -> int | None:
        if method == ANSWER:
            query = self.callbacks.get(str(params.get("callback_query_id")))
            return query.user_id if query is not None else None
        with contextlib.suppress(TypeError, ValueError):
            return int(str(params.get("chat_id")))
        return None

    async def changed(self, chat: int, seconds: float) -> None:
        event = self.waiters.setdefault(chat, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


@dataclasses.dataclass
class Step:
    kind: str  # "text", "tap" (a button whose label contains ``what``), "pick" (the n-th button), "answer" (quiz)
    what: str | int
    expect: Mapping[str, int] = dataclasses.field(default_factory=dict)


def newcomer_plan(n: int) -> list[Step]:
    return [
        Step("text", "/start cdemo", TEXT),
        Step("tap", "中文", TAP_EDIT),
        Step("tap", "同意", TAP_EDIT),
        Step("pick", n, TAP_EDIT_SEND),  # a building (the n-th of the buttons, wrapping)
    ]


def registered_plan(n: int) -> list[Step]:
    return [
        Step("text", "/menu", TEXT),
        Step("tap", "设置", TAP_SEND),
        Step("text", "/quiz", TEXT),
        Step("tap", TRACKS[n % len(TRACKS)], TAP_EDIT),
        Step("tap", "开始答题", TAP_SEND),
        *(Step("answer", k) for k in range(5)),
        Step("text", "/points", TEXT),
        Step("tap", "兑换奖励", TAP_EDIT),
        Step("tap", REWARD_LABEL, TAP_EDIT),
        Step("tap", "确认兑换", REDEEMED),
    ]


def warmup_plan(_: int) -> list[Step]:
    return [Step("text", "/menu", TEXT), Step("tap", "设置", TAP_SEND), Step("text", "/points", TEXT)]


PLANS = {"newcomer": newcomer_plan, "registered": registered_plan, "warmup": warmup_plan}


@dataclasses.dataclass
class LoadResult:
    updates: int
    seconds: float  # first update queued → last answer logged
    latencies: list[float]  # seconds, one per update
    failures: list[str]
    emulator_cpu: float  # CPU seconds of the emulator's process (residents and stopwatch included)
    messages: int  # answers Telegram's per-token limit counts (sends and edits)


class Driver:
    """Plays the residents on the emulator, in its own process; every method is called through the pipe."""

    def __init__(self, emulator: ScaleEmulator) -> None:
        self.emu = emulator
        self.expected: dict[int, Counter[str]] = defaultdict(Counter)  # chat → calls its steps were answered with
        self.sent = 0

    def add_people(self, user_ids: Sequence[int]) -> None:
        for user_id in user_ids:
            self.emu.create_user(f"居民{user_id % 100_000}", user_id=user_id)

    def intake_ready(self, webhook: bool) -> bool:
        bot = self.emu.default_bot
        if webhook:
            return bot.id in self.emu.webhooks
        return any(r.method.lower() == "getupdates" and r.bot_id == bot.id for r in self.emu.call_log)

    async def load(self, people: Sequence[tuple[int, str, int]]) -> dict[str, Any]:
        """Everyone in ``people`` (user id, plan, number) goes through their plan at once; each step is sent once
        the previous one is answered. A :class:`LoadResult` as a dict (plain data through the pipe)."""
        latencies: list[float] = []
        failures: list[str] = []
        times: list[float] = []
        cpu = time.process_time()
        before, messages = self.sent, self.messages()
        start = time.monotonic()
        await asyncio.gather(
            *(self._person(user_id, PLANS[plan](n), latencies, times, failures) for user_id, plan, n in people)
        )
        end = max(times, default=start)
        cpu = time.process_time() - cpu
        result = LoadResult(self.sent - before, end - start, latencies, failures, cpu, self.messages() - messages)
        return dataclasses.asdict(result)

    async def _person(
        self, user_id: int, plan: list[Step], latencies: list[float], times: list[float], failures: list[str]
    ) -> None:
        for number, step in enumerate(plan):
            try:
                for done in await self._step(user_id, step):
                    latencies.append(done[1] - done[0])
                    times.append(done[1])
            except Exception as error:
                failures.append(f"resident {user_id}, step {number + 1} ({step.kind} {step.what!r}): {error}")
                return

    async def _step(self, user_id: int, step: Step) -> list[tuple[float, float]]:
        """Send one step (a multiple-answer quiz question: a tick, then 提交答案); (queued, answered) per update."""
        if step.kind == "text":
            return [await self._send(user_id, step.expect, lambda: self.emu.send_text(user_id, str(step.what)))]
        if step.kind in ("tap", "pick"):
            message_id, data = self._button(user_id, step)
            return [await self._send(user_id, step.expect, lambda: self._press(user_id, message_id, data))]
        message_id, buttons = self._question(user_id)
        first = buttons[0]
        if "|quiz.ans|" in first:
            return [await self._send(user_id, TAP_EDIT_SEND, lambda: self._press(user_id, message_id, first))]
        submit = next(b for b in buttons if "|quiz.sub|" in b)
        ticked = await self._send(user_id, TAP_EDIT, lambda: self._press(user_id, message_id, first))
        submitted = await self._send(user_id, TAP_EDIT_SEND, lambda: self._press(user_id, message_id, submit))
        return [ticked, submitted]

    def _press(self, user_id: int, message_id: int, data: str) -> None:
        self.emu.press_button(user_id, user_id, message_id, data=data)

    async def _send(self, user_id: int, expect: Mapping[str, int], act: Any) -> tuple[float, float]:
        answers = self.emu.answers[user_id]
        seen = len(answers)
        queued = time.monotonic()
        act()
        self.sent += 1
        self.expected[user_id].update(expect)
        deadline = queued + STEP_TIMEOUT
        while True:
            got: Counter[str] = Counter()
            last = queued
            for method, at in answers[seen:]:
                if got[method] < expect.get(method, 0):
                    got[method] += 1
                    last = max(last, at)
            if all(got[m] >= k for m, k in expect.items()):
                return queued, last
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer within {STEP_TIMEOUT:.0f} s; got {dict(got)} of {dict(expect)}")
            await self.emu.changed(user_id, remaining)

    def _messages(self, user_id: int) -> list[dict[str, Any]]:
        return [m for m in self.emu.transcript(user_id)["messages"] if m["from_bot"]]

    def _button(self, user_id: int, step: Step) -> tuple[int, str]:
        """(message id, callback data) of the button this step taps, on the newest message offering it."""
        for message in reversed(self._messages(user_id)):
            buttons = [b for row in message.get("inline_keyboard", []) for b in row if b.get("callback_data")]
            if step.kind == "pick" and buttons:
                return message["message_id"], buttons[int(step.what) % len(buttons)]["callback_data"]
            for button in buttons:
                if str(step.what) in button["text"]:
                    return message["message_id"], button["callback_data"]
        raise LookupError(f"no button {step.what!r} on screen; {self._last_words(user_id)}")

    def _question(self, user_id: int) -> tuple[int, list[str]]:
        """The quiz question on screen: (message id, callback data of its buttons)."""
        for message in reversed(self._messages(user_id)):
            data = [b.get("callback_data") or "" for row in message.get("inline_keyboard", []) for b in row]
            if any("|quiz.ans|" in d or "|quiz.tog|" in d for d in data):
                return message["message_id"], data
        raise LookupError(f"no quiz question on screen; {self._last_words(user_id)}")

    def _last_words(self, user_id: int) -> str:
        messages = self._messages(user_id)
        last = messages[-1] if messages else {}
        return f"the bot's last message: {str(last.get('text') or last.get('caption') or '')[:80]!r}"

    def problems(self) -> list[str]:
        """Chats answered with more or fewer calls than their steps expect, and Bot API calls that failed."""
        found = []
        for chat, expected in sorted(self.expected.items()):
            got = Counter(method for method, _ in self.emu.answers[chat])
            if got != expected:
                found.append(f"chat {chat}: answered with {dict(got)}, expected {dict(expected)}")
        found += [f"Bot API error: {error}" for error in self.emu.errors]
        return found

    def sent_updates(self) -> int:
        return self.sent

    def messages(self) -> int:
        """Answers that count against Telegram's per-token limit (sends and edits; a tap's answer does not)."""
        return sum(k for expected in self.expected.values() for m, k in expected.items() if m.startswith(METERED))


def _driver() -> tuple[Emulator, Driver]:
    """The emulator and its driver, built in the emulator's child process."""
    emulator = ScaleEmulator()
    return emulator, Driver(emulator)


# --- the bot's side: intake and workers as processes ---------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL if the benchmark dies, so an aborted run leaves no process polling."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@dataclasses.dataclass
class BotProcess:
    name: str
    process: asyncio.subprocess.Process
    log: Path
    ready_line: str

    def ready(self) -> bool:
        return self.ready_line in self.log.read_text(errors="replace")

    def tail(self, lines: int = 15) -> str:
        kept = self.log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"  {self.name}| {line}" for line in kept)

    def errors(self) -> tuple[int, list[str]]:
        """ERROR lines in the log, and the distinct exceptions it shows (last lines of tracebacks)."""
        lines = self.log.read_text(errors="replace").splitlines()
        count = sum(1 for line in lines if " ERROR " in line)
        causes = sorted({line[:160] for line in lines if EXCEPTION_LINE.match(line)})
        return count, causes

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.process.pid)


def _cpu_seconds(pid: int | str) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere or when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _postgres_cpu(database: str) -> dict[str, float]:
    """CPU seconds so far of each PostgreSQL backend serving ``database`` on this machine (Linux: the server names
    the database in each backend's title); empty when the server is elsewhere or /proc cannot tell."""
    found = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if title.startswith("postgres: ") and f" {database} " in title:
                    found[entry.name] = _cpu_seconds(entry.name)
    return found


@dataclasses.dataclass
class Bench:
    args: argparse.Namespace
    folder: Path
    intake_kind: str  # "webhook" or "polling"
    logs: Path  # the processes' output, one file per process and run
    workers: int = 0

    def environment(self, url: str, prefix: str, port: int) -> dict[str, str]:
        return {
            **os.environ,
            "SICHENG_TELEGRAM__TOKEN": DEFAULT_TOKEN,
            "SICHENG_DATABASE__URL": url,
            "SICHENG_REDIS__URL": self.args.redis_url,
            "SICHENG_REDIS__PREFIX": prefix,
            "SICHENG_FILES__ROOT": str(self.folder / "media"),
            "SICHENG_TELEGRAM__CHAT_PER_SECOND": CHAT_PER_SECOND,
            "SICHENG_TELEGRAM__BOT_PER_SECOND": BOT_PER_SECOND,
            "SICHENG_WEBHOOK__HOST": "127.0.0.1",
            "SICHENG_WEBHOOK__PORT": str(port),
            "SICHENG_WEBHOOK__URL": f"http://127.0.0.1:{port}/telegram/webhook",
            "SICHENG_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }

    async def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], ready_line: str) -> BotProcess:
        log = self.logs / f"{self.workers}w-{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *CLI,
                *argv,
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=_die_with_parent,
            )
        return BotProcess(name, process, log, ready_line)

    @contextlib.asynccontextmanager
    async def bot(self, base_url: str, url: str, prefix: str, workers: int) -> AsyncIterator[list[BotProcess]]:
        """The intake and ``workers`` workers, each started as an operator would, until every one is taking
        updates; stopped with SIGTERM (SIGKILL after 20 s) on the way out."""
        env = self.environment(url, prefix, _free_port())
        api = ["--api-url", base_url]
        running: list[BotProcess] = []
        try:
            if workers == 0:  # the reference: one process doing everything
                webhook = self.intake_kind == "webhook"
                argv, ready = (
                    (["run", "--webhook", *api], "webhook: listening") if webhook else (["run", *api], "polling")
                )
                running.append(await self.start("run", argv, env, ready))
            for number in range(1, workers + 1):
                argv = ["worker", *api, "--concurrency", str(self.args.concurrency)]
                running.append(await self.start(f"worker{number}", argv, env, "taking updates"))
            if self.intake_kind == "polling":
                argv, ready = ["intake", "--polling", *api], "intake: long polling"
            else:
                argv, ready = ["intake", *api], "webhook: listening"
            if workers:  # one transaction per batch or request: a small pool leaves the connections to the workers
                running.append(await self.start("intake", argv, {**env, "SICHENG_DATABASE__POOL_SIZE": "2"}, ready))
            deadline = time.monotonic() + START_TIMEOUT
            while not all(p.ready() for p in running):
                dead = [p for p in running if p.process.returncode is not None]
                if dead or time.monotonic() > deadline:
                    tails = "\n".join(p.tail() for p in dead or running)
                    raise RuntimeError(f"a bot process did not start (exited or timed out):\n{tails}")
                await asyncio.sleep(0.2)
            yield running
        finally:
            await _stop(running)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _stop(running: Sequence[BotProcess]) -> None:
    for bot in sorted(running, key=lambda p: p.name != "intake"):  # the intake first: nothing new comes in
        if bot.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                bot.process.send_signal(signal.SIGTERM)
    for bot in running:
        try:
            await asyncio.wait_for(bot.process.wait(), 20)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                bot.process.kill()
            await bot.process.wait()


# --- the database ------------------------------------------------------------------------------------------------


async def seed(app: App, folder: Path, registered: Sequence[int]) -> None:
    """The demo community, registered residents with ``POINTS`` points each, and a 1-point reward with no stock or
    per-person limit (every redemption must succeed)."""
    await seed_database(app)
    community = await app.services.communities.by_code(COMMUNITY)
    assert community is not None
    buildings = [b.id for b in community.buildings]
    limit = asyncio.Semaphore(8)

    async def register(n: int, telegram_id: int) -> None:
        async with limit:
            await app.services.residents.give_consent(telegram_id, f"居民{n}", "zh_Hans")
            await app.services.residents.join(telegram_id, community.id, buildings[n % len(buildings)])
            await app.services.points.grant(ORGANISER_ID, telegram_id, POINTS, "基准测试", f"scale:{telegram_id}")

    await asyncio.gather(*(register(n, telegram_id) for n, telegram_id in enumerate(registered)))
    source = folder / "scale-rewards.yaml"
    source.write_text(
        f"community: {COMMUNITY}\nrewards:\n  - slug: {REWARD_SLUG}\n    name:\n      zh_Hans: 测试券\n"
        "      en: Test voucher\n    description:\n      zh_Hans: 基准测试用\n      en: for benchmarks\n"
        "    cost: 1\n",
        encoding="utf-8",
    )
    await app.services.rewards.import_rewards(source, COMMUNITY)


async def _scalar(app: App, query: str) -> Any:
    async with app.engine.connect() as conn:
        return (await conn.execute(text(query))).scalar_one()


async def settle(app: App) -> None:
    """Until nothing waits in the inbox or the outbox, then ``QUIET`` seconds more (late duplicates show up)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    pending = "SELECT (SELECT COUNT(*) FROM inbox_update WHERE status = 'pending') + " + (
        "(SELECT COUNT(*) FROM outbox_message WHERE status = 'pending')"
    )
    while await _scalar(app, pending):
        if time.monotonic() > deadline:
            raise RuntimeError(f"still pending after {SETTLE_TIMEOUT:.0f} s")
        await asyncio.sleep(0.2)
    await asyncio.sleep(QUIET)


async def check(app: App, emulator: RemoteEmulator, redeemers: int) -> list[str]:
    """What must hold after a run; an empty list when it all does."""
    problems: list[str] = list(await emulator.call("problems"))
    sent = int(await emulator.call("sent_updates"))
    async with app.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT status, COUNT(*) FROM inbox_update GROUP BY status"))).fetchall()
    statuses = {str(status): int(count) for status, count in rows}
    if set(statuses) != {"done"} or statuses["done"] != sent:
        problems.append(f"inbox rows by status {statuses}, expected {{'done': {sent}}} (one per update sent)")
    redemptions = int(await _scalar(app, "SELECT COUNT(*) FROM redemption"))
    if redemptions != redeemers:
        problems.append(f"{redemptions} redemptions for {redeemers} residents who redeemed once each")
    problems += [f"points check: account {m[0]}: {m[1:]}" for m in await app.services.points.check()]
    return problems


# --- one run per worker count ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    workers: int
    load: LoadResult
    bot_cpu: dict[str, float]  # CPU seconds during the load, by process
    postgres_cpu: float  # CPU seconds of the PostgreSQL backends serving the run's database during the load
    busy: float  # share of the machine's CPU time busy during the load (every process, this benchmark's or not)
    errors: int  # ERROR lines in the bot's logs

    @property
    def throughput(self) -> float:
        return self.load.updates / self.load.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.load.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    def line(self) -> str:
        label = f"workers={self.workers}" if self.workers else "single (sicheng run)"
        return (
            f"{label} updates={self.load.updates} throughput={self.throughput:.1f}/s "
            f"p50={self.percentile(0.5):.0f}ms p99={self.percentile(0.99):.0f}ms"
        )

    def detail(self) -> str:
        per = 1000 / self.load.updates
        workers = {n: c for n, c in self.bot_cpu.items() if n != "intake"}
        each = ", ".join(f"{c * per:.1f}" for _, c in sorted(workers.items()))
        intake = f"intake {self.bot_cpu['intake'] * per:.1f}, " if "intake" in self.bot_cpu else ""
        emulator = self.load.emulator_cpu * per
        return (
            f"  {self.load.seconds:.1f} s; CPU ms per update: {'workers' if self.workers else 'the process'} "
            f"{sum(workers.values()) * per:.1f} ({each}), {intake}PostgreSQL {self.postgres_cpu * per:.1f}, "
            f"emulator+residents {emulator:.1f}; "
            f"machine busy {self.busy:.0%}; checks OK; {self.errors} errors logged"
        )


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (Linux /proc/stat; zeros elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


async def one_run(bench: Bench, workers: int) -> Run:
    args = bench.args
    newcomers = args.residents // 4
    registered = [REGISTERED_BASE + n for n in range(1, args.residents - newcomers + 1)]
    arrivals = [NEWCOMER_BASE + n for n in range(1, newcomers + 1)]
    warmers = [WARMUP_BASE + n for n in range(1, WARMUP + 1)]
    tag = uuid.uuid4().hex[:8]
    name, prefix = f"sicheng_scale_{tag}_{workers}w", f"sicheng-scale-{tag}-{workers}w"
    url = await pg_database(args.pg_url, name, create=True)
    redis: Redis = Redis.from_url(args.redis_url)
    try:
        log.info("workers=%s: migrating %s", workers, name)
        await upgrade_async(url)
        settings = Settings(
            database=DatabaseSettings(url=url, pool_size=4), files=FilesSettings(root=bench.folder / "media")
        )
        app = await build_app(settings)
        try:
            log.info("seeding")
            await seed(app, bench.folder, [*registered, *warmers])
            log.info("starting the emulator")
            async with emulator_process(_driver) as emulator:
                await emulator.call("add_people", [*registered, *arrivals, *warmers])
                log.info("starting the bot's processes")
                async with bench.bot(emulator.base_url, url, prefix, workers) as running:
                    log.info("warming up")
                    webhook = bench.intake_kind == "webhook"
                    for _ in range(600):
                        if await emulator.call("intake_ready", webhook):
                            break
                        await asyncio.sleep(0.1)
                    else:
                        raise RuntimeError("the intake started but never polled or set its webhook")
                    warming = [(u, "warmup", n) for n, u in enumerate(warmers)]
                    warm = LoadResult(**await emulator.call("load", warming))
                    if warm.failures:
                        raise RuntimeError("warm-up failed:\n" + "\n".join(warm.failures[:10]))
                    await settle(app)
                    people = [(u, "registered", n) for n, u in enumerate(registered)]
                    people += [(u, "newcomer", n) for n, u in enumerate(arrivals)]
                    people.sort(key=lambda p: p[2])  # newcomers and registered residents interleaved
                    log.info("load")
                    cpu_before = {p.name: p.cpu_seconds() for p in running}
                    pg_before = _postgres_cpu(name)
                    machine = _cpu_times()
                    load = LoadResult(**await emulator.call("load", people))
                    busy, total = (a - b for a, b in zip(_cpu_times(), machine, strict=True))
                    bot_cpu = {p.name: p.cpu_seconds() - cpu_before[p.name] for p in running}
                    # Backends that started during the load count whole (they began with it); ended ones are lost.
                    pg_cpu = sum(c - pg_before.get(pid, 0.0) for pid, c in _postgres_cpu(name).items())
                    if load.failures:
                        tails = "\n".join(p.tail() for p in running)
                        raise RuntimeError(
                            f"{len(load.failures)} residents stuck, e.g.:\n" + "\n".join(load.failures[:10]) + "\n"
                            f"bot logs:\n{tails}"
                        )
                    log.info("settling and checking")
                    await settle(app)
                    problems = await check(app, emulator, len(registered))
                    errors = sum(p.errors()[0] for p in running)
                    if problems:
                        causes = sorted({c for p in running for c in p.errors()[1]})
                        raise RuntimeError(
                            f"workers={workers}: checks failed:\n" + "\n".join(problems[:20]) + f"\n{errors} ERROR "
                            "lines in the bot's logs; exceptions seen:\n" + "\n".join(causes[:10])
                        )
        finally:
            await app.aclose()
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await pg_database(args.pg_url, name, create=False)
    return Run(workers, load, bot_cpu, pg_cpu, busy / total if total else 0.0, errors)


async def main(args: argparse.Namespace) -> None:
    counts = [0] * int(args.single) + [int(n) for n in args.workers.split(",")]
    intake = "webhook (the emulator posts each update)" if args.intake == "webhook" else "long polling (--polling)"
    print(
        f"{args.residents} residents at once ({args.residents // 4} onboarding, the rest menu + quiz + redemption); "
        f"intake: {intake}; workers: --concurrency {args.concurrency}; PostgreSQL + Redis"
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(args, Path(folder), args.intake, Path(args.logs or folder))
        (bench.folder / "media").mkdir()
        bench.logs.mkdir(parents=True, exist_ok=True)
        for workers in counts:
            bench.workers = workers
            run = await one_run(bench, workers)
            runs.append(run)
            print(run.line())
            print(run.detail(), flush=True)
    single = runs[0] if args.single else None
    first = int(args.single)
    base, others = runs[first], runs[first + 1 :]
    if others:
        print("ratio " + " ".join(f"{r.workers}w/{base.workers}w={r.throughput / base.throughput:.2f}" for r in others))
        p99 = (f"{r.workers}w/{base.workers}w={r.percentile(0.99) / base.percentile(0.99):.2f}" for r in others)
        print("p99 ratio " + " ".join(p99))
    if single is not None:
        print(
            f"against one process: {base.workers}w/single throughput={base.throughput / single.throughput:.2f} "
            f"p99={base.percentile(0.99) / single.percentile(0.99):.2f}"
        )
    per_update = base.load.messages / base.load.updates
    print(
        f"{per_update:.2f} messages per update (sends and edits): at Telegram's ≈{TELEGRAM_PER_SECOND} messages/s per "
        f"token this mix tops out at ≈{TELEGRAM_PER_SECOND / per_update:.0f} updates/s, whatever the number of workers"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", required=True, help="PostgreSQL server URL; scratch databases are made there")
    parser.add_argument("--redis-url", default=REDIS_URL, help=f"Redis (default {REDIS_URL}); keys are removed")
    parser.add_argument("--residents", type=int, default=300, help="residents acting at once (default 300)")
    parser.add_argument("--workers", default="1,2,3", help="worker counts, the first is the base (default 1,2,3)")
    parser.add_argument("--concurrency", type=int, default=16, help="updates each worker handles at once (16)")
    parser.add_argument(
        "--single", action="store_true", help="first run `sicheng run` (one process) with the same load, for reference"
    )
    parser.add_argument("--logs", help="keep the processes' logs in this folder (default: removed at the end)")
    parser.add_argument(
        "--intake", choices=("webhook", "polling"), default="webhook", help="how updates come in (default webhook)"
    )
    args = parser.parse_args(argv)
    if args.residents < 4:
        parser.error("--residents must be at least 4")
    if not re.fullmatch(r"[1-9]\d*(,[1-9]\d*)*", args.workers):
        parser.error("--workers is a comma-separated list of counts from 1, e.g. 1,2,3")
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)  # the phases of each run, on stderr
    asyncio.run(main(parse()))
