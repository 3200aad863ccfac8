"""Per-user locks shared by every worker process, in Redis.

``hold(user)`` first queues in-process (so a worker's own tasks for one person wait in arrival order instead of
polling Redis against each other), then takes ``<prefix>:{<token hash>}:lock:<user>`` with ``SET NX PX`` and a random
token, renews the lease while the holder works, and releases it only if it still holds it (compare-and-delete in
Lua). A worker that dies stops renewing: the lease lapses after ``lease`` seconds and another worker goes on.

The lock is what keeps one person's updates one at a time across workers; it is not what makes them exactly-once.
That is the inbox row, marked done inside the handling transaction only if still pending (PostgreSQL holds the
row's lock until that transaction ends), so even a lease that lapsed under a stalled worker cannot make an update
count twice, and the next worker, handling the person's pending rows oldest first, waits on the stalled row's lock
before it can go past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.channels.redis_pace import key_base
from bot.conversation.locks import LocalUserLocks

log = logging.getLogger(__name__)

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


LEASE = 15.0  # seconds a lock outlives a worker that died holding it (renewed every third of it while it lives)


class RedisUserLocks:
    def __init__(self, redis: Redis, token: str, *, prefix: str = "sicheng", lease: float | None = None) -> None:
        self.redis = redis
        self._base = f"{key_base(token, prefix)}:lock:"
        self.lease = LEASE if lease is None else lease
        self._local = LocalUserLocks()
        self._release = redis.register_script(RELEASE)
        self._renew = redis.register_script(RENEW)

    @asynccontextmanager
    async def hold(self, user_id: int) -> AsyncIterator[None]:
        async with self._local.hold(user_id):
            key = f"{self._base}{user_id}"
            token = secrets.token_hex(8)
            await self._acquire(key, token)
            done = asyncio.Event()
            renewer = asyncio.create_task(self._keep(key, token, done))
            try:
                yield
            finally:
                # The renewer is stopped by the event, not by cancelling it: redis-py (8.1) on Python 3.11 often loses
                # a cancellation that arrives while a command is under way (it sends inside asyncio.wait_for, which in
                # 3.11 drops the outer cancel when the inner call finishes in the same loop iteration), and a renewer
                # that kept going would hold this person's lock, and every later update of theirs, for as long as the
                # worker lives. Nor is it waited for without limit.
                done.set()
                await asyncio.wait({renewer}, timeout=self.lease / 3)
                if not renewer.done():
                    renewer.cancel()
                try:
                    await asyncio.wait_for(self._release(keys=[key], args=[token]), self.lease / 3)
                except (RedisError, OSError, TimeoutError):  # it lapses by itself
                    log.warning("user lock: could not release (Redis unavailable); it lapses in %.0fs", self.lease)

    async def _acquire(self, key: str, token: str) -> None:
        delay = 0.002
        lease_ms = int(self.lease * 1000)
        while True:
            try:
                if await self.redis.set(key, token, nx=True, px=lease_ms):
                    return
            except RedisError:
                # Redis down: the worker cannot take announcements either; wait for it rather than run unlocked.
                log.warning("user lock: Redis unavailable, waiting")
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def _keep(self, key: str, token: str, done: asyncio.Event) -> None:
        """Renew the lease every third of it until ``done`` is set."""
        lease_ms = int(self.lease * 1000)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.lease / 3)
            if done.is_set():
                return
            try:
                if not await self._renew(keys=[key], args=[token, lease_ms]):
                    log.warning("user lock %s lapsed while held (a stalled worker?)", key.rsplit(":", 1)[-1])
                    return
            except RedisError:
                log.warning("user lock: could not renew (Redis unavailable)")
