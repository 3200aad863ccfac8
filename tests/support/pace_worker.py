"""Senders that send as fast as a shared :class:`RedisPace` lets them, in this process or as a separate one.

As a process: ``python -m tests.support.pace_worker <redis url> <prefix> <limits json> <slack>``; it prints
``ready`` once imported and connected, reads ``<start> <until>`` (wall-clock seconds) from stdin, sends from
``start`` until ``until`` and prints the wall-clock instants of its sends as one JSON list.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

from bot.channels.gate import GateLimits, Kind, SendGate, Verdict
from bot.channels.redis_pace import RedisPace

TOKEN = "123456:pace-test-token-never-in-redis"
TASKS = 2  # concurrent senders per process, as the outbox dispatcher has several chats in flight


def make_pace(url: str, prefix: str, limits: tuple[tuple[float, int], ...], slack: float) -> RedisPace:
    return RedisPace(url, TOKEN, limits, prefix=prefix, slack=slack)


async def send_until(pace: RedisPace, limits: tuple[tuple[float, int], ...], start: float, until: float) -> list[float]:
    """Send through a gate on ``pace`` from ``start`` to ``until``, each to a new chat (only the token pace binds)."""
    gate = SendGate(GateLimits(token=limits), pace=pace)
    chats = itertools.count(1)
    stamps: list[float] = []

    async def call() -> None:
        stamps.append(time.time())

    async def sender() -> None:
        while time.time() < until:
            await gate.run("sendMessage", next(chats), call, lambda e: Verdict(Kind.FATAL), None)

    await asyncio.sleep(max(0.0, start - time.time()))
    await asyncio.gather(*(sender() for _ in range(TASKS)))
    return stamps


async def _main(url: str, prefix: str, limits: tuple[tuple[float, int], ...], slack: float) -> None:
    pace = make_pace(url, prefix, limits, slack)
    try:
        await pace.client.ping()
        print("ready", flush=True)
        start, until = map(float, (await asyncio.to_thread(sys.stdin.readline)).split())
        stamps = await send_until(pace, limits, start, until)
    finally:
        await pace.aclose()
    print(json.dumps(stamps), flush=True)


if __name__ == "__main__":
    _url, _prefix, _limits, _slack = sys.argv[1:5]
    asyncio.run(_main(_url, _prefix, tuple((float(s), int(n)) for s, n in json.loads(_limits)), float(_slack)))
