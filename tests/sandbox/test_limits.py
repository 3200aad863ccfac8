"""Flood control (off by default) and seeded fault injection."""

from __future__ import annotations

import pytest

from bot.sandbox.clock import FakeClock
from bot.sandbox.emulator import Emulator
from bot.sandbox.errors import ApiError
from bot.sandbox.limits import Faults, RateLimits
from tests.sandbox.helpers import call


def _limited(clock: FakeClock, **options: object) -> Emulator:
    emu = Emulator(clock=clock, rate_limits=RateLimits(), **options)  # type: ignore[arg-type]
    for uid in (1, 2):
        emu.create_user(f"u{uid}", user_id=uid)
        emu.send_text(uid, "/start")
    return emu


async def _send(emu: Emulator, chat_id: int) -> int:
    try:
        await call(emu, "sendMessage", chat_id=chat_id, text="x")
    except ApiError as exc:
        return exc.code
    return 200


async def test_limits_off_by_default_never_429(emu: Emulator) -> None:
    emu.create_user("u", user_id=5)
    emu.send_text(5, "/start")
    assert {await _send(emu, 5) for _ in range(100)} == {200}


async def test_per_chat_burst_then_429_with_retry_after(clock: FakeClock) -> None:
    emu = _limited(clock)
    codes = [await _send(emu, 1) for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    error = emu.calls(method="sendMessage")[-1]
    assert (error.retry_after, error.scope, error.description) == (
        1,
        "chat",
        "Too Many Requests: retry after 1",
    )
    assert await _send(emu, 2) == 200  # another chat is not affected


async def test_429_window_rejects_until_retry_after_passes(clock: FakeClock) -> None:
    emu = _limited(clock)
    for _ in range(4):
        await _send(emu, 1)
    clock.advance(0.5)
    assert await _send(emu, 1) == 429  # still inside the window
    clock.advance(0.6)
    assert await _send(emu, 1) == 200
    assert len(emu.flood_violations()) == 1  # the request made at +0.5 s


async def test_per_bot_limit_caps_30_per_second(clock: FakeClock) -> None:
    emu = Emulator(clock=clock, rate_limits=RateLimits(per_chat_per_second=1000, chat_burst=1000))
    for uid in range(1, 41):
        emu.create_user(f"u{uid}", user_id=uid)
        emu.send_text(uid, "/start")
    codes = [await _send(emu, uid) for uid in range(1, 41)]
    assert codes.count(200) == 30
    assert emu.calls(method="sendMessage")[-1].scope == "bot"


async def test_group_limit_20_per_minute(clock: FakeClock) -> None:
    emu = Emulator(clock=clock, rate_limits=RateLimits())
    emu.create_user("u", user_id=1)
    group = emu.create_group("g", [1])
    sent = 0
    for _ in range(60):  # one attempt per second for a minute
        sent += await _send(emu, group.id) == 200
        clock.advance(1.0)
    assert 20 <= sent <= 21


async def test_time_scale_shortens_windows(clock: FakeClock) -> None:
    emu = _limited(clock, time_scale=0.01)
    for _ in range(3):
        await _send(emu, 1)
    with pytest.raises(ApiError) as info:
        await call(emu, "sendMessage", chat_id=1, text="x")
    assert info.value.retry_after == 1  # emulated seconds
    clock.advance(0.011)  # 1 emulated second = 10 ms real
    assert await _send(emu, 1) == 200


async def test_fault_shares_roughly_match_and_repeat_with_seed(clock: FakeClock) -> None:
    async def run() -> list[int]:
        emu = Emulator(clock=clock, faults=Faults(share_429=0.1, share_5xx=0.2, seed=42))
        emu.create_user("u", user_id=1)
        emu.send_text(1, "/start")
        codes = []
        for _ in range(1000):
            codes.append(await _send(emu, 1))
            clock.advance(2.0)  # step past each injected 429 window
        return codes

    codes = await run()
    assert 60 <= codes.count(429) <= 140
    assert 150 <= codes.count(502) <= 250
    assert codes == await run()


async def test_faults_spare_get_updates(clock: FakeClock) -> None:
    emu = Emulator(clock=clock, faults=Faults(share_5xx=1.0))
    assert await call(emu, "getUpdates") == []


def test_paid_broadcast_counts_against_the_paid_allowance_not_the_free_one() -> None:
    from bot.sandbox.limits import RateLimiter, RateLimits

    class Still:
        def monotonic(self) -> float:
            return 100.0

    limiter = RateLimiter(Still(), RateLimits())  # type: ignore[arg-type]
    assert all(limiter.check(1, chat, False, paid=True) is None for chat in range(1, 501))
    assert all(limiter.check(1, chat, False) is None for chat in range(1001, 1031)), "the free 30 are untouched"
    refused = limiter.check(1, 2000, False)
    assert refused is not None and refused.scope[0] == "bot"
