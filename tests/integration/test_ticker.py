"""The periodic tick: time-driven work of every feature, queued once in the outbox, surviving a failing step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.state import MemoryStateStore
from bot.domain.points import Reason
from tests.conftest import sqlite_copy
from tests.support.notices import Notices


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def app(tmp_path: Path, sqlite_template: Path, clock: Clock) -> AsyncIterator[App]:
    url = sqlite_copy(sqlite_template, tmp_path / "tick.db")
    built = await build_app(Settings(database=DatabaseSettings(url=url)), clock=clock, state_store=MemoryStateStore())
    community = await built.services.communities.add("demo", "示范社区", [("1", "1号楼")])
    for telegram_id, locale in ((501, "zh_Hans"), (502, "en")):
        await built.services.residents.give_consent(telegram_id, f"r{telegram_id}", locale)
        await built.services.residents.join(telegram_id, community.id, None)
    yield built
    await built.aclose()


async def _award(app: App, telegram_id: int, key: str) -> None:
    resident = await app.services.residents.profile(telegram_id)
    assert resident is not None
    await app.services.points.award(resident.id, Reason.QUIZ, key)


async def test_tick_reminds_once_before_points_expire_in_each_language(app: App, clock: Clock) -> None:
    await _award(app, 501, "q1")
    await _award(app, 502, "q2")
    clock.now += timedelta(days=365 - 20)  # inside the 30-day reminder window of a 12-month expiry
    notices = Notices(app)
    await app.tick(clock.now)
    texts = {q.chat_id: q.text for q in await notices.fresh()}
    assert "您有文明积分" in texts[501] and "分将于" in texts[501] and "expire on" in texts[502]
    await app.tick(clock.now + timedelta(minutes=5))
    assert await notices.fresh() == []


async def test_tick_expires_points_after_twelve_months(app: App, clock: Clock) -> None:
    await _award(app, 501, "q1")
    clock.now += timedelta(days=400)
    await app.tick(clock.now)
    assert await app.services.points.check() == []
    overview = await app.services.points.overview(501)
    assert overview.balance == 0


async def test_tick_failing_step_does_not_stop_the_others(
    app: App, clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(app.services.redemptions, "expire_redemptions", broken)
    await _award(app, 501, "q1")
    clock.now += timedelta(days=350)
    await app.tick(clock.now)
    assert any(q.chat_id == 501 for q in await Notices(app).all())
    assert "expire redemptions" in caplog.text


async def test_old_updates_and_messages_are_forgotten_every_ten_minutes_not_every_tick(app: App, clock: Clock) -> None:
    purges: list[datetime] = []

    async def recorded(now: datetime) -> None:
        purges.append(now)

    app.purge_messaging = recorded  # type: ignore[method-assign]
    for minute in range(0, 25, 5):  # ticks at :00, :05, :10, :15, :20
        await app.tick(clock.now + timedelta(minutes=minute))
    assert purges == [clock.now, clock.now + timedelta(minutes=10), clock.now + timedelta(minutes=20)]
