from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.state import MemoryStateStore
from tests.conftest import sqlite_copy
from tests.support.transcript import FakeChat


@pytest.fixture
async def app(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[App]:
    """The real core on a migrated SQLite file, with a demo community."""
    url = sqlite_copy(sqlite_template, tmp_path / "handlers.db")
    settings = Settings(database=DatabaseSettings(url=url))
    app = await build_app(settings, bot_username="sicheng_bot", state_store=MemoryStateStore())
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼"), ("3", "3号楼")])
    yield app
    await app.aclose()


@pytest.fixture
def chat(app: App) -> FakeChat:
    return FakeChat(app.core)
