"""Crash-test harness: the real bot (``sicheng run``) as a subprocess against the HTTP emulator, killed and restarted.

What is here:

* :class:`CrashEmulator` — the sandbox emulator, counting the Bot API requests it is serving so a test can tell
  when the bot is polling (ready) and when it has gone quiet (nothing in flight, no update waiting, no change for a
  while);
* launchers — ``exec`` (a fresh ``python -c "from bot.cli import main; main()" run ...`` each time) and ``fork``
  (the default: a helper process imports the bot once, then forks a child per start which runs the same
  ``bot.cli.main()`` with the same argv and environment; the child is an ordinary OS process, killed by a real
  SIGKILL/SIGTERM). Importing aiogram takes seconds, so ``fork`` is what keeps ten kill rounds in a minute;
  ``SICHENG_CRASH_LAUNCH=exec`` runs every start from scratch;
* :class:`BotProcess` — start, wait until polling, kill with a signal (after a delay, or the moment a trigger on the
  emulator's request log fires), wait for the exit, and :meth:`~BotProcess.settle`: wait until the bot is done — the
  emulator quiet *and* nothing pending in the bot's own tables (``inbox_update``, ``outbox_message``, due ``job``
  rows), which Telegram's side cannot see (code without those tables: the emulator alone);
* :func:`crash_env` — a seeded world: demo community and personas, extra registered residents with points, a
  cheap unlimited reward, the emulator served over HTTP, an App in the test process for checks;
* :class:`Person` — a resident acting in their private chat without waiting for global quiet (many at once);
* hooks run inside the bot process before ``bot.cli.main()`` (``SICHENG_CRASH_HOOK=module:function``, given per
  start through :meth:`BotProcess.start`), e.g. :func:`hold_fanout` to kill the bot inside a campaign's fan-out;
* :func:`wait_until`, the seeded random source (``SICHENG_CRASH_SEED``) and the round count
  (``SICHENG_CRASH_ROUNDS``, default 10).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from PIL import Image
from sqlalchemy import bindparam, text

from bot.app import App, build_app, prepare_database
from bot.config import DatabaseSettings, FilesSettings, Settings, TelegramSettings
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.demo import COMMUNITY, ORGANISER_ID, seed_database, seed_emulator
from bot.sandbox.emulator import Emulator
from bot.sandbox.server import run_emulator
from storage.types import UTCDateTime

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("SICHENG_CRASH_ROUNDS") or 10)
LAUNCH = os.environ.get("SICHENG_CRASH_LAUNCH") or "fork"  # "fork" or "exec"
QUIET = float(os.environ.get("SICHENG_CRASH_QUIET") or 1.5)  # seconds with nothing happening: the bot is done
START_TIMEOUT = 90.0 if LAUNCH == "exec" else 40.0  # until the first getUpdates (imports take seconds)
EXIT_TIMEOUT = 15.0  # after SIGKILL
TERM_GRACE = 10.0  # after SIGTERM, as ``docker stop`` gives; a bot still running then gets SIGKILL (noted)
SETTLE_TIMEOUT = 60.0  # until quiet after a restart
# Wall time for one test, whatever happens (each start costs seconds more with ``exec``).
BUDGET = float(os.environ.get("SICHENG_CRASH_BUDGET") or (150.0 if LAUNCH == "fork" else 600.0))
# ``python -m bot.cli`` would not call main(); a hook named in the environment (see :func:`hold_fanout`) runs first.
HOOK_ENV = "SICHENG_CRASH_HOOK"  # "module:function", called in the bot process just before bot.cli.main()
CMD = [
    "-c",
    "import importlib, os\n"
    f"hook = os.environ.get('{HOOK_ENV}')\n"
    "if hook: getattr(importlib.import_module(hook.partition(':')[0]), hook.partition(':')[2])()\n"
    "from bot.cli import main; main()",
]

RESIDENT_BASE = 2_000_000  # extra residents are 2000001, 2000002, ... (the demo personas are 1000001..7)
REWARD_SLUG = "crash-voucher"
REWARD_NAME = "测试券"
REWARD_COST = 1


def crash_seed() -> int:
    """``SICHENG_CRASH_SEED`` to replay a run, else a fresh one (tests print it)."""
    given = os.environ.get("SICHENG_CRASH_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 2**31)


def kill_delays(rng: random.Random, rounds: int, window: float) -> list[float]:
    """One kill moment per round, uniform in ``[0, window]`` seconds."""
    return [round(rng.uniform(0.0, window), 3) for _ in range(rounds)]


class TapRecord(Protocol):
    query_id: str


TapRecordT = TypeVar("TapRecordT", bound=TapRecord)


async def tap_rounds(
    env: CrashEnv,
    bot: BotProcess,
    people: Sequence[Person],
    screens: Sequence[Sequence[int]],
    label: str,
    delays: Sequence[float],
    sig: signal.Signals,
    record: Callable[[Person, int, int], TapRecordT],
) -> list[TapRecordT]:
    """The kill rounds of a tap test: in round ``n`` (the bot started again if it is down) every person taps
    ``label`` on their ``n``-th message at once, and the bot gets ``sig`` after that round's delay; then one last
    start, left to go quiet, and a stop. ``record(person, n, message_id)`` makes what the checks need to know of each
    tap; its ``query_id`` is filled in here."""
    taps: list[TapRecordT] = []
    for number, delay in enumerate(delays):
        if not bot.alive:
            await bot.restart()
        for person, mine in zip(people, screens, strict=True):
            tap = record(person, number, mine[number])
            tap.query_id = person.press(mine[number], label)
            taps.append(tap)
        await bot.kill_later(delay, sig)
        env.mark(f"round {number + 1}: {len(people)} taps, {bot.kills[-1]}")
    await bot.restart()
    await bot.settle()
    env.mark("restarted and quiet")
    await bot.stop()
    return taps


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


# --- the emulator, instrumented ------------------------------------------------------------------------------


class CrashEmulator(Emulator):
    """The sandbox emulator, also counting requests being served (the HTTP server calls ``call_api``)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.requests_started = 0  # every Bot API request received
        self.requests: list[tuple[str, Any]] = []  # (method in lower case, chat_id) of every request but getUpdates
        self.polls_started = 0  # getUpdates requests received
        self.in_flight = 0  # other requests being served right now
        self.last_activity = time.monotonic()  # start or end of any request other than getUpdates

    async def call_api(
        self, token: str, method: str, params: Mapping[str, Any] | None = None, uploads: Any = None
    ) -> Any:
        self.requests_started += 1
        if method.lower() == "getupdates":
            self.polls_started += 1
            return await super().call_api(token, method, params, uploads)
        self.requests.append((method.lower(), (params or {}).get("chat_id")))
        self.in_flight += 1
        self.last_activity = time.monotonic()
        try:
            return await super().call_api(token, method, params, uploads)
        finally:
            self.in_flight -= 1
            self.last_activity = time.monotonic()

    def count(self, method: str, chat_id: int | None = None, *, since: int = 0) -> int:
        """Requests of ``method`` (to ``chat_id``) received after the first ``since`` requests."""
        wanted = method.lower()
        return sum(
            1
            for name, chat in self.requests[since:]
            if name == wanted and (chat_id is None or str(chat) == str(chat_id))
        )

    @property
    def pending_updates(self) -> int:
        """Updates the bot has not confirmed yet (Telegram keeps them until getUpdates moves the offset)."""
        return len(self.queues[self.default_bot.id].items)


# --- launchers -----------------------------------------------------------------------------------------------


class Launched(Protocol):
    @property
    def pid(self) -> int: ...

    def exit_code(self) -> int | None: ...

    async def wait(self, timeout: float) -> int | None: ...


@dataclass
class _ExecChild:
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    def exit_code(self) -> int | None:
        return self.process.returncode

    async def wait(self, timeout: float) -> int | None:
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(self.process.wait(), timeout)
        return None


def die_with_parent() -> None:
    """Linux: the bot gets SIGKILL if the test process dies, so an aborted run leaves no bot polling."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def exec_bot(argv: Sequence[str], env: Mapping[str, str], log: Path) -> Launched:
    """A fresh interpreter running ``bot.cli.main()`` with ``argv``."""
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *CMD,
            *argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            preexec_fn=die_with_parent,
        )
    return _ExecChild(process)


# Runs in the helper process (standard library only): import the bot once, then fork a child per request. Each
# child redirects its output to the log, takes the environment and argv it was given and runs bot.cli.main().
FORKSERVER = r"""
import importlib, json, os, select, signal, sys, threading, traceback
for name in sys.argv[1:]:
    importlib.import_module(name)
if threading.active_count() != 1:
    sys.exit("fork server: a preloaded module started a thread; forking would not be safe")
wake_r, wake_w = os.pipe()
os.set_blocking(wake_r, False)
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
children = set()

def say(**message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()

def child(request):
    code = 1
    try:
        try:  # Linux: die with the fork server, so an aborted run leaves no bot polling
            import ctypes
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)
        except Exception:
            pass
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.close(wake_r)
        os.close(wake_w)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["sicheng", *request["argv"]]
        hook = os.environ.get("SICHENG_CRASH_HOOK")  # "module:function" (tests.support.crash.HOOK_ENV)
        if hook:
            module, _, function = hook.partition(":")
            getattr(importlib.import_module(module), function)()
        from bot.cli import main
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)

def reap():
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        say(exited=pid, code=os.waitstatus_to_exitcode(status))

say(ready=os.getpid())
pending = b""
while True:
    readable, _, _ = select.select([0, wake_r], [], [], 1.0)
    if wake_r in readable:
        try:
            os.read(wake_r, 4096)
        except BlockingIOError:
            pass
    reap()
    if 0 not in readable:
        continue
    chunk = os.read(0, 65536)
    if not chunk:
        break
    pending += chunk
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)
        children.add(pid)
        say(spawned=request["id"], pid=pid)
for pid in list(children):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
while children:
    pid, status = os.waitpid(-1, 0)
    children.discard(pid)
"""
PRELOAD = (
    "bot.cli",
    "bot.app",
    "bot.runner",
    "handlers",
    "storage.db",
    "alembic.command",
    "bot.channels.aiogram_channel",
    "bot.channels.ptb_channel",
)


class ForkServer:
    """The helper process; independent of any event loop, so one serves the whole session."""

    def __init__(self, log: Path, preload: Sequence[str] = PRELOAD) -> None:
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", FORKSERVER, *preload],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
        )
        self._lock = threading.Lock()
        self._ready = False
        self._spawned: dict[int, int] = {}
        self._exits: dict[int, int] = {}
        self._next = 0
        self._reader = threading.Thread(target=self._read, name="crash-forkserver", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            message = json.loads(raw)
            with self._lock:
                if "ready" in message:
                    self._ready = True
                elif "spawned" in message:
                    self._spawned[message["spawned"]] = message["pid"]
                elif "exited" in message:
                    self._exits[message["exited"]] = message["code"]

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the fork server died (exit {self.process.returncode}):\n{tail}")

    async def spawn(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> Launched:
        await wait_until(lambda: self._ready or self.process.poll() is not None, START_TIMEOUT, "the fork server")
        self._check_alive()
        with self._lock:
            self._next += 1
            request_id = self._next
        request = {"id": request_id, "argv": list(argv), "env": dict(env), "cwd": str(ROOT), "log": str(log)}
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        await wait_until(
            lambda: request_id in self._spawned or self.process.poll() is not None, 10.0, "a forked bot process"
        )
        self._check_alive()
        return _ForkedChild(self, self._spawned[request_id])

    def exit_code(self, pid: int) -> int | None:
        with self._lock:
            return self._exits.get(pid)

    def close(self) -> None:
        """Close stdin: the server kills the children it still has and exits."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log_file.close()


@dataclass
class _ForkedChild:
    server: ForkServer
    pid: int

    def exit_code(self) -> int | None:
        return self.server.exit_code(self.pid)

    async def wait(self, timeout: float) -> int | None:
        with contextlib.suppress(AssertionError):
            await wait_until(lambda: self.exit_code() is not None, timeout, f"exit of {self.pid}")
        return self.exit_code()


# --- the bot process -----------------------------------------------------------------------------------------

SIGNAL_NAMES = {signal.SIGKILL: "SIGKILL", signal.SIGTERM: "SIGTERM"}


@dataclass
class Kill:
    """One kill: which start, which signal, how long after the trigger, how the process ended."""

    start: int
    signal: str
    after: float
    exit_code: int | None
    took: float = 0.0  # seconds from the signal to the exit
    forced: bool = False  # SIGTERM was not enough: the process was still there after EXIT_TIMEOUT

    def __str__(self) -> str:
        forced = " (forced)" if self.forced else ""
        return f"#{self.start}:{self.signal}@{self.after:.2f}s→{self.exit_code} in {self.took:.1f}s{forced}"


class BotProcess:
    """``sicheng run`` against the emulator: started, killed and restarted by the test."""

    def __init__(self, env: CrashEnv, argv: Sequence[str] | None = None) -> None:
        self.env = env
        self.argv = list(argv) if argv is not None else None  # default: ``sicheng run`` (env.argv())
        self.starts = 0
        self.kills: list[Kill] = []
        self.child: Launched | None = None
        self._poll_mark = 0
        self._request_mark = 0
        self.started_at = 0.0

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.exit_code() is None

    async def start(self, extra_env: Mapping[str, str] | None = None) -> None:
        """Start the bot; ``extra_env`` adds to (or overrides) its environment for this start only (a hook)."""
        assert not self.alive, "the bot is already running"
        self.starts += 1
        with self.env.log.open("a") as log:
            log.write(f"\n===== crash test: start #{self.starts} ({self.env.channel}) =====\n")
        self._poll_mark = self.env.emulator.polls_started
        self._request_mark = self.env.emulator.requests_started
        self.started_at = time.monotonic()
        environment = {**self.env.process_env(), **(extra_env or {})}
        self.child = await self.env.launch(self.argv or self.env.argv(), environment, self.env.log)

    async def wait_ready(self, timeout: float = START_TIMEOUT) -> float:
        """Until the bot's first getUpdates request arrives (it has started and is polling); returns seconds."""
        emulator = self.env.emulator
        try:
            await wait_until(
                lambda: emulator.polls_started > self._poll_mark or not self.alive, timeout, "the bot to poll"
            )
        except AssertionError as error:
            raise AssertionError(self.env.explain(str(error))) from None
        if not self.alive:
            code = self.child.exit_code() if self.child else None
            raise AssertionError(self.env.explain(f"the bot exited with {code} before polling"))
        return time.monotonic() - self.started_at

    async def wait_first_request(self, timeout: float = START_TIMEOUT) -> float:
        """Until the new process makes its first Bot API request (start-up done); returns seconds since start."""
        emulator = self.env.emulator
        try:
            await wait_until(
                lambda: emulator.requests_started > self._request_mark or not self.alive,
                timeout,
                "the bot's first request",
            )
        except AssertionError as error:
            raise AssertionError(self.env.explain(str(error))) from None
        return time.monotonic() - self.started_at

    async def kill(self, sig: signal.Signals = signal.SIGKILL, *, after: float = 0.0) -> Kill:
        """Send ``sig`` and wait for the exit; a SIGTERM not obeyed in time is followed by SIGKILL (and noted)."""
        assert self.child is not None
        pid, forced = self.child.pid, False
        with self.env.log.open("a") as log:
            log.write(f"\n===== crash test: {SIGNAL_NAMES.get(sig, sig)} to start #{self.starts} =====\n")
        sent = time.monotonic()
        if self.child.exit_code() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        code = await self.child.wait(EXIT_TIMEOUT if sig == signal.SIGKILL else TERM_GRACE)
        if code is None:
            forced = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            code = await self.child.wait(EXIT_TIMEOUT)
        assert code is not None, f"bot process {pid} survived SIGKILL"
        done = Kill(self.starts, SIGNAL_NAMES.get(sig, str(sig)), after, code, time.monotonic() - sent, forced)
        self.kills.append(done)
        return done

    async def kill_later(self, delay: float, sig: signal.Signals = signal.SIGKILL) -> Kill:
        """``sig`` after ``delay`` seconds."""
        await asyncio.sleep(delay)
        return await self.kill(sig, after=delay)

    async def kill_when(self, trigger: Callable[[], bool], within: float, sig: signal.Signals = signal.SIGKILL) -> Kill:
        """``sig`` the moment ``trigger()`` holds (checked every few milliseconds), or after ``within`` seconds."""
        begun = time.monotonic()
        with contextlib.suppress(AssertionError):
            await wait_until(trigger, within, "the kill trigger", interval=0.002)
        return await self.kill(sig, after=time.monotonic() - begun)

    async def restart(self, extra_env: Mapping[str, str] | None = None) -> float:
        await self.start(extra_env)
        return await self.wait_ready()

    async def settle(self, quiet: float = QUIET, timeout: float = SETTLE_TIMEOUT) -> None:
        """Until the bot has gone quiet: polling, no update waiting, no request in flight, no change for ``quiet``."""
        emulator = self.env.emulator
        deadline = time.monotonic() + timeout
        version, changed = emulator.events.version, time.monotonic()
        backlog: dict[str, int] = {}
        while True:
            if not self.alive:
                code = self.child.exit_code() if self.child else None
                raise AssertionError(self.env.explain(f"the bot exited ({code}) while the test waited for it"))
            now = time.monotonic()
            if emulator.events.version != version:
                version, changed = emulator.events.version, now
            idle_since = max(changed, emulator.last_activity)
            busy = emulator.pending_updates or emulator.in_flight
            if not busy and now - idle_since >= quiet:
                backlog = await self.env.backlog()
                if not backlog:
                    self.env.settled = await self.env.messaging()
                    return
                changed = time.monotonic() - quiet / 2  # look again a little later
            if now >= deadline:
                raise AssertionError(
                    self.env.explain(
                        f"the bot did not go quiet within {timeout:.0f}s ({emulator.pending_updates} updates "
                        f"unconfirmed, {emulator.in_flight} requests in flight, its own backlog {backlog or 'empty'})"
                    )
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """The end of a test: SIGKILL whatever still runs (nothing is asserted about it)."""
        if self.alive:
            assert self.child is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child.pid, signal.SIGKILL)
            await self.child.wait(EXIT_TIMEOUT)


# --- hooks: test instrumentation inside the bot process ------------------------------------------------------

MARK_ENV = "SICHENG_CRASH_MARK"  # a file the hook writes when the bot reaches the point it watches
HOLD_ENV = "SICHENG_CRASH_HOLD"  # seconds the bot then stays there (default 0.5)
HOLD_FANOUT = "tests.support.crash:hold_fanout"


def hold_fanout() -> None:
    """Hook (``SICHENG_CRASH_HOOK=tests.support.crash:hold_fanout``): once a campaign's fan-out has inserted its
    outbox rows — inside the transaction that starts the campaign, not yet committed — write the mark file and keep
    that transaction open for ``SICHENG_CRASH_HOLD`` seconds, so a kill the test sends then lands inside it (the
    real fan-out of a few hundred rows takes milliseconds, too short to hit from outside). Nothing else changes:
    the rest of the bot keeps running meanwhile, as it would during a long fan-out."""
    import storage.campaign_repository as repository

    mark = Path(os.environ[MARK_ENV])
    hold = float(os.environ.get(HOLD_ENV) or 0.5)
    original = repository.SqlCampaignRepository.add_deliveries

    def reached(added: int) -> None:
        mark.write_text(f"{os.getpid()} {added}\n", encoding="utf-8")

    async def add_deliveries(self: Any, rows: Sequence[dict[str, Any]]) -> int:
        added = await original(self, rows)
        reached(added)
        await asyncio.sleep(hold)
        return added

    setattr(repository.SqlCampaignRepository, "add_deliveries", add_deliveries)  # noqa: B010 (a method, patched)


# --- the seeded world ----------------------------------------------------------------------------------------

Launcher = Callable[[Sequence[str], Mapping[str, str], Path], Awaitable[Launched]]


@dataclass
class CrashEnv:
    channel: str
    tmp: Path
    db_url: str
    media: Path
    emulator: CrashEmulator
    base_url: str
    app: App  # the test's own view of the database (checks, inserting data while the bot is down)
    seed: int
    rng: random.Random
    launch: Launcher
    residents: list[int]
    reward_id: int
    log: Path
    bots: list[BotProcess] = field(default_factory=list)
    tables: frozenset[str] = frozenset()
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. Redis for the multi-worker test
    settled: dict[str, int] = field(default_factory=dict)  # inbox/outbox rows by status when the bot last settled
    began: float = field(default_factory=time.monotonic)

    @property
    def kills(self) -> list[Kill]:
        """Every kill of this test, in order."""
        return [k for b in self.bots for k in b.kills]

    def mark(self, what: str) -> None:
        """A line in the captured output (shown with a failure): where the time went."""
        print(f"[{time.monotonic() - self.began:6.1f}s] {what}")

    def argv(self) -> list[str]:
        return ["run", "--api-url", self.base_url, "--channel", self.channel]

    def process_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SICHENG_TELEGRAM__TOKEN": DEFAULT_TOKEN,
            "SICHENG_DATABASE__URL": self.db_url,
            "SICHENG_FILES__ROOT": str(self.media),
            # Pacing has its own tests (tests/channels); here it would only stretch every round.
            "SICHENG_TELEGRAM__CHAT_PER_SECOND": "50",
            "SICHENG_TELEGRAM__GROUP_PER_MINUTE": "1000",
            "SICHENG_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def bot(self, argv: Sequence[str] | None = None) -> BotProcess:
        process = BotProcess(self, argv)
        self.bots.append(process)
        return process

    def log_lines(self) -> list[str]:
        """The bot's log so far (every process of the run writes to it); empty when there is none yet."""
        try:
            return self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def log_tail(self, lines: int = 60) -> str:
        """The end of the bot's log, without PTB's line per successful HTTP request."""
        if not self.log.exists():
            return "(no bot log)"
        kept = [line for line in self.log_lines() if not ("httpx: HTTP Request" in line and "200 OK" in line)]
        return "\n".join(kept[-lines:])

    def explain(self, message: str) -> str:
        """A failure message with what is needed to replay and debug it."""
        kills = [str(k) for k in self.kills]
        return (
            f"{message}\n--- replay: SICHENG_CRASH_SEED={self.seed} channel={self.channel} launch={LAUNCH}; "
            f"kills: {', '.join(kills) or 'none'}\n--- inbox/outbox rows when the bot last went quiet: "
            f"{self.settled or 'none (no such tables, or it never settled)'}"
            f"\n--- bot log ({self.log}), last lines:\n{self.log_tail()}"
        )

    async def sql(self, query: str, **params: Any) -> list[Any]:
        async with self.app.engine.connect() as connection:
            result = await connection.execute(text(query), params)
            return list(result.fetchall())

    async def execute(self, query: str, **params: Any) -> None:
        async with self.app.engine.begin() as connection:
            await connection.execute(text(query), params)

    async def messaging(self) -> dict[str, int]:
        """Rows of the bot's inbox and outbox by status (``inbox.pending`` …); empty when the code has neither."""
        counts: dict[str, int] = {}
        for table, name in (("inbox_update", "inbox"), ("outbox_message", "outbox")):
            if table in self.tables:
                for status, count in await self.sql(f"SELECT status, COUNT(*) FROM {table} GROUP BY status"):
                    counts[f"{name}.{status}"] = int(count)
        return counts

    async def backlog(self) -> dict[str, int]:
        """Work the bot has taken durably but not finished: pending inbox updates and outbox messages, due jobs.

        Invisible from Telegram's side (the updates are confirmed, nothing is being sent at this very moment), so
        quiet alone cannot tell that the bot is done; its tables can (see :meth:`BotProcess.settle`).
        """
        found = {key: count for key, count in (await self.messaging()).items() if key.endswith(".pending") and count}
        due = text(
            "SELECT COUNT(*) FROM job WHERE done_at IS NULL AND due_at <= :now "
            "AND (locked_until IS NULL OR locked_until <= :now)"  # a job leased by a dead worker waits for the lease
        ).bindparams(bindparam("now", type_=UTCDateTime()))
        async with self.app.engine.connect() as connection:
            jobs = (await connection.execute(due, {"now": datetime.now(UTC)})).scalar_one()
        if jobs:
            found["job.due"] = int(jobs)
        return found


def resident_ids(count: int) -> list[int]:
    return [RESIDENT_BASE + n for n in range(1, count + 1)]


async def add_residents(app: App, telegram_ids: Sequence[int], points: int) -> None:
    """Registered residents of the demo community with ``points`` each, through the services the demo uses."""
    community = await app.services.communities.by_code(COMMUNITY)
    assert community is not None
    building = community.buildings[0]
    for number, telegram_id in enumerate(telegram_ids, 1):
        await app.services.residents.give_consent(telegram_id, f"居民{number:02d}", "zh_Hans")
        await app.services.residents.join(telegram_id, community.id, building.id)
        if points:
            await app.services.points.grant(ORGANISER_ID, telegram_id, points, "压力测试", f"crash:{telegram_id}")


async def add_reward(app: App, folder: Path) -> int:
    """A reward costing 1 point with no stock limit and no per-person limit: every confirmed tap must succeed."""
    source = folder / "crash-rewards.yaml"
    source.write_text(
        f"community: {COMMUNITY}\nrewards:\n  - slug: {REWARD_SLUG}\n    name:\n      zh_Hans: {REWARD_NAME}\n"
        f"      en: Test voucher\n    description:\n      zh_Hans: 压力测试用\n      en: for crash tests\n"
        f"    cost: {REWARD_COST}\n",
        encoding="utf-8",
    )
    await app.services.rewards.import_rewards(source, COMMUNITY)
    async with app.engine.connect() as connection:
        found = await connection.execute(text("SELECT id FROM reward WHERE slug = :slug"), {"slug": REWARD_SLUG})
        return int(found.scalar_one())


@contextlib.asynccontextmanager
async def crash_env(
    tmp: Path,
    channel: str,
    *,
    seed: int,
    launch: Launcher,
    residents: int = 20,
    points: int = 100,
    prepare: Callable[[App, list[int]], Awaitable[None]] | None = None,
) -> AsyncIterator[CrashEnv]:
    """Database and emulator seeded for a crash test; stops every bot process on the way out."""
    db = tmp / "bot.db"
    url = f"sqlite+aiosqlite:///{db}"
    media = tmp / "media"
    media.mkdir()
    await prepare_database(url)
    settings = Settings(
        database=DatabaseSettings(url=url), files=FilesSettings(root=media), telegram=TelegramSettings()
    )
    app = await build_app(settings)
    env: CrashEnv | None = None
    try:
        await seed_database(app)
        people = resident_ids(residents)
        await add_residents(app, people, points)
        reward_id = await add_reward(app, tmp)
        if prepare is not None:
            await prepare(app, people)
        emulator = CrashEmulator()
        seed_emulator(emulator)
        for number, telegram_id in enumerate(people, 1):
            emulator.create_user(f"居民{number:02d}", user_id=telegram_id)
        async with run_emulator("127.0.0.1", 0, emulator=emulator) as (_, base_url):
            env = CrashEnv(
                channel, tmp, url, media, emulator, base_url, app, seed, random.Random(seed), launch, people,
                reward_id, tmp / "bot.log",
            )  # fmt: skip
            env.tables = frozenset(
                name for (name,) in await env.sql("SELECT name FROM sqlite_master WHERE type = 'table'")
            )
            try:
                yield env
            finally:
                for process in env.bots:
                    await process.stop()
    finally:
        await app.aclose()


# --- people --------------------------------------------------------------------------------------------------


def labels(view: Mapping[str, Any]) -> list[str]:
    return [b["text"] for row in view.get("inline_keyboard", []) for b in row]


def shown(view: Mapping[str, Any]) -> str:
    return str(view.get("text") or view.get("caption") or "")


@dataclass
class Person:
    """A resident in their private chat; waits only for their own chat, so many can act at once."""

    emulator: Emulator
    user_id: int

    def messages(self, after: int = 0) -> list[dict[str, Any]]:
        return list(self.emulator.transcript(self.user_id, after=after)["messages"])

    def bot_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m["from_bot"]]

    def message(self, message_id: int) -> dict[str, Any] | None:
        return next((m for m in self.messages() if m["message_id"] == message_id), None)

    def send(self, text_: str) -> int:
        """Type a message; returns the event version before it (wait for answers after it)."""
        version = self.emulator.events.version
        self.emulator.send_text(self.user_id, text_)
        return version

    def send_photo(self, data: bytes) -> str:
        """Upload a photo; returns its file_id."""
        message = self.emulator.send_photo(self.user_id, data)
        return str(message["photo"][-1]["file_id"])

    def press(self, message_id: int, label: str) -> str:
        """Tap the button whose label contains ``label`` on a message; returns the callback query id."""
        view = self.message(message_id)
        assert view is not None, f"resident {self.user_id}: no message {message_id}"
        buttons = labels(view)
        exact = label if label in buttons else next((b for b in buttons if label in b), None)
        assert exact is not None, f"resident {self.user_id}: no button {label!r} on {shown(view)[:80]!r}"
        return self.emulator.press_button(self.user_id, self.user_id, message_id, text=exact)

    async def wait(
        self, check: Callable[[dict[str, Any]], bool], *, after: int = 0, within: float = 15.0, what: str = ""
    ) -> dict[str, Any]:
        """The newest bot message (new or edited after version ``after``) passing ``check``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            version = self.emulator.events.version
            for m in reversed(self.messages(after)):
                if m["from_bot"] and check(m):
                    return dict(m)
            remaining = deadline - loop.time()
            if remaining <= 0:
                last = [shown(m)[:60] for m in self.bot_messages()[-3:]]
                raise AssertionError(f"resident {self.user_id}: no {what or 'answer'} within {within:.0f}s; {last}")
            await self.emulator.wait_events(version, wait=min(remaining, 1.0))

    async def wait_text(self, needle: str, *, after: int = 0, within: float = 15.0) -> dict[str, Any]:
        return await self.wait(lambda m: needle in shown(m), after=after, within=within, what=repr(needle))

    async def tap_and_wait(self, message_id: int, label: str, needle: str, *, within: float = 15.0) -> dict[str, Any]:
        """Tap a button, then wait for a bot message (usually that one, edited) showing ``needle``."""
        version = self.emulator.events.version
        self.press(message_id, label)
        return await self.wait_text(needle, after=version, within=within)


# --- the 随手拍 dialog (reports), step by step as a resident goes through it -----------------------------------

ASK_PHOTOS = "请发送 1–5 张现场照片"
PHOTO_RECEIVED = re.compile(r"已收到第 (\d+) 张照片")
SUBMITTED = re.compile(r"已提交，编号 (R-\d{4}-\d{6})")


async def start_report(person: Person, category: str) -> int:
    """/report and a category: the category menu's message now asks for photos; returns its id."""
    version = person.send("/report")
    menu = await person.wait_text("请选择问题类别", after=version)
    await person.tap_and_wait(menu["message_id"], category, ASK_PHOTOS)
    return int(menu["message_id"])


async def skip_photos(person: Person, menu_id: int) -> None:
    """跳过拍照 (photo-optional categories) with a reason: the bot asks where."""
    await person.tap_and_wait(menu_id, "跳过拍照", "请选择不拍照的原因")
    version = person.emulator.events.version
    person.press(menu_id, "其他原因")
    await person.wait_text("问题在哪里", after=version)


async def photos_done(person: Person) -> None:
    """照片发完了 on the newest message offering it: the bot asks where."""
    offering = [m for m in person.bot_messages() if "照片发完了" in " ".join(labels(m))]
    assert offering, f"resident {person.user_id}: no 照片发完了 button"
    version = person.emulator.events.version
    person.press(offering[-1]["message_id"], "照片发完了")
    await person.wait_text("问题在哪里", after=version)


async def describe(person: Person, address: str, description: str) -> int:
    """A typed address (no nearby +1 offers), a description, 显示我的称呼: returns the confirmation's message id."""
    version = person.send(address)
    await person.wait_text("请用一两句话描述问题", after=version)
    version = person.send(description)
    ask = await person.wait_text("是否显示您的称呼", after=version)
    await person.tap_and_wait(ask["message_id"], "显示我的称呼", "请确认问题信息")
    return int(ask["message_id"])


def photo(number: int) -> bytes:
    """A small JPEG whose width (16 + number) identifies it after the bot re-encodes it."""
    out = io.BytesIO()
    Image.new("RGB", (16 + number, 12), (40 + number % 200, 90, 160)).save(out, "JPEG")
    return out.getvalue()


def photo_number(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return int(image.size[0]) - 16
