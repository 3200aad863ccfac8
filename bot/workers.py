"""Several processes for one bot: ``sicheng intake`` takes updates in, ``sicheng worker`` (N of them) handles them.

::

    Telegram ─webhook─► intake ─► INSERT inbox_update (PostgreSQL, committed) ─► 200 ─► XADD announcement (Redis)
                                                                                          │
    worker 1..N: XREADGROUP ◄─────────────────────────────────────────────────────────────┘
       └─► sender's Redis lock ─► the sender's pending rows, oldest first, each in one transaction (as one process
           does: row marked done, handler, replies in the outbox) ─► replies sent ─► XACK
    every worker: outbox dispatcher (rows claimed with FOR UPDATE SKIP LOCKED), XAUTOCLAIM of a dead worker's
    announcements; one worker at a time (a Redis lease): the ticker (jobs, quiz rounds, notices...) and the sweep
    that re-announces rows whose announcement was lost.

See docs/architecture.md "Several workers" for why the stream is only a doorbell and the table the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.app import App, utcnow
from bot.channels.broker import Announcement, UpdateBroker
from bot.channels.inbox import Inbox, poll
from bot.channels.redis_locks import RENEW, RedisUserLocks
from bot.channels.redis_pace import key_base
from bot.config import Settings
from bot.metrics import start_metrics_server
from bot.runner import Timing, make_dispatcher, make_inbox

log = logging.getLogger(__name__)

BLOCK_MS = 1000  # one XREADGROUP waits at most this long for new announcements
# A live worker touches the announcements in its hand (waiting for a slot or the sender's lock, or being handled)
# every HEARTBEAT seconds, so one left idle RECLAIM_IDLE belonged to a worker that died (or stalled that long).
HEARTBEAT = 3.0
RECLAIM_IDLE = timedelta(seconds=10)
RECLAIM_EVERY = 3.0
SWEEP_AGE = timedelta(seconds=20)  # a pending row this old with nothing queued in the stream was not announced
# A pending row this old is announced again even while the stream has a backlog, at most once per STALE_AGE each
# (a safety net: whatever became of its announcement, no update waits for the backlog to empty completely).
STALE_AGE = timedelta(seconds=90)
STALE_BATCH = 200
SWEEP_EVERY = 5.0
LEADER_LEASE = 15.0  # seconds; the ticker and the sweep run in the worker holding it
BATCH = 20  # a sender's pending rows read at a time
STALL = 60.0  # seconds an announcement may be in hand before the worker logs where its task waits (once)
SOON = timedelta(seconds=5)


Take = Callable[[Sequence[dict[str, Any]]], Awaitable[int]]
Serve = Callable[[Take, asyncio.Event], Awaitable[None]]  # a webhook server: runs until the event is set


class MultiWorkerUnavailable(RuntimeError):
    """Multi-worker mode needs PostgreSQL and a reachable Redis; the message says what is missing."""


def redact_url(url: str) -> str:
    """A Redis/PostgreSQL URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user + ':***@' if ':' in credentials else credentials + '@'}{host}"


def check_settings(settings: Settings) -> str:
    """The Redis URL, or a clear error when multi-worker mode cannot run with these settings."""
    if not settings.database.url.startswith("postgresql"):
        raise MultiWorkerUnavailable(
            "Several workers need PostgreSQL (SQLite has one writer): set SICHENG_DATABASE__URL="
            "postgresql+asyncpg://... and run `sicheng db upgrade`; for one process use `sicheng run`."
        )
    if not settings.redis.url:
        raise MultiWorkerUnavailable(
            "Several workers need Redis (shared locks, pace and the update stream): set SICHENG_REDIS__URL="
            "redis://host:6379/0; for one process use `sicheng run`."
        )
    return settings.redis.url


async def connect(url: str) -> Redis:
    """A Redis client that answered PING, or :class:`MultiWorkerUnavailable` naming the server (not its password)."""
    redis: Redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        await redis.ping()
    except (RedisError, OSError) as error:
        await redis.aclose()
        raise MultiWorkerUnavailable(
            f"Redis at {redact_url(url)} cannot be reached ({type(error).__name__}: {error}); several workers "
            "cannot run without it. Start Redis (or fix SICHENG_REDIS__URL) and try again."
        ) from error
    return redis


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where a suspended task waits: each coroutine of its await chain as ``function (file:line)``, then what the
    innermost one awaits (a future, another task — followed into it — or a sleep)."""
    chain: list[str] = []
    seen: set[int] = set()
    step: Any = task.get_coro()
    while step is not None and id(step) not in seen and len(chain) < 60:
        seen.add(id(step))
        frame = getattr(step, "cr_frame", None) or getattr(step, "gi_frame", None) or getattr(step, "ag_frame", None)
        if frame is not None:
            where = frame.f_code.co_filename.rsplit("/", 2)
            chain.append(f"{frame.f_code.co_name} ({'/'.join(where[-2:])}:{frame.f_lineno})")
            inner = (
                getattr(step, "cr_await", None)
                or getattr(step, "gi_yieldfrom", None)
                or getattr(step, "ag_await", None)
            )
            if type(inner).__name__.startswith("async_generator_"):  # asend/athrow: into the generator (contextlib)
                inner = getattr(frame.f_locals.get("self"), "gen", inner)
            step = inner
        elif isinstance(step, asyncio.Task):
            chain.append(f"task {step.get_name()}")
            step = step.get_coro()
        else:
            chain.append(type(step).__name__ + (" (done)" if getattr(step, "done", lambda: False)() else ""))
            step = None
    return chain


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Announcer:
    """The intake's ``take``: store updates in the inbox (committed), then announce them to the workers.

    An announcement that cannot be made (Redis down) is only logged: the update is stored, Telegram may be told it
    arrived, and the leader's sweep announces it once Redis is back.
    """

    def __init__(self, app: App, broker: UpdateBroker, clock: Callable[[], datetime] = utcnow) -> None:
        self._app = app
        self.broker = broker
        self._clock = clock
        self._down = False

    async def take(self, updates: Sequence[dict[str, Any]]) -> int:
        if not updates:
            return 0
        async with self._app.transactions.scope() as uow:
            rows = await uow.inbox.add_announced(updates, self._clock())
            await uow.commit()
        try:
            await self.broker.publish(rows)
            if self._down:
                log.info("intake: Redis is back; announcing again")
                self._down = False
        except (RedisError, OSError) as error:
            if not self._down:
                log.error(
                    "intake: Redis unavailable (%s): updates are stored and will be announced once it is back",
                    type(error).__name__,
                )
                self._down = True
        return len(rows)


class Leader:
    """A lease in Redis: the worker holding it runs the ticker and the sweep (one at a time among the workers).

    If Redis fails while this worker leads, it keeps leading (timers go on); others cannot take over until Redis
    answers again and the lease is free.
    """

    def __init__(self, redis: Redis, token: str, me: str, prefix: str = "sicheng") -> None:
        self._redis = redis
        self._key = f"{key_base(token, prefix)}:leader"
        self._me = me
        self._renew = redis.register_script(RENEW)  # the user locks' compare-and-extend
        self.leading = False

    async def refresh(self) -> bool:
        ms = int(LEADER_LEASE * 1000)
        try:
            if self.leading:
                self.leading = bool(await self._renew(keys=[self._key], args=[self._me, ms]))
            if not self.leading:
                self.leading = bool(await self._redis.set(self._key, self._me, nx=True, px=ms))
                if self.leading:
                    log.info("worker %s now runs the timers", self._me)
        except (RedisError, OSError):
            pass  # keep what we had
        return self.leading


class Worker:
    """Handles announced updates with the sender's Redis lock; see the module docstring."""

    def __init__(
        self,
        app: App,
        inbox: Inbox,
        broker: UpdateBroker,
        *,
        concurrency: int = 16,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        self.inbox = inbox
        self.broker = broker
        self.concurrency = concurrency
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._busy = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._redis_down = False
        # Announcements in hand when Redis went away: acknowledged once it answers again, so the stream's backlog
        # empties and the leader's sweep re-announces any of their rows still pending, instead of every one waiting
        # RECLAIM_IDLE to be taken over as if this worker had died.
        self._unacked: list[str] = []
        # Announcements in hand (touched every HEARTBEAT) with the task handling each and since when.
        self._since: dict[asyncio.Task[None], tuple[Announcement, float]] = {}
        self._stale: dict[int, datetime] = {}  # rows the sweep announced again despite a backlog, and when

    # ---- taking announcements -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Read and handle announcements until ``stop``; then let the ones in hand finish (``drain``)."""
        with contextlib.suppress(RedisError, OSError):
            await self.broker.ensure_group()
        while not stop.is_set():
            room = self.concurrency - self._busy
            if room <= 0:
                await asyncio.sleep(0.005)
                continue
            try:
                await self._ack_held()
                batch = await self.broker.read(room, BLOCK_MS)
                self._redis_up()
            except (RedisError, OSError) as error:
                self._redis_lost(error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                continue
            self.start(batch)

    async def _ack_held(self) -> None:
        if self._unacked:
            entries, self._unacked = self._unacked, []
            try:
                await self.broker.ack(entries)
            except (RedisError, OSError):
                self._unacked = entries + self._unacked
                raise

    def start(self, batch: Sequence[Announcement]) -> None:
        for announcement in batch:
            self._busy += 1
            task = asyncio.create_task(self._handle(announcement))
            self._tasks.add(task)
            self._since[task] = (announcement, time.monotonic())
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._since.pop(task, None)

    async def heartbeat_loop(self, stop: asyncio.Event) -> None:
        """Keep the announcements in hand from looking abandoned (see HEARTBEAT)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT)
            held = sorted({announcement.entry for announcement, _ in self._since.values()})
            if held:
                with contextlib.suppress(RedisError, OSError):
                    await self.broker.touch(held, int(HEARTBEAT * 500))
            self.report_stalls()

    def report_stalls(self, older_than: float = STALL) -> int:
        """Log, once per announcement, any handled longer than ``older_than`` seconds and where its task waits (the
        chain of awaits): a person whose updates queue behind it is waiting too. Returns how many were logged."""
        now = time.monotonic()
        logged = 0
        for task, (announcement, since) in list(self._since.items()):
            if now - since >= older_than and not task.done():
                self._since[task] = (announcement, math.inf)  # once
                log.warning(
                    "worker: announcement %s (row %s, sender %s) in hand for %.0fs, waiting at: %s",
                    announcement.entry,
                    announcement.row,
                    announcement.user,
                    now - since,
                    " → ".join(awaiting(task)),
                )
                logged += 1
        return logged

    async def reclaim_loop(self, stop: asyncio.Event) -> None:
        """Take over announcements a dead worker took and never acknowledged."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECLAIM_EVERY)
            if stop.is_set():
                return
            room = self.concurrency - self._busy
            if room <= 0:
                continue
            try:
                batch = await self.broker.reclaim(int(RECLAIM_IDLE.total_seconds() * 1000), room)
            except (RedisError, OSError):
                continue
            if batch:
                log.info("worker: took over %s announcement(s) of a worker that stopped answering", len(batch))
            self.start(batch)

    async def drain(self, seconds: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)

    async def _handle(self, announcement: Announcement) -> None:
        try:
            if announcement.row > 0:
                async with self._slots:
                    await self.handle_sender(announcement.user, announcement.row)
            await self.broker.ack([announcement.entry])
        except (RedisError, OSError) as error:
            # Acknowledged when Redis is back (see ``_unacked``): the rows are in the table, and one still pending
            # then is announced again by the sweep (or, if this worker dies first, taken over by another).
            self._unacked.append(announcement.entry)
            self._redis_lost(error)
        except Exception:
            log.exception(
                "worker: announcement %s (row %s) failed; it will be retried", announcement.entry, announcement.row
            )
        finally:
            self._busy -= 1

    async def handle_sender(self, user: int | None, row: int) -> None:
        """Under the sender's lock, handle their pending due rows oldest first (the announced one among them)."""
        key = user if user is not None else -row
        deferrals = self.inbox.deferrals
        async with self.app.core.locks.hold(key):
            while True:
                # Read and count the attempt in one statement, committed before handling (see Inbox.start_pending).
                async with self.app.transactions.scope() as tx:
                    items = await tx.inbox.pick_of(user, row, self._clock(), BATCH)
                    await tx.commit()
                for item in items:
                    await self.inbox.handle_held(item)
                if len(items) < BATCH:
                    break
        if self.inbox.deferrals != deferrals:
            # Deferred for a moment (a quiz answer waiting for its poll's id): look again soon. Longer waits (a
            # failure retried with backoff) are found by the sweep once due.
            async with self.app.uow() as uow:
                deferred = bool(await uow.inbox.pending_of(user, row, self._clock() + SOON, 1))
            if deferred:
                self._announce_later([(row, user)], 1.0)

    def _announce_later(self, rows: list[tuple[int, int | None]], seconds: float) -> None:
        async def later() -> None:
            await asyncio.sleep(seconds)
            with contextlib.suppress(RedisError, OSError):
                await self.broker.publish(rows)

        task = asyncio.create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- the leader's work ----------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Re-announce pending rows whose announcement was lost (Redis down at intake, or flushed): rows SWEEP_AGE old
        when nothing waits undelivered in the stream (so a backlog is not announced twice), and — even with a
        backlog — rows STALE_AGE old, each at most once per STALE_AGE (a duplicate costs a lookup; a lost update
        would cost a person their answer)."""
        try:
            backlog = await self.broker.backlog()
        except (RedisError, OSError):
            return 0
        now = self._clock()
        async with self.app.uow() as uow:
            if backlog > 0:
                rows = await uow.inbox.overlooked(now - STALE_AGE, now, STALE_BATCH)
            else:
                rows = await uow.inbox.overlooked(now - SWEEP_AGE, now, 1000)
        self._stale = {row: at for row, at in self._stale.items() if now - at < STALE_AGE}
        if backlog > 0:
            rows = [(row, user) for row, user in rows if row not in self._stale]
            self._stale.update(dict.fromkeys((row for row, _ in rows), now))
        if rows:
            await self.broker.publish(rows)
            log.info("sweep: announced %s pending update(s) again", len(rows))
        return len(rows)

    def _redis_lost(self, error: BaseException) -> None:
        if not self._redis_down:
            log.error(
                "worker: Redis unavailable (%s: %s); updates wait in the inbox and are handled when it is back",
                type(error).__name__,
                error,
            )
            self._redis_down = True

    def _redis_up(self) -> None:
        if self._redis_down:
            log.info("worker: Redis is back")
            self._redis_down = False


async def lead(
    worker: Worker,
    leader: Leader,
    tick: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    tick_seconds: float,
) -> None:
    """While this worker holds the lease: the ticker every ``tick_seconds`` and the sweep every few seconds."""
    last_tick = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        if await leader.refresh():
            if loop.time() - last_tick >= tick_seconds:
                last_tick = loop.time()
                try:
                    await tick()
                except Exception:
                    log.exception("periodic tick failed")
            try:
                await worker.sweep()
            except Exception:
                log.exception("sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(SWEEP_EVERY, tick_seconds))


@contextlib.asynccontextmanager
async def _process(app: App, channel: Any, what: str, handle_signals: bool) -> AsyncIterator[asyncio.Event]:
    """A worker's or intake's lifetime: SIGINT/SIGTERM set the stop event, the channel is started (username, command
    menu) and closed, the metrics endpoint served while it runs."""
    stop: asyncio.Event = channel.stopping
    loop = asyncio.get_running_loop()
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    metrics = None
    try:
        await channel.start()
        metrics = await start_metrics_server(app.settings, app.uow)  # GET /metrics when SICHENG_METRICS__PORT is set
        yield stop
    finally:
        with contextlib.suppress(Exception):
            await channel.close()
        if metrics is not None:
            await metrics.stop()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        log.info("%s stopped", what)


async def run_worker(
    app: App,
    channel: Any,
    redis: Redis,
    token: str,
    *,
    concurrency: int = 16,
    prefix: str = "sicheng",
    timing: Timing = Timing(),
    handle_signals: bool = True,
) -> None:
    """One worker until ``channel.stopping`` is set (SIGINT/SIGTERM set it): announced updates, the outbox, the
    takeover of a dead worker's announcements and, while this worker leads, the timers. Stopping: no new
    announcements are read, those in hand get ``drain_seconds``; what is left is taken over by the other workers."""
    async with _process(app, channel, "worker", handle_signals) as stop:
        app.core.locks = RedisUserLocks(redis, token, prefix=prefix)
        dispatcher = make_dispatcher(app, channel.sender, timing.now)
        dispatcher.monotonic, dispatcher.sleep = timing.monotonic, timing.sleep
        inbox = make_inbox(app, dispatcher, timing.now)
        channel.inbox = inbox
        broker = UpdateBroker(redis, token, consumer_name(), prefix=prefix)
        worker = Worker(app, inbox, broker, concurrency=concurrency, clock=timing.now)
        leader = Leader(redis, token, broker.consumer, prefix)
        await inbox.recover()

        async def tick() -> None:
            await app.tick(timing.now())
            dispatcher.wake()

        tasks = [
            asyncio.create_task(worker.run(stop), name="worker"),
            asyncio.create_task(worker.reclaim_loop(stop), name="reclaim"),
            asyncio.create_task(worker.heartbeat_loop(stop), name="heartbeat"),
            asyncio.create_task(dispatcher.run(stop), name="outbox"),
            asyncio.create_task(lead(worker, leader, tick, stop, tick_seconds=timing.tick_seconds), name="leader"),
        ]
        log.info("worker %s taking updates (%s at a time)", broker.consumer, concurrency)
        try:
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task in tasks and task.exception() is not None and not stop.is_set():
                    raise task.exception()  # type: ignore[misc]
        finally:
            stop.set()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(tasks[0], BLOCK_MS / 1000 + 2)
            await worker.drain(timing.drain_seconds)
            for task in tasks[1:]:
                task.cancel()
            for task in tasks[1:]:
                with contextlib.suppress(BaseException):
                    await task


async def run_intake(
    app: App,
    channel: Any,
    redis: Redis,
    token: str,
    *,
    serve: Serve | None = None,
    prefix: str = "sicheng",
    timing: Timing = Timing(),
    handle_signals: bool = True,
) -> None:
    """Take updates in (the webhook server ``serve``, or long polling when it is None) until stopped: each is stored
    in the inbox and announced to the workers. Handling, sending and timers are the workers'."""
    async with _process(app, channel, "intake", handle_signals) as stop:
        broker = UpdateBroker(redis, token, consumer_name(), prefix=prefix)
        with contextlib.suppress(RedisError, OSError):
            await broker.ensure_group()
        announcer = Announcer(app, broker, timing.now)
        if serve is None:
            log.info("intake: long polling, announcing to the workers")
            await poll(channel.fetch_updates, announcer, stop, seconds=timing.poll_seconds)
        else:
            await serve(announcer.take, stop)
