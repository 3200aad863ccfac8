"""The outbox dispatcher: renders each queued message in its recipient's language and sends it through the gate.

At least once, never lost: a row is marked sent only after Telegram accepted it (its message id kept, so a card
can be edited later); a crash between the send and the mark repeats that one message. A 403 marks the person or
group unreachable and every later row to them is skipped (kept as skipped) until they write again; 429 is
handled by the gate (the whole token pauses); 5xx and time-outs are retried with backoff; any other refusal fails
the row visibly with Telegram's reason.

Rows are claimed for a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so several dispatchers never send the
same row. Replies to an update are claimed by the worker that handled it, in the update's own transaction, and
sent at once by :meth:`Dispatcher.send_now`; the loop picks up whatever is left (after a crash, notices, timers).

Bulk rows (campaign notices) share the token's pace with replies, and the gate books token slots first come, first
served. Left to themselves, the chats of a broadcast would book slots up to a second ahead (the gate's one-second
window refills all at once), and a reply to someone tapping a button would wait behind them. So bulk rows are handed
to the gate evenly, a little under the token's limit (:data:`BULK_HEADROOM` messages a second are left free): they
find the window open and go at once, and a reply books the free slot directly (bench.broadcast, 5,000 recipients:
the p95 of a tap's answer went from 0.93 s to 0.06–0.12 s, utilisation of the token 0.99; see docs/benchmarks.md).
Paid broadcasts have their own allowance and are not held back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot import metrics
from bot.channels.base import Sender, send_one
from bot.channels.gate import GateLimits, Kind, Verdict
from bot.conversation.callbacks import CallbackCodec
from bot.conversation.render import CAPTION_LIMIT, TEXT_LIMIT, ActionRenderer, split_text
from bot.conversation.replies import (
    OutButton,
    OutEdit,
    Outgoing,
    OutKeyboard,
    OutMessage,
    OutPhoto,
    OutPoll,
    is_out_kind,
    out_from_json,
)
from bot.domain.messaging import (
    MAX_SEND_ATTEMPTS,
    UNREACHABLE,
    OutboxItem,
    OutboxStatus,
    send_backoff,
    unreachable_reason,
)
from bot.domain.notices import Priority
from bot.domain.wire import from_json
from bot.services.outbox import NOTICE, POLL
from bot.services.ports import Clock, Transactions, UnitOfWorkFactory

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
ANSWER = "out.answer"  # the outbox kind of a callback answer (bot.conversation.replies)
BATCH = 100
CHATS_AT_ONCE = 16
# Bot API requests of one dispatcher in flight at once. python-telegram-bot's HTTP pool (httpcore) looks at every
# pooled connection on each request (quadratically, for idle ones), and it keeps one connection per request that
# was ever in flight at the same time; unbounded, a burst of taps left it 3.5x the echo's pool work per update
# (bench.handling). Eight still allow 40 requests a second at a 0.2 s round trip, above the token's 30 messages.
SENDS_AT_ONCE = 8
IDLE = 1.0  # seconds between looks at the outbox when nothing woke the loop
BULK_HEADROOM = 1.0  # messages a second of the token's pace that bulk rows leave free for replies
BULK_CATCH_UP = 1  # a bulk turn missed lately (the loop was busy) may still be taken, at once with the next


def bulk_rate(token: tuple[tuple[float, int], ...] = GateLimits().token) -> float:
    """Bulk messages a second: the token's tightest limit less the headroom (29/s for Telegram's 30/s)."""
    return max(1.0, min(count / seconds for seconds, count in token) - BULK_HEADROOM)


PollListener = Callable[[str, int, str, int], Awaitable[None]]  # tag, chat, poll id, message id


class Refused(Exception):
    """The row cannot be sent as it is (an unknown kind, an edit without a ref): it fails with the reason."""


class Dispatcher:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        transactions: Transactions,
        renderer: ActionRenderer,
        codec: CallbackCodec,
        sender: Sender,
        clock: Clock,
        *,
        on_poll: PollListener | None = None,
        bot_username: Callable[[], str] = str,
        lease: timedelta = LEASE,
        bulk_per_second: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._uow = uow
        self._tx = transactions
        self._renderer = renderer
        self._codec = codec
        self.sender = sender
        self._clock = clock
        self._on_poll = on_poll
        self._bot_username = bot_username
        self.lease = lease
        # The bulk pace keeps the gate's time (monotonic seconds; tests and benchmarks may run it faster).
        self.bulk_gap = 1 / (bulk_per_second or bulk_rate())
        self.monotonic = monotonic
        self.sleep = sleep
        self._bulk_next = -math.inf
        self._requests = asyncio.Semaphore(SENDS_AT_ONCE)
        self.name = uuid.uuid4().hex
        self._wake = asyncio.Event()
        # Marks (sent / skipped / failed) are written in batches by one flusher, serialised with other writers;
        # each chat waits for its mark before its next row, so a crash repeats at most one message per chat.
        self._marks: list[tuple[int, OutboxStatus, datetime, int | None, str | None]] = []
        self._marked: asyncio.Future[None] | None = None
        self._flushers: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    def wake(self) -> None:
        """Something was queued: look at the outbox now instead of at the next idle tick."""
        self._wake.set()

    async def release_all(self) -> int:
        """At start-up of the only process (SQLite): claims of a killed predecessor are void."""
        async with self._tx.scope() as uow:
            released = await uow.outbox.release()
            await uow.commit()
        return released

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Send what is due until ``stop`` is set (or cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            self._wake.clear()  # before looking, so a wake() while we look is not lost
            try:
                sent = await self.dispatch_once()
            except Exception:
                log.exception("outbox dispatch failed; trying again")
                sent = 0
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE)

    async def dispatch_once(self) -> int:
        """Claim a batch and send it, chats in parallel, each chat's rows in order. Returns rows handled."""
        now = self._clock()
        async with self._tx.scope() as uow:
            items = await uow.outbox.claim(self.name, now, now + self.lease, BATCH)
            await uow.commit()
        if not items:
            return 0
        await self._send_chats(items)
        return len(items)

    async def render_pending(self) -> list[Outgoing]:
        """Without a channel: render every pending row as it would be sent, in order, and mark it sent (tests,
        benchmarks). Polls are not reported back (no poll id exists); callers tell ``poll_sent`` what they choose."""
        out: list[Outgoing] = []
        while True:  # a claim takes the oldest row of each chat: go on until nothing is left
            now = self._clock()
            async with self._tx.scope() as uow:
                items = await uow.outbox.claim(self.name, now, now + self.lease, BATCH)
                for item in items:
                    out.extend(await self.render(item))
                    await uow.outbox.finish(item.id, OutboxStatus.SENT, now)
                await uow.commit()
            if not items:
                return out

    async def send_now(self, items: Sequence[OutboxItem]) -> None:
        """Send rows this dispatcher claimed already (the replies of an update it just handled), in order."""
        if items:
            await self._send_chats(items)

    async def _send_chats(self, items: Sequence[OutboxItem]) -> None:
        chats: dict[int, list[OutboxItem]] = defaultdict(list)
        for item in items:
            chats[item.chat_id].append(item)
        if len(chats) == 1:  # the replies to one update: no tasks needed
            for row in items:
                await self._deliver(row)
            return
        limit = asyncio.Semaphore(CHATS_AT_ONCE)

        async def one_chat(rows: list[OutboxItem]) -> None:
            async with limit:
                for row in rows:
                    await self._deliver(row)

        await asyncio.gather(*(one_chat(rows) for rows in chats.values()))

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            await self._deliver_one(item)
        except Exception:  # a bug here must not stop the other chats; the claim expires and it is tried again
            log.exception("outbox row %s could not be handled", item.id)

    async def _deliver_one(self, item: OutboxItem) -> None:
        now = self._clock()
        # A reply goes to someone who just wrote to the bot: reachable by definition, no need to look.
        if not is_out_kind(item.kind) and await self._unreachable(item.chat_id):
            await self._finish(item, OutboxStatus.SKIPPED, error=UNREACHABLE)
            return
        try:
            outs = await self.render(item)
        except Refused as why:
            metrics.outbox_failed("refused")
            await self._finish(item, OutboxStatus.FAILED, error=str(why))
            return
        except _NotYet:
            await self._retry(item, now + timedelta(seconds=2), "waiting for the message it edits", count=False)
            return
        except Exception as error:  # a template or context that cannot render will not render next time either
            log.exception("outbox row %s (%s) cannot be rendered", item.id, item.payload.get("template", item.kind))
            metrics.outbox_failed("render")
            await self._finish(item, OutboxStatus.FAILED, error=f"render: {type(error).__name__}: {error}")
            return
        message_id: int | None = None
        bulk = item.priority >= Priority.BULK
        try:
            for out in outs:
                async with self._requests:  # the bulk turn inside: the send leaves at its turn, not later in a bunch
                    if bulk and not (isinstance(out, OutMessage | OutPhoto) and out.paid):
                        await self._bulk_turn()
                    sent = await send_one(self.sender, out)
                message_id = message_id or sent[1]
                if isinstance(out, OutPoll) and sent[0] is not None:
                    await self._poll_sent(item, out, sent[0], sent[1])
                    return
        except Exception as error:
            await self._failed_send(item, error)
            return
        metrics.outbox_sent()
        # A callback answer is no message: sent twice, Telegram refuses the second (which fails harmlessly, see
        # _failed_send). So the chat's next row (the reply's message) need not wait for its mark, and the two marks
        # usually go in one write — a crash still repeats at most one message per chat.
        await self._finish(item, OutboxStatus.SENT, message_id=message_id, wait=item.kind != ANSWER)

    async def _bulk_turn(self) -> None:
        """Wait for the next bulk send's turn: turns are ``bulk_gap`` apart, handed out in order of asking. One turn
        missed lately (the loop was busy) may still be taken, so the pace holds on average, while no second holds
        more than the rate plus one (the token's limit: bulk rows never book the gate's slots ahead)."""
        now = self.monotonic()
        slot = max(self._bulk_next, now - self.bulk_gap * BULK_CATCH_UP)
        self._bulk_next = slot + self.bulk_gap
        if slot > now:
            await self.sleep(slot - now)

    async def _failed_send(self, item: OutboxItem, error: Exception) -> None:
        verdict: Verdict = self.sender.classify(error)
        reason = f"{type(error).__name__}: {error}"[:300]
        if verdict.kind is Kind.FORBIDDEN:
            async with self._tx.scope() as uow:
                await uow.outbox.mark_unreachable(item.chat_id, self._clock())
                why = unreachable_reason(str(error))
                skipped = await uow.outbox.skip_chat(item.chat_id, self._clock(), why)
                await uow.commit()
            log.info("chat %s blocked the bot: %s queued message(s) skipped", item.chat_id, skipped)
            return
        if verdict.kind in (Kind.TRANSIENT, Kind.RETRY_AFTER) and item.attempts + 1 < MAX_SEND_ATTEMPTS:
            log.warning("outbox row %s to %s: %s; retrying later", item.id, item.chat_id, reason)
            await self._retry(item, self._clock() + send_backoff(item.attempts + 1), reason)
            return
        if item.kind == ANSWER:  # a button answered too late (e.g. after a restart): harmless
            log.info("callback answer %s not delivered: %s", item.id, reason)
        else:
            log.error("outbox row %s to %s failed for good: %s", item.id, item.chat_id, reason)
        metrics.outbox_failed("retries" if verdict.kind in (Kind.TRANSIENT, Kind.RETRY_AFTER) else "telegram")
        await self._finish(item, OutboxStatus.FAILED, error=reason)

    async def _poll_sent(self, item: OutboxItem, out: OutPoll, poll_id: str, message_id: int | None) -> None:
        """The poll and its id are recorded together with the sent mark (one transaction)."""
        metrics.outbox_sent()
        async with self._tx.scope() as uow:
            if out.tag and self._on_poll is not None and message_id is not None:
                await self._on_poll(out.tag, out.chat_id, poll_id, message_id)
            await uow.outbox.finish(item.id, OutboxStatus.SENT, self._clock(), message_id=message_id)
            await uow.commit()

    async def _finish(
        self,
        item: OutboxItem,
        status: OutboxStatus,
        *,
        message_id: int | None = None,
        error: str | None = None,
        wait: bool = True,
    ) -> None:
        self._marks.append((item.id, status, self._clock(), message_id, error))
        if self._marked is None:
            self._marked = asyncio.get_running_loop().create_future()
            self._marked.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved if nobody waits
            flusher = asyncio.get_running_loop().create_task(self._flush_marks(self._marked))
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        if wait:
            await asyncio.shield(self._marked)

    async def _flush_marks(self, done: asyncio.Future[None]) -> None:
        await asyncio.sleep(0)  # let the other chats' marks of this moment join the batch
        taken = False
        try:
            async with self._tx.scope() as uow:
                # Taken only once this flusher is the writer (on SQLite it queued for the write lock behind the
                # updates being handled): the marks that came meanwhile join the batch, one statement for all.
                marks, self._marks, self._marked = self._marks, [], None
                taken = True
                await uow.outbox.finish_many(marks)
                await uow.commit()
        except BaseException as error:  # the rows stay claimed; the lease expires and they are sent again
            if not taken:
                self._marks, self._marked = [], None
            done.set_exception(error)
            raise
        done.set_result(None)

    async def _retry(self, item: OutboxItem, when: datetime, reason: str, *, count: bool = True) -> None:
        async with self._tx.scope() as uow:
            await uow.outbox.retry(item.id, when, reason if count else item.error)
            await uow.commit()

    async def _unreachable(self, chat_id: int) -> bool:
        async with self._uow() as uow:
            return await uow.outbox.unreachable(chat_id)

    # ---- rendering ----------------------------------------------------------------------------

    async def render(self, item: OutboxItem) -> list[Outgoing]:
        if is_out_kind(item.kind):
            return [out_from_json(item.kind, item.payload)]
        if item.kind == POLL:
            p = item.payload
            return [
                OutPoll(
                    item.chat_id,
                    p["question"],
                    tuple(p["options"]),
                    tuple(p["correct_option_ids"]),
                    p.get("explanation"),
                    p.get("open_period"),
                    p.get("tag", ""),
                )
            ]
        if item.kind == NOTICE:
            return await self._notice(item)
        raise Refused(f"unknown outbox kind {item.kind}")

    async def _notice(self, item: OutboxItem) -> list[Outgoing]:
        p = item.payload
        locale = p.get("locale") or "zh_Hans"
        text = self._renderer.templates.render(locale, p["template"], from_json(p.get("context") or {}))
        buttons = self._buttons(p.get("buttons") or [], locale)
        if p.get("edit"):
            if item.ref is None:
                raise Refused("an edit without a ref")
            async with self._uow() as uow:
                original = await uow.outbox.sent_message(item.ref, item.chat_id)
            if original is not None and original[0] == OutboxStatus.PENDING.value:
                raise _NotYet
            if original is not None and original[0] == OutboxStatus.SENT.value and original[1] is not None:
                caption = original[2]
                limit = CAPTION_LIMIT if caption else TEXT_LIMIT
                return [OutEdit(item.chat_id, original[1], _clip(text, limit), buttons, caption=caption)]
            # The card never reached the chat: send the current state as a new message instead.
        paid = bool(p.get("paid"))  # allow_paid_broadcast, chosen per notice
        if p.get("photo"):
            return [OutPhoto(item.chat_id, p["photo"], _clip(text, CAPTION_LIMIT), buttons, paid=paid)]
        parts = split_text(text, TEXT_LIMIT)
        messages: list[Outgoing] = [OutMessage(item.chat_id, part, paid=paid) for part in parts[:-1]]
        return [*messages, OutMessage(item.chat_id, parts[-1], buttons, paid=paid)]

    def _buttons(self, rows: list[list[dict[str, Any]]], locale: str) -> OutKeyboard:
        return tuple(tuple(button for b in row if (button := self._button(b, locale)) is not None) for row in rows)

    def _button(self, b: dict[str, Any], locale: str) -> OutButton | None:
        text = self._renderer.templates.label(locale, b["label"], from_json(b.get("label_context") or {}))
        if "url" in b:
            return OutButton(text, url=b["url"])
        if "start" in b:
            bot = self._bot_username()
            return OutButton(text, url=f"https://t.me/{bot}?start={b['start']}") if bot else None
        return OutButton(text, self._codec.encode(b["ns"], b["action"], *b.get("args", [])))


class _NotYet(Exception):
    """The row must wait (the message it edits is still queued)."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
