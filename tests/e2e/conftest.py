from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from bot.config import FilesSettings, SandboxSettings, Settings, TelegramSettings
from bot.sandbox.app import Sandbox, start_sandbox

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
