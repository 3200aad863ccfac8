"""One shared gate for every outgoing Bot API call of a token.

Neither aiogram nor python-telegram-bot paces sends or retries a 429 by itself (see docs/architecture.md). The
gate, framework-neutral, does three things:

* paces sends: per chat (≈1 msg/s with a small burst; 20 msg/min for groups) and per token (≈30 msg/s);
* on a 429, pauses *all* sends of the token until ``retry_after`` has passed, then retries the call;
* on a 403 (blocked, deactivated, never started) tells the app the recipient is unreachable and never retries;
  a 400 "message is not modified" counts as success.

Adapters give it a ``classify`` function that maps their library's exception to a :class:`Verdict`.

The token's pace and its 429 pause are asked of a :class:`TokenPace`: :class:`LocalPace` when one process sends for
the token, ``bot.channels.redis_pace.RedisPace`` when several do (they must share them: Telegram counts per token).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

from bot import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# Methods that put a new message in a chat: they count against Telegram's per-chat and per-token limits.
PACED_METHODS = frozenset(
    {
        "sendmessage", "sendphoto", "senddocument", "sendpoll", "sendlocation", "sendmediagroup",
        "sendvideo", "sendaudio", "sendvoice", "sendsticker", "sendanimation", "copymessage",
        "forwardmessage",
    }
)  # fmt: skip
# Edits answer a tap on a button the person just pressed: they share the token's pace but not the chat's, so
# "edit + next message" is not held back a second in front of the person.
EDIT_METHODS = frozenset({"editmessagetext", "editmessagecaption", "editmessagereplymarkup", "stoppoll"})
UNPACED = frozenset({"getupdates", "close", "logout", "getme"})  # must never wait behind a 429 pause


class Kind(Enum):
    RETRY_AFTER = "retry_after"
    FORBIDDEN = "forbidden"
    NOT_MODIFIED = "not_modified"
    TRANSIENT = "transient"  # 5xx or network: retry a few times with backoff
    FATAL = "fatal"  # anything else: the caller's problem


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    retry_after: float = 0.0


class Window:
    """Sliding-window limits for one key, e.g. ``[(60, 20)]``: at most 20 sends in any 60 seconds."""

    def __init__(self, limits: tuple[tuple[float, int], ...]) -> None:
        self.limits = limits
        self.stamps: deque[float] = deque(maxlen=max(n for _, n in limits))

    def reserve(self, now: float) -> float:
        """Book the earliest slot at or after ``now`` that keeps every limit; returns that time."""
        slot = max(now, self.stamps[-1] if self.stamps else now)
        moved = True
        while moved:
            moved = False
            for seconds, count in self.limits:
                if len(self.stamps) >= count:
                    earliest = self.stamps[-count] + seconds
                    if earliest > slot:
                        slot, moved = earliest, True
        self.stamps.append(slot)
        return slot


class TokenPace(Protocol):
    """The token-wide part of the gate: the send slots of the token and its 429 pause.

    Every time is on the caller's clock (the gate's ``clock``); ``now`` is that clock's current reading, so an
    implementation that keeps time elsewhere (Redis) converts through durations and never compares clocks.
    """

    async def reserve(self, now: float, not_before: float | None = None) -> float:
        """Book the token's earliest send slot at or after ``not_before`` (default ``now``); returns that time."""
        ...

    async def pause(self, now: float, seconds: float) -> None:
        """Hold every call of the token for ``seconds`` from ``now`` (a 429's ``retry_after``); pauses only grow."""
        ...

    async def paused_until(self, now: float) -> float:
        """When the token's pause ends (at or before ``now`` when there is none)."""
        ...


class LocalPace:
    """The token's pace and pause in this process's memory: right when this process is the token's only sender."""

    def __init__(self, limits: tuple[tuple[float, int], ...]) -> None:
        self.window = Window(limits)
        self.until = 0.0

    async def reserve(self, now: float, not_before: float | None = None) -> float:
        return self.window.reserve(now if not_before is None else not_before)

    async def pause(self, now: float, seconds: float) -> None:
        self.until = max(self.until, now + seconds)

    async def paused_until(self, now: float) -> float:
        return self.until


@dataclass(frozen=True)
class GateLimits:
    # ≈1 msg/s per chat on average, with a burst of 3 so a reply (edit + menu) is not held back a second.
    private: tuple[tuple[float, int], ...] = ((3.0, 3),)
    group: tuple[tuple[float, int], ...] = ((3.0, 3), (60.0, 20))
    token: tuple[tuple[float, int], ...] = ((1.0, 30),)
    paid: tuple[tuple[float, int], ...] = ((1.0, 1000),)

    @classmethod
    def from_rates(cls, chat_per_second: float, group_per_minute: int, bot_per_second: int = 30) -> GateLimits:
        """Limits from configuration (``SICHENG_TELEGRAM__CHAT_PER_SECOND``, ``..._BOT_PER_SECOND`` etc.)."""
        burst = 3.0 / chat_per_second if chat_per_second > 0 else 0.0
        return cls(private=((burst, 3),), group=((burst, 3), (60.0, group_per_minute)), token=((1.0, bot_per_second),))


class SendGate:
    """Shared by every sender of one token in this process (both the reply path and broadcasts).

    The token's pace and 429 pause come from ``pace`` (:class:`LocalPace` unless given), which several processes
    may share. The per-chat windows stay in this process on purpose: one chat's updates are handled by one process
    in order, and the outbox sends each chat's rows in order from one claim at a time, so two processes sending to
    the same chat at the same moment is rare, and then bounded by the shared token pace and answered by a 429 that
    pauses everyone — not worth a Redis round trip per chat on every send.
    """

    def __init__(
        self,
        limits: GateLimits | None = None,
        *,
        on_forbidden: Callable[[int], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_attempts: int = 6,
        pace: TokenPace | None = None,
    ) -> None:
        self.limits = limits or GateLimits()
        self.on_forbidden = on_forbidden
        self.clock = clock
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.pace: TokenPace = pace if pace is not None else LocalPace(self.limits.token)
        self._chats: dict[int, Window] = {}
        # Paid broadcasts (allow_paid_broadcast) have their own allowance; kept per process (see docs/operations.md).
        self._paid = Window(self.limits.paid)
        self.stats = {"retry_after": 0, "forbidden": 0, "not_modified": 0, "transient": 0}

    async def run(
        self,
        method: str,
        chat_id: int | None,
        call: Callable[[], Awaitable[T]],
        classify: Callable[[BaseException], Verdict],
        not_modified: T,
        *,
        paid: bool = False,
    ) -> T:
        """Send through the gate: wait for the pace and any 429 pause, retry 429 and transient errors.

        ``paid``: sent with ``allow_paid_broadcast`` — it counts against the paid allowance (1000/s), not the
        token's free 30/s."""
        name = method.lower()
        for attempt in range(1, self.max_attempts + 1):
            if name not in UNPACED:
                await self._wait(name, chat_id, paid)
            try:
                return await call()
            except Exception as error:
                verdict = classify(error)
                if verdict.kind is Kind.NOT_MODIFIED:
                    self.stats["not_modified"] += 1
                    return not_modified
                if verdict.kind is Kind.FORBIDDEN:
                    await self._forbidden(chat_id)
                    raise
                if verdict.kind is Kind.FATAL or attempt == self.max_attempts:
                    raise
                await self._back_off(verdict, attempt, method, chat_id)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _wait(self, method: str, chat_id: int | None, paid: bool = False) -> None:
        # A 429 pause holds every call of the token, paced or not; the pace only holds message sends.
        await self._sit_out_pause()
        if chat_id is None or method not in PACED_METHODS | EDIT_METHODS:
            return
        now = self.clock()
        chat_slot = self._window(chat_id).reserve(now) if method in PACED_METHODS else now
        slot = self._paid.reserve(chat_slot) if paid else await self.pace.reserve(now, chat_slot)
        if (delay := slot - self.clock()) > 0:
            await self.sleep(delay)
        await self._sit_out_pause()

    async def _sit_out_pause(self) -> None:
        while (delay := await self.pace.paused_until(now := self.clock()) - now) > 0:
            await self.sleep(delay)

    def _window(self, chat_id: int) -> Window:
        window = self._chats.get(chat_id)
        if window is None:
            # Telegram's group and channel ids are negative; users are positive.
            window = Window(self.limits.group if chat_id < 0 else self.limits.private)
            if len(self._chats) > 50_000:  # keep memory flat in long runs: old chats have no recent stamps
                self._chats.clear()
            self._chats[chat_id] = window
        return window

    async def _back_off(self, verdict: Verdict, attempt: int, method: str, chat_id: int | None) -> None:
        if verdict.kind is Kind.RETRY_AFTER:
            self.stats["retry_after"] += 1
            metrics.telegram_429()
            await self.pace.pause(self.clock(), verdict.retry_after)
            log.warning("429 on %s to %s: all sends paused for %.1fs", method, chat_id, verdict.retry_after)
            return
        self.stats["transient"] += 1
        delay = min(2.0 ** (attempt - 1) * 0.5, 10.0)
        log.warning("transient error on %s to %s (attempt %s), retrying in %.1fs", method, chat_id, attempt, delay)
        await self.sleep(delay)

    async def _forbidden(self, chat_id: int | None) -> None:
        self.stats["forbidden"] += 1
        metrics.telegram_403()
        log.info("403 for chat %s: marked unreachable, not retried", chat_id)
        if self.on_forbidden is not None and chat_id is not None and chat_id > 0:
            await self.on_forbidden(chat_id)
