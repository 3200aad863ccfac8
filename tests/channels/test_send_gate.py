"""The shared send gate, through both channels: 429 pauses every send, 403 marks unreachable, pacing holds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.app import App
from bot.channels.gate import GateLimits, Kind, SendGate, Verdict, Window
from tests.channels.conftest import FakeTime
from tests.support.channels import Updates, last_button, running_channel
from tests.support.fake_api import FakeBotApi

CHANNELS = ["aiogram", "ptb"]


def _gate(fake_time: FakeTime, app: App | None = None, limits: GateLimits | None = None) -> SendGate:
    on_forbidden = app.services.residents.mark_unreachable if app else None
    return SendGate(limits or GateLimits(), on_forbidden=on_forbidden, clock=fake_time, sleep=fake_time.sleep)


@pytest.mark.parametrize("kind", CHANNELS)
async def test_429_pauses_all_sends_for_retry_after_and_reply_still_arrives(
    kind: str, app: App, fake_time: FakeTime
) -> None:
    api = FakeBotApi(clock=fake_time)
    async with running_channel(kind, app, api, _gate(fake_time)) as channel:
        api.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
        first, second = Updates(1001), Updates(2002, "Anna", "en")
        await asyncio.gather(channel.feed(first.text("/help")), channel.feed(second.text("/help")))
    sends = api.sent("sendMessage")
    failed = next(c for c in sends if c.status == 429)
    delivered = {int(c.params["chat_id"]) for c in sends if c.status == 200}
    assert delivered == {1001, 2002}  # both replies arrived, the throttled one after a retry
    after = sends[sends.index(failed) + 1 :]
    assert after and all(c.at >= failed.at + 7 for c in after)  # nothing inside the window, for any chat


@pytest.mark.parametrize("kind", CHANNELS)
async def test_403_marks_resident_unreachable_without_retry(kind: str, app: App, fake_time: FakeTime) -> None:
    api = FakeBotApi(clock=fake_time)
    updates = Updates()
    async with running_channel(kind, app, api, _gate(fake_time, app)) as channel:
        await channel.feed(updates.text("/start cdemo_b1"))
        await channel.feed(updates.press(last_button(api, "中文"), 1))
        await channel.feed(updates.press(last_button(api, "同意"), 1))
        api.blocked.add(1001)
        before = len(api.sent("sendMessage"))
        await channel.feed(updates.text("/help"))
    assert len(api.sent("sendMessage")) == before + 1  # one attempt, no retry
    resident = await app.services.residents.profile(1001)
    assert resident is not None and resident.unreachable_at is not None


@pytest.mark.parametrize("kind", CHANNELS)
async def test_message_not_modified_counts_as_success(kind: str, app: App, fake_time: FakeTime) -> None:
    api = FakeBotApi(clock=fake_time)
    gate = _gate(fake_time)
    updates = Updates()
    async with running_channel(kind, app, api, gate) as channel:
        await channel.feed(updates.text("/deleteme"))
        api.fail_next(
            "editMessageText",
            400,
            "Bad Request: message is not modified: specified new message content "
            "and reply markup are exactly the same as a current content and reply markup of the message",
        )
        await channel.feed(updates.press(last_button(api, "取消"), 1))
        await channel.feed(updates.text("/help"))
    assert gate.stats["not_modified"] == 1
    assert len(api.sent("editMessageText")) == 1  # not retried
    assert "帮助" in api.sent("sendMessage")[-1].params["text"]  # the loop went on


async def test_private_chat_pacing_allows_a_burst_of_three_then_one_per_second(fake_time: FakeTime) -> None:
    gate = _gate(fake_time)
    times: list[float] = []

    async def send() -> None:
        times.append(fake_time())

    for _ in range(7):
        await gate.run("sendMessage", 1001, send, lambda e: Verdict(Kind.FATAL), None)
    assert [round(t - times[0], 3) for t in times] == [0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 6.0]
    assert gate.stats["retry_after"] == 0


def test_group_window_allows_twenty_per_minute() -> None:
    window = Window(GateLimits().group)
    slots = [window.reserve(0.0) for _ in range(21)]
    assert max(slots[:20]) < 60.0
    assert all(b - a >= 3.0 for a, b in zip(slots, slots[3:], strict=False))  # never more than 3 in 3 s
    assert slots[20] == 60.0  # the 21st waits until the first leaves the minute


async def test_transient_errors_retry_then_give_up(fake_time: FakeTime) -> None:
    gate = _gate(fake_time)
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("reset")

    with pytest.raises(ConnectionError):
        await gate.run("sendMessage", 5, flaky, lambda e: Verdict(Kind.TRANSIENT), None)
    assert attempts == gate.max_attempts


@pytest.mark.parametrize("retry_after", [5, 5.0, timedelta(seconds=5)])
def test_ptb_retry_after_int_or_timedelta_is_normalised(retry_after: int | float | timedelta) -> None:
    from bot.channels.ptb_channel import _seconds

    assert _seconds(retry_after) == 5.0
