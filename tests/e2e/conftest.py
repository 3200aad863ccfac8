from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from bot.config import FilesSettings, SandboxSettings, Settings, TelegramSettings
from bot.sandbox.app import Sandbox, start_sandbox
from tests.conftest import skip_or_fail

# Without the background-networking flags Chromium keeps calling home, which floods a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

StartSandbox = Callable[[str], AbstractAsyncContextManager[Sandbox]]


@pytest.fixture
def sandbox_settings(tmp_path: Path) -> Settings:
    # Per-chat pacing has its own tests (tests/channels); here it would only make every step wait for a slot.
    return Settings(
        sandbox=SandboxSettings(database=f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}"),
        telegram=TelegramSettings(chat_per_second=50.0),
        files=FilesSettings(root=tmp_path / "media"),  # photos stay out of the working directory
    )


@pytest.fixture
def sandbox_for(sandbox_settings: Settings) -> StartSandbox:
    """Start the whole stack (emulator over HTTP + the bot on a channel) on a free port, from an empty database."""

    def start(channel: str) -> AbstractAsyncContextManager[Sandbox]:
        return start_sandbox(sandbox_settings, port=0, channel=channel, fresh=True)

    return start


@pytest.fixture
async def sandbox(sandbox_for: StartSandbox) -> AsyncIterator[Sandbox]:
    async with sandbox_for("aiogram") as box:
        yield box


@pytest.fixture
def chromium() -> str:
    """The system Chromium the browser tests drive (Debian's ``chromium`` package)."""
    path = shutil.which("chromium")
    if path is None:
        skip_or_fail("no Chromium browser: install Debian's `chromium` package to run the browser tests")
    assert path is not None
    return path
