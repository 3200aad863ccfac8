"""Fixtures for the emulator tests: an in-process emulator on a fake clock, and one served over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox.clock import FakeClock
from bot.sandbox.emulator import Emulator
from bot.sandbox.models import SimUser
from bot.sandbox.server import run_emulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emu(clock: FakeClock) -> AsyncIterator[Emulator]:
    emulator = Emulator(clock=clock)
    yield emulator
    await emulator.close()


@pytest.fixture
def user(emu: Emulator) -> SimUser:
    """A resident who has already written /start to the bot (so the bot may message them)."""
    resident = emu.create_user("小明", user_id=7001)
    emu.send_text(resident.id, "/start")
    return resident


@pytest.fixture
async def served() -> AsyncIterator[tuple[Emulator, str]]:
    async with run_emulator() as pair:
        yield pair
