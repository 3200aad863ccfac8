"""No log line carries the bot token, whatever logger writes it and however (message, arguments, traceback)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.logs import MASK, protect

TOKEN = "123456:AAH-secret-token"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    protect([TOKEN])
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_token_in_message_arguments_and_traceback_is_masked(captured: io.StringIO) -> None:
    log = logging.getLogger("httpx")
    log.warning("HTTP Request: POST https://api.telegram.org/bot%s/getUpdates", TOKEN)
    log.warning(f"plain https://api.telegram.org/bot{TOKEN}/sendMessage")
    try:
        raise RuntimeError(f"failed calling /bot{TOKEN}/getMe")
    except RuntimeError:
        logging.getLogger("bot.anything").exception("call failed")
    text = captured.getvalue()
    assert TOKEN not in text
    assert text.count(MASK) == 3 and "RuntimeError" in text and "call failed" in text
