"""The onboarding scenario through aiogram and python-telegram-bot in-process: identical replies and keyboards."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.channels.gate import GateLimits, SendGate
from tests.channels.conftest import FakeTime
from tests.support.channels import Updates, last_button, running_channel, transcript
from tests.support.fake_api import FakeBotApi

CHANNELS = ["aiogram", "ptb"]
NO_PACE = GateLimits(private=((0.001, 1000),), group=((0.001, 1000),), token=((0.001, 1000),))


async def _onboard(kind: str, app: App, fake_time: FakeTime) -> FakeBotApi:
    api = FakeBotApi(clock=fake_time)
    gate = SendGate(NO_PACE, clock=fake_time, sleep=fake_time.sleep)
    updates = Updates()
    async with running_channel(kind, app, api, gate) as channel:
        await channel.feed(updates.text("/start cdemo"))
        await channel.feed(updates.press(last_button(api, "中文"), 1))
        await channel.feed(updates.press(last_button(api, "同意"), 1))
        await channel.feed(updates.press(last_button(api, "2号楼"), 1))
        await channel.feed(updates.text("/help"))
        await channel.feed(updates.text("/nosuchcommand"))
        await channel.feed(updates.press("1|onb.building|999|1", 1))  # forged: a community that is not there
        await channel.feed(updates.press("garbage", 1))
    return api


async def test_onboarding_through_both_channels_gives_identical_transcripts(app: App, fake_time: FakeTime) -> None:
    results = {}
    for kind in CHANNELS:
        results[kind] = transcript(await _onboard(kind, app, fake_time))
        await app.services.residents.delete(1001)  # the next channel onboards the same person from scratch
    assert results["aiogram"] == results["ptb"]
    texts = [row[2] or "" for row in results["aiogram"]]
    assert any("欢迎加入 <b>示范社区</b> · 2号楼" in t for t in texts)
    assert any("没有 /nosuchcommand 这个命令" in t for t in texts)
    alerts = [row for row in results["aiogram"] if row[0] == "answercallbackquery" and row[4]]
    assert len(alerts) == 2  # the forged community and the garbage data both got a clear alert


@pytest.mark.parametrize("kind", CHANNELS)
async def test_set_my_commands_is_published_per_language(kind: str, app: App, fake_time: FakeTime) -> None:
    api = FakeBotApi(clock=fake_time)
    async with running_channel(kind, app, api, SendGate(NO_PACE, clock=fake_time, sleep=fake_time.sleep)):
        pass
    calls = api.sent("setMyCommands")
    languages = {c.params.get("language_code") for c in calls}
    assert languages == {None, "zh", "en"}
    english = next(c for c in calls if c.params.get("language_code") == "en")
    assert {"command": "help", "description": "Help"} in english.params["commands"]
