"""Telegram-like flood control and fault injection.

Time here is *emulated* seconds: real clock seconds divided by ``time_scale``. With ``time_scale=0.01``
a one-second Telegram window lasts 10 ms, so benchmarks run fast. ``retry_after`` is always a whole number
of emulated seconds (at least 1, as aiogram and PTB expect an integer); the real wait is
``retry_after * time_scale``.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Literal

from bot.sandbox.clock import Clock

Scope = tuple[str, int, int]  # (kind, bot_id, chat_id or 0)
Fault = Literal["429", "5xx", "timeout"]

# Methods that put or change a message in a chat; only these are metered and, by default, made to fail.
METERED_PREFIXES = ("send", "edit", "copy", "forward", "stoppoll")
UNMETERED = frozenset({"sendchataction"})


def is_metered(method: str) -> bool:
    """Whether a (lower-cased) Bot API method counts against the send limits."""
    return method.startswith(METERED_PREFIXES) and method not in UNMETERED


@dataclass(frozen=True)
class RateLimits:
    """Token buckets per token and per chat, a sliding minute per group; defaults follow Telegram."""

    per_bot_per_second: float = 30.0
    bot_burst: float = 30.0
    per_chat_per_second: float = 1.0
    chat_burst: float = 3.0
    per_group_per_minute: int = 20
    # allow_paid_broadcast: up to 1000 messages/s for the bot (paid in Stars), instead of the free 30/s.
    paid_per_second: float = 1000.0


@dataclass(frozen=True)
class Faults:
    """Shares (0..1) of metered requests that fail; the RNG is seeded so a run can be replayed."""

    share_429: float = 0.0
    share_5xx: float = 0.0
    share_timeout: float = 0.0
    seed: int | None = 0
    retry_after: int = 1
    hang_seconds: float = 5.0
    methods: frozenset[str] | None = None  # lower-cased names; None means the metered methods


@dataclass(frozen=True)
class FloodWait:
    """A 429 verdict: which scope overflowed and until when (real monotonic seconds)."""

    scope: Scope
    retry_after: int
    until: float


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets, a sliding window for groups, and "paused until" windows (also for injected 429s)."""

    def __init__(self, clock: Clock, limits: RateLimits | None = None, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.clock = clock
        self.limits = limits
        self.time_scale = time_scale
        self._buckets: dict[Scope, _Bucket] = {}
        self._group_sends: dict[Scope, deque[float]] = {}
        self._paused: dict[Scope, float] = {}  # scope -> end of window, emulated seconds

    def now(self) -> float:
        """Current emulated time."""
        return self.clock.monotonic() / self.time_scale

    def check(self, bot_id: int, chat_id: int, is_group: bool, paid: bool = False) -> FloodWait | None:
        """Consume one send for this chat, or return the 429 verdict that forbids it (a paid broadcast counts
        against the bot's paid allowance instead of the free one)."""
        now = self.now()
        scopes = self._scopes(bot_id, chat_id, is_group)
        if paid:
            scopes[0] = ("paid", bot_id, 0)
        for scope in scopes:
            until = self._paused.get(scope, 0.0)
            if now < until:
                return self._verdict(scope, math.ceil(until - now - 1e-9), until)
        if self.limits is None:
            return None
        buckets = [(scope, self._refill(scope, now)) for scope in scopes if scope[0] != "group"]
        for scope, bucket in buckets:
            if bucket.tokens < 1.0:
                rate, _ = self._shape(scope)
                return self.pause(scope, max(1, math.ceil((1.0 - bucket.tokens) / rate)))
        if is_group and (wait := self._group_wait(scopes[-1], now)) is not None:
            return wait
        for _, bucket in buckets:
            bucket.tokens -= 1.0
        if is_group:
            self._group_sends[scopes[-1]].append(now)
        return None

    def _group_wait(self, scope: Scope, now: float) -> FloodWait | None:
        """At most per_group_per_minute sends in any 60 s, so bursts cannot double up across a boundary."""
        assert self.limits is not None
        sends = self._group_sends.setdefault(scope, deque())
        while sends and sends[0] <= now - 60.0:
            sends.popleft()
        if len(sends) < self.limits.per_group_per_minute:
            return None
        return self.pause(scope, max(1, math.ceil(sends[0] + 60.0 - now)))

    def pause(self, scope: Scope, retry_after: int) -> FloodWait:
        """Open a window in which every send on scope gets a 429."""
        until = self.now() + retry_after
        self._paused[scope] = max(self._paused.get(scope, 0.0), until)
        return self._verdict(scope, retry_after, until)

    def _verdict(self, scope: Scope, retry_after: int, until: float) -> FloodWait:
        return FloodWait(scope=scope, retry_after=max(1, retry_after), until=until * self.time_scale)

    @staticmethod
    def _scopes(bot_id: int, chat_id: int, is_group: bool) -> list[Scope]:
        scopes: list[Scope] = [("bot", bot_id, 0), ("chat", bot_id, chat_id)]
        if is_group:
            scopes.append(("group", bot_id, chat_id))
        return scopes

    def _shape(self, scope: Scope) -> tuple[float, float]:
        limits = self.limits or RateLimits()
        if scope[0] == "bot":
            return limits.per_bot_per_second, limits.bot_burst
        if scope[0] == "paid":
            return limits.paid_per_second, limits.paid_per_second
        return limits.per_chat_per_second, limits.chat_burst

    def _refill(self, scope: Scope, now: float) -> _Bucket:
        rate, burst = self._shape(scope)
        bucket = self._buckets.setdefault(scope, _Bucket(tokens=burst, updated=now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        return bucket


class FaultInjector:
    """Decides, per request, whether to fail it; one RNG draw per eligible request keeps runs reproducible."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)

    def applies_to(self, method: str) -> bool:
        """Whether method (lower-cased) is subject to injected faults."""
        if self.faults.methods is not None:
            return method in self.faults.methods
        return is_metered(method)

    def roll(self, method: str) -> Fault | None:
        """Return the fault to inject for this request, if any."""
        f = self.faults
        if not self.applies_to(method) or f.share_429 + f.share_5xx + f.share_timeout <= 0:
            return None
        draw = self._rng.random()
        if draw < f.share_429:
            return "429"
        if draw < f.share_429 + f.share_5xx:
            return "5xx"
        if draw < f.share_429 + f.share_5xx + f.share_timeout:
            return "timeout"
        return None
