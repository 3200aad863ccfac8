"""The inbox: every update is durably taken before Telegram is told it was received, and handled exactly once.

Intake (long polling here; the sandbox polls too, and a webhook answers 200 only after :meth:`Inbox.take`)::

    getUpdates(offset) ──► INSERT inbox rows (one transaction, a redelivered update is kept once) ──► commit
        ▲                                                                                          │
        └──────────── next getUpdates(offset = last id + 1) confirms only what is stored ◄─────────┘

Handling, one transaction per update (under the sender's lock, in arrival order)::

    BEGIN ─ mark the row done ─ handler's effects + dialog state (SAVEPOINT) ─ replies queued in the outbox ─ COMMIT
    then the replies are sent at once (and marked sent); a crash before COMMIT leaves the row pending and the update
    is handled again after the restart; after COMMIT the outbox delivers what was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from bot import metrics
from bot.channels.dispatcher import Dispatcher
from bot.channels.translate import to_incoming
from bot.conversation.core import Core, Deferred
from bot.conversation.incoming import Incoming
from bot.conversation.replies import out_to_json
from bot.domain.messaging import MAX_INBOX_ATTEMPTS, InboxItem, OutboxItem, OutboxStatus
from bot.domain.notices import Priority
from bot.services.ports import Clock, Transactions, UnitOfWorkFactory

log = logging.getLogger(__name__)

BATCH = 100
IDLE = 1.0
# Updates of different people handled at once by one process. 64 rather than 16: with more in flight, more of them
# share a SQLite group commit, pending updates are picked in bigger batches and each turn of the event loop sends
# more replies at once — bench.handling on aiogram, 300 taps at once: 2.2–3.3 ms of CPU per tap instead of 3.0–3.9
# (docs/benchmarks.md, "2026-12-07 (night)"); 128 was no better. It also leaves room for a few slow updates (a
# photo being downloaded) without holding up everyone else. On PostgreSQL the ones beyond the pool's connections
# wait for one.
CONCURRENCY = 64

Prefetch = Callable[[Incoming], Awaitable[None]]


class Inbox:
    def __init__(
        self,
        core: Core,
        uow: UnitOfWorkFactory,
        transactions: Transactions,
        dispatcher: Dispatcher,
        clock: Clock,
        *,
        prefetch: Prefetch | None = None,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.core = core
        self._uow = uow
        self._tx = transactions
        self.dispatcher = dispatcher
        self._clock = clock
        self._prefetch = prefetch
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.deferrals = 0  # updates deferred so far (``Deferred``: a handler could not act yet)

    # ---- intake ------------------------------------------------------------------------------

    async def take(self, updates: Sequence[dict[str, Any]]) -> int:
        """Store updates durably (a redelivered one once); only then may they be confirmed to Telegram."""
        if not updates:
            return 0
        async with self._tx.scope() as uow:
            added = await uow.inbox.add(updates, self._clock())
            await uow.commit()
        self._wake.set()
        return added

    async def recover(self) -> None:
        """At start: count an attempt for each update a crash interrupted; set aside one that keeps crashing."""
        async with self._tx.scope() as uow:
            pending, poisoned = await uow.inbox.recover(MAX_INBOX_ATTEMPTS, self._clock())
            await uow.commit()
        if pending or poisoned:
            log.info("inbox: %s update(s) to handle from before the restart, %s set aside", pending, poisoned)

    # ---- handling ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Handle pending updates until ``stop``; then let the ones in hand finish."""
        while not stop.is_set():
            self._wake.clear()  # before looking, so an update stored while we look is not left waiting for IDLE
            try:
                started = await self.start_pending()
            except Exception:
                log.exception("inbox: could not read pending updates")
                started = 0
            if started == 0 or len(self._in_flight) >= self._concurrency:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE)

    async def start_pending(self) -> int:
        """Start handling pending updates not in hand yet, oldest first, as many as there are free slots.

        Each start counts an attempt, committed first: an update whose handling kills the process is recognised
        after a few restarts (``recover``) instead of crashing it for ever; updates merely waiting are not counted.
        """
        room = self._concurrency - len(self._in_flight)
        if room <= 0:
            return 0
        async with self._uow() as uow:
            items = await uow.inbox.pending(self._clock(), min(room, BATCH), sorted(self._in_flight))
        if items:
            async with self._tx.scope() as tx:  # a write: through the serialised writer on SQLite
                await tx.inbox.picked([i.id for i in items])
                await tx.commit()
        for item in items:
            self._in_flight.add(item.id)
            task = asyncio.create_task(self._guarded(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(items)

    async def drain(self, seconds: float) -> None:
        """Wait (at most ``seconds``) for the updates in hand; what is left is handled after the restart."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=seconds)

    async def _guarded(self, item: InboxItem) -> None:
        try:
            async with self._slots:
                await self.handle(item)
        except Exception as error:
            # Not the handler (the core answers its failures): storage or the outbox. Try again later, not in a loop.
            log.exception("inbox: update %s (row %s) could not be handled; trying again later", item.update_id, item.id)
            await self._retry_later(item, f"{type(error).__name__}: {error}")
        finally:
            self._in_flight.discard(item.id)
            self._wake.set()

    async def handle_held(self, item: InboxItem) -> None:
        """Handle one stored update when the caller already holds the sender's lock (the multi-worker loop,
        ``bot/workers.py``); if storage or the outbox fails it is tried again later, as :meth:`_guarded` does."""
        try:
            await self._handle_locked(item)
        except Exception as error:
            log.exception("inbox: update %s (row %s) could not be handled; trying again later", item.update_id, item.id)
            await self._retry_later(item, f"{type(error).__name__}: {error}")

    async def handle(self, item: InboxItem) -> None:
        """Handle one stored update exactly once (see the module's docstring).

        The sender's lock is taken first, before anything is awaited: tasks start in arrival order, so one person's
        updates are handled in the order they were sent (a photo being downloaded is not overtaken by the tap on
        "照片发完了" right after it).
        """
        async with self.core.locks.hold(item.user_id if item.user_id is not None else -item.id):
            await self._handle_locked(item)

    async def _handle_locked(self, item: InboxItem) -> None:
        incoming = await self._incoming(item)
        if incoming is None:
            return
        if self._prefetch is not None:  # downloads cannot be in a transaction: idempotent, before it
            await self._prefetch(incoming)
        try:
            with metrics.timed_update(incoming):  # counts, latency, update_id/user_id in log records
                replies = await self._handle_in_transaction(item, incoming)
        except Deferred as wait:
            await self._defer(item, wait)
            return
        if replies is None:
            return
        await self.dispatcher.send_now(replies)

    async def _handle_in_transaction(self, item: InboxItem, incoming: Incoming) -> list[OutboxItem] | None:
        now = self._clock()
        async with self._tx.scope() as uow:
            # The same statement reads the revisions the caches of the sender's profile, the communities and the
            # sender's dialog state are checked against (storage/revisions.py).
            if not await uow.inbox.start(item.id, now, sender=(incoming.user_id, incoming.chat_id)):
                return None  # handled already (another worker, or a redelivery)
            if incoming.chat_type.is_group:
                await uow.outbox.group_reachable(incoming.chat_id)
            outgoing = await self.core.process(incoming)
            messages = [(getattr(out, "chat_id", incoming.chat_id), *out_to_json(out)) for out in outgoing]
            rows = await uow.outbox.add_many(
                messages,
                now=now,
                priority=int(Priority.REPLY),
                claimed_by=self.dispatcher.name,
                claimed_until=now + self.dispatcher.lease,
            )
            await uow.commit()
        return [
            OutboxItem(row, chat, kind, payload, int(Priority.REPLY), None, OutboxStatus.PENDING)
            for row, (chat, kind, payload) in zip(rows, messages, strict=True)
        ]

    async def _incoming(self, item: InboxItem) -> Incoming | None:
        """The update as the core sees it; a malformed one is set aside (kept for inspection), once."""
        try:
            incoming = to_incoming(item.payload, str(self.core.settings.get("bot_username", "")))
        except Exception as error:
            reason = f"malformed: {type(error).__name__}: {error}"
            log.warning("inbox: update %s set aside (%s)", item.update_id, reason[:200])
            await self._finish(item, reason)
            return None
        if incoming is None:  # a kind the bot does not handle
            await self._finish(item, None)
            return None
        if item.attempts:  # how often it was started before (a deferred answer waits longer each time)
            incoming.extra["attempt"] = str(item.attempts)
        return incoming

    async def _finish(self, item: InboxItem, set_aside: str | None) -> None:
        async with self._tx.scope() as uow:
            if set_aside is None:
                await uow.inbox.start(item.id, self._clock())
            else:
                await uow.inbox.set_aside(item.id, self._clock(), set_aside)
            await uow.commit()

    async def _retry_later(self, item: InboxItem, reason: str) -> None:
        try:
            async with self._tx.scope() as uow:
                if item.attempts + 1 >= MAX_INBOX_ATTEMPTS:
                    await uow.inbox.set_aside(item.id, self._clock(), f"failed {item.attempts + 1} times: {reason}")
                else:
                    delay = timedelta(seconds=min(300, 2 ** (item.attempts + 1)))
                    await uow.inbox.defer(item.id, self._clock() + delay, reason)
                await uow.commit()
        except Exception:  # the database itself is down: the row stays pending and is picked again
            log.exception("inbox: could not reschedule update %s", item.update_id)

    async def _defer(self, item: InboxItem, wait: Deferred) -> None:
        self.deferrals += 1  # the multi-worker loop looks again soon when this moved
        async with self._tx.scope() as uow:
            if item.attempts + 1 >= MAX_INBOX_ATTEMPTS * 3:
                await uow.inbox.set_aside(item.id, self._clock(), f"deferred too often: {wait}")
            else:
                await uow.inbox.defer(item.id, self._clock() + timedelta(seconds=wait.seconds), str(wait))
            await uow.commit()


class Intake(Protocol):
    """Where polled updates go: the inbox, or (several workers) the inbox plus an announcement."""

    async def take(self, updates: Sequence[dict[str, Any]]) -> int: ...


async def poll(
    fetch: Callable[[int | None, int], Awaitable[list[dict[str, Any]]]],
    inbox: Intake,
    stop: asyncio.Event,
    *,
    seconds: int = 25,
) -> None:
    """Long polling that owns the offset: an update is confirmed (the next offset) only once it is stored.

    The offset lives in memory only: after a restart Telegram hands back whatever was not confirmed, and the inbox
    recognises what it already has.
    """
    offset: int | None = None
    failures = 0
    while not stop.is_set():
        try:
            fetch_task = asyncio.ensure_future(fetch(offset, seconds))
            stopping = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({fetch_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if fetch_task not in done:
                fetch_task.cancel()
                with contextlib.suppress(BaseException):
                    await fetch_task
                break
            stopping.cancel()
            updates = fetch_task.result()
            await inbox.take(updates)
            ids = [u["update_id"] for u in updates if isinstance(u.get("update_id"), int)]
            if ids:
                offset = max(ids) + 1
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as error:
            failures += 1
            delay = min(30.0, 0.5 * 2**failures)
            log.warning("getUpdates failed (%s); retrying in %.1fs", type(error).__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
