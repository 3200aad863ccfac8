"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.conftest import REDIS_URL, skip_or_fail


@pytest.fixture
async def redis() -> AsyncIterator[tuple[Redis, str]]:
    """A client of the test Redis and a key prefix of this test's own; its keys are removed afterwards. Skips (or
    fails, where Redis is required) when Redis cannot be reached."""
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        await client.aclose()
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {error}")
    prefix = f"sicheng-test:{uuid.uuid4().hex[:10]}"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def redis_prefix(redis: tuple[Redis, str]) -> str:
    """Only the prefix (its keys removed afterwards), for code that opens its own client."""
    return f"{redis[1]}:pace"
