"""The onboarding scenario over HTTP against the emulator, through both real channels: identical transcripts."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.messaging import OutboxStatus
from bot.domain.notices import Notice
from bot.sandbox.app import Sandbox
from bot.sandbox.demo import RESIDENTS_GROUP
from tests.e2e.conftest import StartSandbox
from tests.support.outbox import queue_notices, settled
from tests.support.sandbox_user import SimResident

NEW_RESIDENT = 1000001  # 小李 in the demo personas, not registered


async def _onboard(box: Sandbox) -> list[tuple[Any, ...]]:
    me = SimResident(box.emulator, NEW_RESIDENT)
    await me.send("/start cdemo")
    await me.press("中文")
    await me.press("同意")
    await me.press("3号楼")
    await me.press("设置")
    await me.send("/nosuchcommand")
    await me.send("/deleteme")
    await me.press("取消")
    return me.transcript()


async def test_onboarding_over_http_is_identical_on_both_channels(sandbox_for: StartSandbox) -> None:
    transcripts = {}
    for channel in ("aiogram", "ptb"):
        async with sandbox_for(channel) as box:
            transcripts[channel] = await _onboard(box)
            assert box.emulator.flood_violations() == []
    assert transcripts["aiogram"] == transcripts["ptb"]
    texts = [row[1] for row in transcripts["aiogram"] if row[0] == "bot"]
    assert any("欢迎加入 示范社区 · 3号楼" in t for t in texts)
    assert any("社区：示范社区" in t and "楼栋：3号楼" in t for t in texts)


async def test_group_newcomer_gets_private_deep_link_button(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    newcomer = emulator.create_user("新邻居")
    version = emulator.events.version
    emulator.add_member(RESIDENTS_GROUP, newcomer.id)
    messages = await emulator.wait_bot_messages(RESIDENTS_GROUP, 1, after=version)
    button = messages[0]["inline_keyboard"][0][0]
    assert "欢迎 新邻居" in messages[0]["text"]
    assert button["url"] == "https://t.me/sicheng_bot?start=cdemo"


async def test_blocked_user_is_marked_unreachable_and_not_retried(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator
    aunt = 1000002  # 王阿姨, registered by the demo data
    emulator.block(aunt)
    before = len(emulator.calls(method="sendMessage"))
    await queue_notices(sandbox.app, [Notice(aunt, "errors/generic")])  # a notice to someone who blocked the bot
    sandbox.channel.inbox.dispatcher.wake()
    rows = await settled(sandbox.app)
    assert len(emulator.calls(method="sendMessage")) == before + 1
    assert rows[-1].status is OutboxStatus.SKIPPED
    async with sandbox.app.uow() as uow:  # read only: profile() would count as her writing again
        resident = await uow.residents.get_by_telegram_id(aunt)
    assert resident is not None and resident.unreachable_at is not None
    # Every later notice to her is kept as skipped without a call to Telegram, until she writes again.
    await queue_notices(sandbox.app, [Notice(aunt, "errors/generic"), Notice(aunt, "errors/generic")])
    sandbox.channel.inbox.dispatcher.wake()
    rows = await settled(sandbox.app)
    assert [r.status for r in rows[-2:]] == [OutboxStatus.SKIPPED] * 2
    assert len(emulator.calls(method="sendMessage")) == before + 1


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_malformed_update_is_set_aside_and_the_next_one_answered(sandbox_for: StartSandbox, channel: str) -> None:
    """An update neither library can read (here a message whose chat is not an object) must not stall the offset
    or flood the log: it is kept aside once and the next update is handled."""
    async with sandbox_for(channel) as box:
        emulator = box.emulator
        broken = emulator.emit(emulator.default_bot.id, "message", {"message_id": 1, "date": 1, "chat": "??"})
        assert broken is not None
        me = SimResident(emulator, NEW_RESIDENT)
        await me.send("/start")
        await me.wait_for("请选择语言", within=15)
        async with box.app.uow() as uow:
            counts = await uow.inbox.counts()
            aside = await uow.inbox.set_aside_items()
        assert counts.get("set_aside") == 1 and aside[0].update_id == broken["update_id"]
        assert aside[0].payload == broken


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_no_log_line_carries_the_token(sandbox_for: StartSandbox, channel: str) -> None:
    """With every logger at DEBUG (httpx's too, should anything still use it), the token never reaches a line."""
    import io
    import logging

    from bot.logs import protect
    from bot.sandbox.core import DEFAULT_TOKEN

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    before = (root.level, httpx_log.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    httpx_log.setLevel(logging.DEBUG)
    protect([DEFAULT_TOKEN])
    try:
        async with sandbox_for(channel) as box:
            me = SimResident(box.emulator, NEW_RESIDENT)
            await me.send("/start")
            await me.wait_for("请选择语言", within=15)
    finally:
        root.removeHandler(handler)
        root.setLevel(before[0])
        httpx_log.setLevel(before[1])
    text = stream.getvalue()
    assert text, "something was logged"
    assert DEFAULT_TOKEN not in text and DEFAULT_TOKEN.split(":")[1] not in text
