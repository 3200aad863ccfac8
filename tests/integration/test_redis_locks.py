"""Per-person locks shared by worker processes (Redis): one holder at a time across processes, and leaving a lock
always lets it go — also when a renewal in flight does not stop on cancellation (redis-py on Python 3.11 often loses
a cancel that arrives while a command is under way, which once kept a person's lock, and every later update of
theirs, held for as long as the worker lived)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.channels.redis_locks import RedisUserLocks

pytestmark = pytest.mark.redis

TOKEN = "123:locks-test"


async def _lock_keys(client: Redis, prefix: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"{prefix}:*lock:*")]


async def test_two_workers_holding_one_person_take_turns_and_others_run_alongside(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    workers = [RedisUserLocks(client, TOKEN, prefix=prefix, lease=3.0) for _ in range(2)]
    inside: dict[int, int] = {}
    most: dict[int, int] = {}

    async def handle(locks: RedisUserLocks, user: int) -> None:
        async with locks.hold(user):
            inside[user] = inside.get(user, 0) + 1
            most[user] = max(most.get(user, 0), inside[user], sum(inside.values()))
            await asyncio.sleep(0.02)
            inside[user] -= 1

    await asyncio.gather(*(handle(workers[n % 2], user) for n in range(12) for user in (1, 2)))
    assert most[1] >= 1 and all(v == 0 for v in inside.values())
    assert max(most.values()) == 2  # persons 1 and 2 in hand at once, never one person twice
    assert await _lock_keys(client, prefix) == []  # every lock let go


async def test_leaving_a_lock_lets_it_go_even_if_a_renewal_ignores_cancellation(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    locks = RedisUserLocks(client, TOKEN, prefix=prefix, lease=0.6)
    real = locks._renew
    renewals: list[str] = []

    async def stubborn_renew(keys: Any, args: Any) -> Any:
        # A renewal whose reply takes a while to read and that does not stop when cancelled, as redis-py can.
        renewals.append("started")
        for _ in range(3):
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                renewals.append("cancel lost")
        return await real(keys=keys, args=args)

    locks._renew = stubborn_renew  # type: ignore[assignment]

    async def hold() -> None:
        async with locks.hold(7):
            await asyncio.sleep(0.3)  # a renewal (every 0.2 s) is in flight when the holder leaves

    holding = asyncio.create_task(hold())
    done, _ = await asyncio.wait({holding}, timeout=2.0)
    assert holding in done, "leaving the lock waited for a renewal that never stops"
    assert renewals  # one was in flight
    other = RedisUserLocks(client, TOKEN, prefix=prefix, lease=0.6)
    taken = asyncio.Event()

    async def take() -> None:
        async with other.hold(7):
            taken.set()

    await asyncio.wait_for(take(), 1.0)  # free at once, not after the lease lapses or never
    assert taken.is_set()
    await asyncio.sleep(1.0)  # the stubborn renewal finishes meanwhile: it must not take the lock back
    assert await _lock_keys(client, prefix) == []
