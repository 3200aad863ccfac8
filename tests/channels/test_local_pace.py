"""The in-process token pace the gate uses by default: the token's sliding window and its 429 pause."""

from __future__ import annotations

from bot.channels.gate import GateLimits, Kind, LocalPace, SendGate, Verdict, Window
from tests.channels.conftest import FakeTime


async def test_local_pace_books_like_the_token_window() -> None:
    pace, window = LocalPace(GateLimits().token), Window(GateLimits().token)
    wanted = [0.0] * 31 + [0.5, 2.5, 2.5]
    assert [await pace.reserve(0.0, at) for at in wanted] == [window.reserve(at) for at in wanted]
    assert await pace.reserve(10.0) == 10.0  # not_before defaults to now


async def test_local_pace_pause_only_grows() -> None:
    pace = LocalPace(GateLimits().token)
    assert await pace.paused_until(5.0) == 0.0
    await pace.pause(5.0, 7.0)
    await pace.pause(6.0, 1.0)  # a shorter, later 429 does not cut the pause short
    assert await pace.paused_until(6.0) == 12.0


async def test_gate_sends_thirty_per_second_across_chats_then_waits(fake_time: FakeTime) -> None:
    gate = SendGate(GateLimits(), clock=fake_time, sleep=fake_time.sleep)
    times: list[float] = []

    async def send() -> None:
        times.append(fake_time())

    for chat in range(1, 33):
        await gate.run("sendMessage", chat, send, lambda e: Verdict(Kind.FATAL), None)
    start = times[0]
    assert times[:30] == [start] * 30 and times[30:] == [start + 1.0] * 2


async def test_gate_429_pauses_the_shared_pace_for_retry_after(fake_time: FakeTime) -> None:
    gate = SendGate(GateLimits(), clock=fake_time, sleep=fake_time.sleep)
    calls: list[float] = []

    async def throttled_once() -> None:
        calls.append(fake_time())
        if len(calls) == 1:
            raise RuntimeError("429")

    await gate.run("sendMessage", 1, throttled_once, lambda e: Verdict(Kind.RETRY_AFTER, 7.0), None)
    assert calls == [1000.0, 1007.0]
    assert await gate.pace.paused_until(fake_time()) == 1007.0


async def test_paid_broadcast_is_not_held_to_the_free_thirty_per_second(fake_time: FakeTime) -> None:
    gate = SendGate(GateLimits(), clock=fake_time, sleep=fake_time.sleep)
    times: list[float] = []

    async def send() -> None:
        times.append(fake_time())

    for chat in range(1, 201):
        await gate.run("sendMessage", chat, send, lambda e: Verdict(Kind.FATAL), None, paid=True)
    assert times == [times[0]] * 200, "200 paid sends to 200 chats go in the same second"
    await gate.run("sendMessage", 999, send, lambda e: Verdict(Kind.FATAL), None)
    assert times[-1] == times[0], "free sends keep their own 30/s allowance"


async def test_configured_token_rate_paces_the_whole_token(fake_time: FakeTime) -> None:
    gate = SendGate(GateLimits.from_rates(1.0, 20, bot_per_second=10), clock=fake_time, sleep=fake_time.sleep)
    times: list[float] = []

    async def send() -> None:
        times.append(fake_time())

    for chat in range(1, 13):
        await gate.run("sendMessage", chat, send, lambda e: Verdict(Kind.FATAL), None)
    assert times[:10] == [times[0]] * 10 and times[10:] == [times[0] + 1.0] * 2
