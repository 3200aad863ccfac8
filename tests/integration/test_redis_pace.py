"""Several processes share one token's pace and 429 pause through Redis; without Redis each paces itself."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from bot.channels.gate import GateLimits, Kind, SendGate, Verdict
from bot.channels.redis_pace import RedisPace, key_base
from tests.conftest import REDIS_URL
from tests.support.pace_worker import TOKEN, make_pace, send_until

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
RATE = 30  # per second, as Telegram's per-token limit
LIMITS = ((0.2, 6),)  # 30/s over a short window, so two seconds show a steady flow rather than two bursts
SLACK = 0.01
SECONDS = 2.0


def most_in_one_second(stamps: list[float]) -> int:
    ordered, most, first = sorted(stamps), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_three_processes_together_stay_within_rate_and_are_not_starved(redis_prefix: str) -> None:
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.pace_worker",
        REDIS_URL,
        redis_prefix,
        json.dumps(LIMITS),
        str(SLACK),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert worker.stdin is not None and worker.stdout is not None
    paces = [make_pace(REDIS_URL, redis_prefix, LIMITS, SLACK) for _ in range(2)]  # two more "processes"
    try:
        assert (await asyncio.wait_for(worker.stdout.readline(), 30)).strip() == b"ready"
        start = time.time() + 0.2
        until = start + SECONDS
        worker.stdin.write(f"{start} {until}\n".encode())
        await worker.stdin.drain()
        here = await asyncio.gather(*(send_until(pace, LIMITS, start, until) for pace in paces))
        out, _ = await asyncio.wait_for(worker.communicate(), 30)
    finally:
        for pace in paces:
            await pace.aclose()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    there: list[float] = json.loads(out.decode().strip().splitlines()[-1])
    every = [*there, *(stamp for stamps in here for stamp in stamps)]
    assert most_in_one_second(every) <= RATE
    assert len(every) >= 0.8 * RATE * SECONDS  # together they use the rate: nobody waits for nothing
    assert there and all(here)  # the separate process and both in-process paces each got sends through
    assert not any(pace.degraded for pace in paces)


async def test_429_in_one_process_pauses_the_others(redis_prefix: str) -> None:
    first, second = (RedisPace(REDIS_URL, TOKEN, prefix=redis_prefix) for _ in range(2))
    other_token = RedisPace(REDIS_URL, "654321:another-bot", prefix=redis_prefix)
    gate_a, gate_b = SendGate(GateLimits(), pace=first), SendGate(GateLimits(), pace=second)
    throttled_at: list[float] = []
    sent_b: list[float] = []

    async def throttled_once() -> None:
        if not throttled_at:
            throttled_at.append(time.monotonic())
            raise RuntimeError("429")

    async def send_b() -> None:
        sent_b.append(time.monotonic())

    def retry_after(error: BaseException) -> Verdict:
        return Verdict(Kind.RETRY_AFTER, retry_after=0.6)

    try:
        retrying = asyncio.create_task(gate_a.run("sendMessage", 1, throttled_once, retry_after, None))
        await asyncio.sleep(0.1)  # the first process got its 429 and sits it out
        now = time.monotonic()
        assert await second.paused_until(now) >= throttled_at[0] + 0.55  # seen by the other process
        assert await other_token.paused_until(now) <= now  # another bot's token is not paused
        await gate_b.run("sendMessage", 2, send_b, retry_after, None)
        await retrying
    finally:
        for pace in (first, second, other_token):
            await pace.aclose()
    assert sent_b[0] >= throttled_at[0] + 0.59
    client = Redis.from_url(REDIS_URL)
    keys = [key.decode() async for key in client.scan_iter(match=f"{redis_prefix}:*")]
    await client.aclose()
    assert keys and all(key.startswith(key_base(TOKEN, redis_prefix)) for key in keys)
    assert not any(TOKEN in key or TOKEN.split(":")[1] in key for key in keys)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def redis_proxy(port: int) -> AsyncIterator[None]:
    """Redis appearing at ``port``: a TCP relay to the test server."""
    upstream = urlsplit(REDIS_URL)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(upstream.hostname, upstream.port or 6379)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    server = await asyncio.start_server(relay, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def test_redis_down_falls_back_to_local_pace_and_returns_to_redis(
    redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    down = f"redis://127.0.0.1:{port}{urlsplit(REDIS_URL).path}"  # nothing listens there yet
    pace = RedisPace(down, TOKEN, ((1.0, 30),), prefix=redis_prefix, retry_seconds=0.3)
    caplog.set_level(logging.INFO, logger="bot.channels.redis_pace")
    try:
        slots = [await pace.reserve(100.0) for _ in range(31)]
        assert slots[:30] == [100.0] * 30 and slots[30] == 101.0  # paced locally, exactly as LocalPace does
        await pace.pause(100.0, 5.0)
        assert await pace.paused_until(100.0) == 105.0
        assert pace.degraded
        assert [r.levelname for r in caplog.records] == ["WARNING"]  # once for the outage, not once per send
        async with redis_proxy(port):
            await asyncio.sleep(0.35)  # past retry_seconds: the next call tries Redis again
            now = time.monotonic()
            assert await pace.reserve(now) == pytest.approx(now, abs=0.05)
            assert not pace.degraded
            await pace.aclose()  # before the relay stops: it waits for its connections
    finally:
        await pace.aclose()
    assert "reachable again" in caplog.records[-1].getMessage()
    client = Redis.from_url(REDIS_URL)
    assert await client.llen(pace.slots_key) == 1  # the booking went to Redis
    await client.aclose()
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_pace_keys_of_the_runner_start_with_the_configured_redis_prefix() -> None:
    """Two bots (or a staging and a production one) sharing one Redis keep apart by SICHENG_REDIS__PREFIX: the send
    pace and the 429 pause too, not only the streams and locks."""
    from types import SimpleNamespace
    from typing import cast

    from bot.app import App
    from bot.config import RedisSettings, Settings
    from bot.runner import make_gate

    settings = Settings(redis=RedisSettings(url=REDIS_URL, prefix="city-a"))
    gate = make_gate(cast(App, SimpleNamespace(settings=settings)), TOKEN)
    pace = gate.pace
    assert isinstance(pace, RedisPace)
    try:
        assert pace.slots_key.startswith("city-a:pace:{") and pace.pause_key.startswith("city-a:pace:{")
        assert TOKEN not in pace.slots_key  # the token itself never becomes a key
    finally:
        await pace.client.aclose()
