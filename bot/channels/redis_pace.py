"""The token's pace and 429 pause shared through Redis, for several processes sending with one bot token.

Telegram counts ≈30 msg/s and its flood-control pauses per *token*, so when N processes send for the same bot, each
with its own :class:`~bot.channels.gate.SendGate`, they must book send slots in one place and all stop on a 429
that any of them gets. :class:`RedisPace` does both:

* ``reserve`` runs one Lua script (``EVALSHA``) that books the next slot of the token's sliding window atomically,
  so the processes together keep every limit (``((1.0, 30),)``: at most 30 in any second). The script reads the
  server's clock (``TIME``) and answers with a *delay* from the server's now, which the caller adds to its own
  monotonic clock: machines with skewed clocks still agree.
* ``pause`` sets a key that expires when ``retry_after`` has passed (Redis's clock again); ``paused_until`` reads
  its remaining time. Pauses only grow.

Keys are ``<prefix>:{<sha256(token)[:16]>}:slots`` and ``...:pause`` — never the token itself, and the braces keep
both keys in one Redis Cluster slot.

If Redis cannot be reached (or errs), sending does not stop: the pace falls back to a :class:`LocalPace` of the same
limits, logs one warning for the outage, and tries Redis again every ``retry_seconds``. While it runs locally each
process paces only itself, so N processes may together exceed the rate; a 429 then pauses that process as usual.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.channels.gate import GateLimits, LocalPace

log = logging.getLogger(__name__)

# KEYS[1]: the slots list (booked send times, server milliseconds, non-decreasing).
# ARGV[1]: how far after the server's now the caller wants the slot at the earliest (ms);
# ARGV[2]: the list's length to keep; ARGV[3], ARGV[4], ...: pairs of (window ms, count).
# Returns the booked slot's delay after the server's now (ms). Mirrors gate.Window.reserve.
RESERVE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot = now + tonumber(ARGV[1])
local last = redis.call('LINDEX', KEYS[1], -1)
if last and tonumber(last) > slot then slot = tonumber(last) end
local longest = 0
local moved = true
while moved do
  moved = false
  for i = 3, #ARGV, 2 do
    local window = tonumber(ARGV[i])
    if window > longest then longest = window end
    local stamp = redis.call('LINDEX', KEYS[1], -tonumber(ARGV[i + 1]))
    if stamp then
      local earliest = tonumber(stamp) + window
      if earliest > slot then slot, moved = earliest, true end
    end
  end
end
redis.call('RPUSH', KEYS[1], string.format('%d', slot))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], slot - now + longest + 1000)
return slot - now
"""

# KEYS[1]: the pause key; ARGV[1]: milliseconds from the server's now. Only ever lengthens the pause.
PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 0
"""


def key_base(token: str, prefix: str = "sicheng:pace") -> str:
    """The keys' common part: a hash of the token, never the token."""
    return f"{prefix}:{{{hashlib.sha256(token.encode()).hexdigest()[:16]}}}"


class RedisPace:
    """A :class:`~bot.channels.gate.TokenPace` shared by every process that sends with ``token``.

    ``slack`` lengthens each window a little (20 ms on a 1 s window by default) so that differences in network and
    scheduling delays between processes cannot squeeze one send too many into a window as Telegram sees it.
    """

    def __init__(
        self,
        redis: str | Redis,
        token: str,
        limits: tuple[tuple[float, int], ...] = GateLimits().token,
        *,
        prefix: str = "sicheng:pace",
        slack: float = 0.02,
        retry_seconds: float = 5.0,
        timeout: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(redis, str):
            # Short timeouts and no retries inside redis-py: a send waits at most ``timeout`` for a dead Redis.
            self.client = Redis.from_url(
                redis, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
            )
            self._owns_client = True
        else:
            self.client, self._owns_client = redis, False
        base = key_base(token, prefix)
        self.slots_key, self.pause_key = f"{base}:slots", f"{base}:pause"
        self.local = LocalPace(limits)
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._args: list[int] = [max(n for _, n in limits)]
        for seconds, count in limits:
            self._args += [math.ceil((seconds + slack) * 1000), count]
        self._reserve = self.client.register_script(RESERVE)
        self._pause = self.client.register_script(PAUSE)
        self._retry_at: float | None = None  # set while Redis is down: when to try it again

    @property
    def degraded(self) -> bool:
        """True while Redis is down and this process paces on its own."""
        return self._retry_at is not None

    async def reserve(self, now: float, not_before: float | None = None) -> float:
        wanted = now if not_before is None else not_before
        if self._usable():
            lead = max(0, math.ceil((wanted - now) * 1000))
            try:
                delay_ms = await self._reserve(keys=[self.slots_key], args=[lead, *self._args])
            except (RedisError, OSError) as error:
                self._down(error)
            else:
                self._up()
                return max(wanted, now + int(delay_ms) / 1000)
        return await self.local.reserve(now, not_before)

    async def pause(self, now: float, seconds: float) -> None:
        await self.local.pause(now, seconds)  # this process stops at once, whatever Redis does
        if seconds <= 0 or not self._usable():
            return
        try:
            await self._pause(keys=[self.pause_key], args=[math.ceil(seconds * 1000)])
        except (RedisError, OSError) as error:
            self._down(error)
        else:
            self._up()

    async def paused_until(self, now: float) -> float:
        local = await self.local.paused_until(now)
        if not self._usable():
            return local
        try:
            left_ms = int(await self.client.pttl(self.pause_key))
        except (RedisError, OSError) as error:
            self._down(error)
            return local
        self._up()
        return max(local, now + left_ms / 1000) if left_ms > 0 else local

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    def _usable(self) -> bool:
        return self._retry_at is None or self.clock() >= self._retry_at

    def _down(self, error: BaseException) -> None:
        if self._retry_at is None:  # once per outage, not once per send
            log.warning(
                "Redis unreachable for the shared send pace (%s: %s): pacing this process alone, retrying every %.0fs",
                type(error).__name__,
                error,
                self.retry_seconds,
            )
        self._retry_at = self.clock() + self.retry_seconds

    def _up(self) -> None:
        if self._retry_at is not None:
            log.info("Redis reachable again: the send pace is shared again")
            self._retry_at = None
