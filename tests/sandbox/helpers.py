"""Shortcuts for calling the emulator's Bot API in tests."""

from __future__ import annotations

from typing import Any

import pytest

from bot.sandbox.emulator import DEFAULT_TOKEN, Emulator
from bot.sandbox.errors import ApiError


async def call(emu: Emulator, method: str, **params: Any) -> Any:
    """Call a Bot API method as the default bot."""
    return await emu.call_api(DEFAULT_TOKEN, method, params)


async def fails(emu: Emulator, method: str, **params: Any) -> ApiError:
    """Call a method that must fail and return Telegram's error."""
    with pytest.raises(ApiError) as info:
        await call(emu, method, **params)
    return info.value


async def drain(emu: Emulator) -> list[dict[str, Any]]:
    """Fetch and confirm every pending update of the default bot."""
    updates: list[dict[str, Any]] = await call(emu, "getUpdates")
    if updates:
        await call(emu, "getUpdates", offset=updates[-1]["update_id"] + 1)
    return updates
