from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.state import MemoryStateStore
from tests.conftest import sqlite_copy


class FakeTime:
    """A clock that only moves when the code under test sleeps: 429 windows take no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def app(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[App]:
    url = sqlite_copy(sqlite_template, tmp_path / "channels.db")
    settings = Settings(database=DatabaseSettings(url=url))
    app = await build_app(settings, state_store=MemoryStateStore())
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    yield app
    await app.aclose()
