"""No log line carries the bot token, through either real channel against the emulator, in both log formats.

Every logger at DEBUG (PTB logs its API URL, ``…/bot<token>``), captured from the
handler ``sicheng`` itself installs (``bot.logs.configure``), not from the raw records: the onboarding ``/start``
exchange, a message Telegram refuses (the outbox logs it), and an HTTP error whose text and traceback carry a Bot
API URL. The token must appear nowhere, and the mask must appear (the test would notice if nothing was logged)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import aiohttp
import pytest

from bot import logs
from bot.domain.messaging import OutboxStatus
from bot.domain.notices import Notice
from bot.sandbox.app import Sandbox
from bot.sandbox.core import DEFAULT_TOKEN
from tests.e2e.conftest import StartSandbox
from tests.support.outbox import queue_notices, settled
from tests.support.sandbox_user import SimResident

NEW_RESIDENT = 1000001  # 小李 in the demo personas, not registered
NOBODY = 424242  # no such chat in the emulator: Telegram answers 400
SECRET = DEFAULT_TOKEN.split(":")[1]


@pytest.fixture
def everything_logged() -> Iterator[None]:
    """Every logger (existing ones included) at DEBUG; their levels as they were afterwards."""
    manager = logging.getLogger().manager
    loggers = [logging.getLogger(name) for name in list(manager.loggerDict)]
    before = {logger.name: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.NOTSET)  # inherit the root's DEBUG
    try:
        yield
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


def configured(fmt: str) -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logs.configure(logging.DEBUG, [DEFAULT_TOKEN], fmt=fmt, stream=stream)
    assert handler is not None
    return stream, handler


async def failing_calls(box: Sandbox) -> None:
    # A message Telegram refuses: the outbox fails the row and logs Telegram's answer.
    await queue_notices(box.app, [Notice(NOBODY, "errors/generic")])
    box.channel.inbox.dispatcher.wake()
    rows = await settled(box.app)
    assert rows[-1].status is OutboxStatus.FAILED
    # An HTTP error of the channels' HTTP client (aiohttp for both), whose text names the URL: logged with its
    # traceback.
    url = f"{box.url}/bot{DEFAULT_TOKEN}/noSuchMethod"
    try:
        async with aiohttp.ClientSession() as session, session.post(url) as response:
            response.raise_for_status()
    except aiohttp.ClientResponseError as error:
        logging.getLogger("bot.channels").exception("Bot API call failed: %s", error)
    else:
        raise AssertionError("the call was meant to fail")


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
@pytest.mark.usefixtures("everything_logged")
async def test_no_log_line_carries_the_token(sandbox_for: StartSandbox, channel: str, fmt: str) -> None:
    root = logging.getLogger()
    level = root.level
    stream, handler = configured(fmt)
    try:
        async with sandbox_for(channel) as box:
            me = SimResident(box.emulator, NEW_RESIDENT)
            await me.send("/start")
            await me.wait_for("请选择语言", within=15)
            await failing_calls(box)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = stream.getvalue()
    lines = text.splitlines()
    assert len(lines) > 100, "everything was logged"
    assert DEFAULT_TOKEN not in text and SECRET not in text
    assert "/bot***/noSuchMethod" in text  # the failing call's URL was masked, not dropped
    assert "Traceback" in text and "chat not found" in text.lower()
    if fmt == "json":
        entries = [json.loads(line) for line in lines]  # one JSON object a line, tracebacks inside
        failed = [e for e in entries if e["message"].startswith("Bot API call failed")]
        assert failed and "exception" in failed[0] and "/bot***/" in failed[0]["exception"]
        assert any(e.get("update_id") is not None and e.get("user_id") == NEW_RESIDENT for e in entries)
