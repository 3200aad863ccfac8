"""Shared fixtures: databases on SQLite and PostgreSQL, a core wired like production with a fake channel."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

PG_ADMIN_URL = os.environ.get("SICHENG_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SICHENG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
T = TypeVar("T")
# CI sets this so that a missing service fails the run instead of silently skipping its tests.
REQUIRE_SERVICES = os.environ.get("SICHENG_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip with a clear reason on a laptop; fail in CI where the service must be there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def sqlite_copy(template: Path, target: Path) -> str:
    """A private copy of the migrated template database; returns its URL."""
    target.write_bytes(template.read_bytes())
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per run; each test copies it (faster than migrating every time)."""
    from storage.db import upgrade

    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run blocking or ``asyncio.run``-based set-up outside the test's running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args).result()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated once, dropped at the end."""
    from storage.db import upgrade
    from tests.support.pg import create_database, drop_database

    name = f"sicheng_test_{uuid.uuid4().hex[:10]}"
    try:
        url = in_thread(asyncio.run, create_database(PG_ADMIN_URL, name))
    except OSError as error:  # connection refused and friends
        skip_or_fail(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error}")
        return
    in_thread(upgrade, url)
    try:
        yield url
    finally:
        in_thread(asyncio.run, drop_database(PG_ADMIN_URL, name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> AsyncIterator[str]:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        yield sqlite_copy(sqlite_template, tmp_path / "test.db")
        return
    url = request.getfixturevalue("pg_database")
    from tests.support.pg import truncate_all

    await truncate_all(url)
    yield url


# With several test processes (CI: ``-n 2 --dist loadgroup``), the tests that run the bot as subprocesses and kill
# them, or run several workers, go to one process one after another: they measure recovery against time limits,
# and two of them at once on a small machine would be testing the machine.
SERIAL_MODULES = ("tests/crash/", "tests/integration/test_workers.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SERIAL_MODULES):
            item.add_marker(pytest.mark.xdist_group("serial"))
