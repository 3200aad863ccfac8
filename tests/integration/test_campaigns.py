"""Campaign notices on both backends: who gets a notice, when (quiet hours, schedules), exactly once, and what the
organiser's progress message and report say."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.replies import OutEdit, OutMessage
from bot.domain.campaigns import (
    Audience,
    AudienceKind,
    ButtonKind,
    CampaignError,
    CampaignStatus,
    Draft,
    NoticeButton,
    QuietHours,
)
from bot.domain.errors import Forbidden
from bot.domain.roles import Role
from storage.db import make_sessionmaker
from storage.models import AuditLogRow
from tests.support.campaigns import ORGANISER, organiser, populate
from tests.support.outbox import FakeTelegram, dispatch_all
from tests.support.points import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 7, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai


@pytest.fixture
async def app(db_url: str, clock: FakeClock) -> AsyncIterator[App]:
    app = await build_app(Settings(database=DatabaseSettings(url=db_url)), clock=clock, bot_username="sicheng_bot")
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    await app.services.communities.add("other", "邻近社区", [("1", "1号楼")])
    await organiser(app, clock())
    yield app
    await app.aclose()


async def community_id(app: App, code: str = "demo") -> int:
    found = await app.services.communities.by_code(code)
    assert found is not None
    return found.id


async def test_notice_to_the_community_reaches_every_resident_once_in_their_language(
    app: App, clock: FakeClock
) -> None:
    await populate(app, range(1000, 1020), clock())
    await populate(app, range(2000, 2005), clock(), locale="en")
    await populate(app, range(3000, 3003), clock(), community="other")  # not this community
    demo = await community_id(app)
    draft = Draft(demo, "<b>周六上午</b>小区大扫除，欢迎参加！", track="sanitary")
    campaign = await app.services.campaigns.create(ORGANISER, draft)
    assert campaign.status is CampaignStatus.SENDING and campaign.recipients == 26  # 25 residents + organiser

    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    texts = [o for o in telegram.sent if isinstance(o, OutMessage) and "大扫除" in o.text]
    assert Counter(o.chat_id for o in texts) == Counter([*range(1000, 1020), *range(2000, 2005), ORGANISER])
    english = next(o for o in texts if o.chat_id == 2000)
    chinese = next(o for o in texts if o.chat_id == 1000)
    assert "Community notice" in english.text and "Sanitary" in english.text
    assert "社区通知" in chinese.text and "<b>周六上午</b>" in chinese.text

    clock.advance(seconds=10)
    assert await app.services.campaigns.progress(clock()) == 1
    await dispatch_all(app, telegram, clock)
    report = next(o for o in telegram.sent if isinstance(o, OutMessage) and "发送报告" in o.text)
    assert report.chat_id == ORGANISER and "送达 26" in report.text
    progress = [o for o in telegram.sent if isinstance(o, OutEdit) and o.chat_id == ORGANISER]
    assert progress and "已发送完毕" in progress[-1].text
    (overview,) = await app.services.campaigns.for_organiser(ORGANISER)
    assert overview.campaign.status is CampaignStatus.DONE and overview.counts.sent == 26


async def test_blocked_residents_are_skipped_and_counted_in_the_report(app: App, clock: FakeClock) -> None:
    await populate(app, range(1000, 1010), clock())
    campaign = await app.services.campaigns.create(ORGANISER, Draft(await community_id(app), "停水通知"))
    telegram = FakeTelegram(blocked={1003, 1007})
    await dispatch_all(app, telegram, clock)
    clock.advance(seconds=10)
    await app.services.campaigns.progress(clock())
    (overview,) = await app.services.campaigns.for_organiser(ORGANISER)
    assert overview.campaign.id == campaign.id
    assert (overview.counts.sent, overview.counts.skipped, overview.counts.pending) == (9, 2, 0)
    assert overview.campaign.failures == {"unreachable: blocked": 2}
    # The next notice does not try them again.
    await app.services.campaigns.create(ORGANISER, Draft(await community_id(app), "恢复供水"))
    telegram.sent.clear()
    await dispatch_all(app, telegram, clock)
    assert {o.chat_id for o in telegram.sent if isinstance(o, OutMessage) and "恢复供水" in o.text}.isdisjoint(
        {1003, 1007}
    )


async def test_quiet_hours_hold_a_notice_until_morning_except_urgent_ones(app: App, clock: FakeClock) -> None:
    clock.now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    await populate(app, [1000, 1001, 1002], clock())
    await app.services.campaigns.set_quiet(1001, None)  # no quiet hours
    await app.services.campaigns.set_quiet(1002, QuietHours(12 * 60, 14 * 60))  # a nap only
    demo = await community_id(app)
    assert await app.services.campaigns.held(ORGANISER, Draft(demo, "明早检修电梯")) == 2  # 1000 and the organiser
    assert await app.services.campaigns.held(ORGANISER, Draft(demo, "燃气", urgent=True)) == 0
    await app.services.campaigns.create(ORGANISER, Draft(demo, "明早检修电梯"))
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    got = {o.chat_id for o in telegram.sent if isinstance(o, OutMessage) and "检修电梯" in o.text}
    assert got == {1001, 1002}, "the default 22:00–08:00 holds 1000 (and the organiser)"

    await app.services.campaigns.create(ORGANISER, Draft(demo, "燃气泄漏，请勿开火", urgent=True))
    await dispatch_all(app, telegram, clock)
    urgent = {o.chat_id for o in telegram.sent if isinstance(o, OutMessage) and "燃气泄漏" in o.text}
    assert urgent == {1000, 1001, 1002, ORGANISER}

    clock.now = datetime(2026, 12, 8, 0, 0, 1, tzinfo=UTC)  # 08:00:01 in Shanghai
    await dispatch_all(app, telegram, clock)
    late = [o.chat_id for o in telegram.sent if isinstance(o, OutMessage) and "检修电梯" in o.text]
    assert Counter(late) == Counter([1000, 1001, 1002, ORGANISER])


async def test_a_quiet_hours_notice_does_not_hold_up_other_messages(app: App, clock: FakeClock) -> None:
    clock.now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    await populate(app, [1000], clock())
    demo = await community_id(app)
    await app.services.campaigns.create(ORGANISER, Draft(demo, "明早检修电梯"))
    await app.services.campaigns.create(ORGANISER, Draft(demo, "紧急停电", urgent=True))
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    assert any(o.chat_id == 1000 and "紧急停电" in o.text for o in telegram.sent if isinstance(o, OutMessage))


async def test_opted_out_resident_never_gets_a_notice_not_even_an_urgent_one(app: App, clock: FakeClock) -> None:
    await populate(app, [1000, 1001], clock())
    await app.services.campaigns.set_notices(1001, on=False)
    demo = await community_id(app)
    await app.services.campaigns.create(ORGANISER, Draft(demo, "普通通知"))
    await app.services.campaigns.create(ORGANISER, Draft(demo, "紧急通知内容", urgent=True))
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    assert 1001 not in {o.chat_id for o in telegram.sent}
    assert {o.chat_id for o in telegram.sent if isinstance(o, OutMessage) and "普通通知" in o.text} >= {1000}


async def test_audiences_reach_exactly_buildings_subscribers_roles_and_groups(app: App, clock: FakeClock) -> None:
    await populate(app, [1000, 1001], clock(), building="1")
    await populate(app, [1002, 1003], clock(), building="2")
    await app.services.campaigns.toggle_track(1001, "garden")
    await app.services.campaigns.toggle_track(1002, "garden")
    await app.services.access.grant(1003, Role.VOLUNTEER, "demo", None)
    demo = await app.services.communities.by_code("demo")
    assert demo is not None
    await app.services.communities.link_group(-500, "demo", "居民群", "residents", ORGANISER)
    await app.services.communities.link_group(-600, "demo", "工作群", "staff", ORGANISER)
    building2 = demo.building("2")
    assert building2 is not None
    cases = {
        "楼栋通知": (Audience(AudienceKind.BUILDINGS, (building2.id,)), {1002, 1003}),
        "园林通知": (Audience(AudienceKind.TRACK, track="garden"), {1001, 1002}),
        "志愿通知": (Audience(AudienceKind.ROLE, role=Role.VOLUNTEER), {1003}),
        "网格通知": (Audience(AudienceKind.ROLE, role=Role.GRID_WORKER), {ORGANISER}),
        "群聊通知": (Audience(AudienceKind.GROUPS), {-500}),
    }
    for body, (audience, _) in cases.items():
        await app.services.campaigns.create(ORGANISER, Draft(demo.id, body, audience=audience))
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    for body, (_, expected) in cases.items():
        got = [o.chat_id for o in telegram.sent if isinstance(o, OutMessage) and body in o.text]
        assert sorted(got) == sorted(expected), body


async def test_group_copy_opens_the_bot_instead_of_acting_for_whoever_taps(app: App, clock: FakeClock) -> None:
    await app.services.communities.link_group(-500, "demo", "居民群", "residents", ORGANISER)
    draft = Draft(
        await community_id(app),
        "来答题",
        audience=Audience(AudienceKind.GROUPS),
        buttons=(
            NoticeButton(ButtonKind.QUIZ, "sanitary"),
            NoticeButton(ButtonKind.URL, "https://example.org/a", "详情"),
        ),
    )
    await app.services.campaigns.create(ORGANISER, draft)
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    (group,) = [o for o in telegram.sent if isinstance(o, OutMessage) and o.chat_id == -500]
    buttons = [b for row in group.inline_keyboard for b in row]
    assert [b.url for b in buttons] == ["https://example.org/a", "https://t.me/sicheng_bot?start=cdemo"]
    assert all(b.callback_data is None for b in buttons)


async def test_refusals_send_nothing_and_the_outsider_is_audited(app: App, clock: FakeClock, db_url: str) -> None:
    await populate(app, [1000], clock())
    demo = await community_id(app)
    with pytest.raises(Forbidden):
        await app.services.campaigns.create(1000, Draft(demo, "我不是组织者"))
    with pytest.raises(CampaignError) as past:
        await app.services.campaigns.create(ORGANISER, Draft(demo, "过去", send_at=clock() - timedelta(minutes=1)))
    assert past.value.code == "time_in_past"
    audience = Audience(AudienceKind.TRACK, track="food_safety")  # nobody subscribed
    with pytest.raises(CampaignError) as empty:
        await app.services.campaigns.create(ORGANISER, Draft(demo, "食安", audience=audience))
    assert empty.value.code == "empty_audience"
    other = await community_id(app, "other")
    with pytest.raises(Forbidden):  # an organiser of demo, not of other
        await app.services.campaigns.create(ORGANISER, Draft(other, "越权"))
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    assert telegram.sent == []
    sessions = make_sessionmaker(app.engine)
    async with sessions() as session:
        refused = (await session.scalars(select(AuditLogRow).where(AuditLogRow.allowed.is_(False)))).all()
    assert {(r.actor_telegram_id, r.action) for r in refused} == {(1000, "notice.create"), (ORGANISER, "notice.create")}


async def test_scheduled_notice_waits_for_its_time_and_a_cancelled_one_never_goes(app: App, clock: FakeClock) -> None:
    await populate(app, [1000], clock())
    demo = await community_id(app)
    later = await app.services.campaigns.create(
        ORGANISER, Draft(demo, "定时通知", send_at=clock() + timedelta(hours=2))
    )
    dropped = await app.services.campaigns.create(
        ORGANISER, Draft(demo, "取消的通知", send_at=clock() + timedelta(hours=2))
    )
    assert later.status is CampaignStatus.SCHEDULED
    assert (await app.services.campaigns.cancel(ORGANISER, dropped.id)).status is CampaignStatus.CANCELLED
    with pytest.raises(CampaignError):
        await app.services.campaigns.cancel(ORGANISER, dropped.id)
    assert await app.services.campaigns.start_due(clock()) == 0
    clock.advance(hours=2)
    assert await app.services.campaigns.start_due(clock()) == 1
    assert await app.services.campaigns.start_due(clock()) == 0, "started once"
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    texts = [o.text for o in telegram.sent if isinstance(o, OutMessage)]
    assert sum("定时通知" in t for t in texts) == 2 and not any("取消的通知" in t for t in texts)


async def test_weekly_notice_schedules_next_weeks_copy_when_it_starts(app: App, clock: FakeClock) -> None:
    await populate(app, [1000], clock())
    demo = await community_id(app)
    first_at = clock() + timedelta(minutes=5)
    await app.services.campaigns.create(
        ORGANISER, Draft(demo, "", template="sorting_weekly", track="sanitary", repeat_weekly=True, send_at=first_at)
    )
    clock.advance(minutes=5)
    await app.services.campaigns.start_due(clock())
    listed = await app.services.campaigns.for_organiser(ORGANISER)
    statuses = sorted((o.campaign.send_at, o.campaign.status.value) for o in listed)
    assert statuses == [(first_at, "sending"), (first_at + timedelta(days=7), "scheduled")]
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    sorting = [o for o in telegram.sent if isinstance(o, OutMessage) and o.chat_id == 1000]
    assert len(sorting) == 1 and "GB/T 19095-2019" in sorting[0].text


async def test_organiser_stops_a_notice_while_it_is_sending(app: App, clock: FakeClock) -> None:
    await populate(app, range(1000, 1050), clock())
    campaign = await app.services.campaigns.create(ORGANISER, Draft(await community_id(app), "这条会被停止"))
    stopped = await app.services.campaigns.cancel(ORGANISER, campaign.id)
    assert stopped.status is CampaignStatus.SENDING
    clock.advance(seconds=10)
    await app.services.campaigns.progress(clock())
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    assert not any(isinstance(o, OutMessage) and "这条会被停止" in o.text for o in telegram.sent)
    (overview,) = await app.services.campaigns.for_organiser(ORGANISER)
    assert overview.campaign.status is CampaignStatus.DONE and overview.counts.cancelled == 51


async def test_mydata_lists_notice_settings_and_deleteme_forgets_them(app: App, clock: FakeClock) -> None:
    await populate(app, [1000], clock())
    await app.services.campaigns.set_quiet(1000, QuietHours(21 * 60, 7 * 60))
    await app.services.campaigns.toggle_track(1000, "garden")
    data = await app.services.residents.my_data(1000)
    assert data["notices"] == {"on": True, "quiet": "21:00–07:00", "tracks": ["garden"]}
    resident = await app.services.residents.profile(1000)
    assert resident is not None
    await app.services.residents.delete(1000)
    async with app.uow() as uow:
        prefs = await uow.campaigns.preferences(resident.id)
    assert prefs.tracks == frozenset() and prefs.quiet is not None and prefs.quiet.label() == "22:00–08:00"


async def test_paid_notice_is_sent_with_allow_paid_broadcast_and_others_are_not(app: App, clock: FakeClock) -> None:
    await populate(app, [1000, 1001], clock())
    demo = await community_id(app)
    await app.services.campaigns.create(ORGANISER, Draft(demo, "付费快速通知", paid=True))
    await app.services.campaigns.create(ORGANISER, Draft(demo, "普通通知"))
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    sent = [o for o in telegram.sent if isinstance(o, OutMessage) and "通知" in o.text and o.chat_id in (1000, 1001)]
    assert {(o.chat_id, "付费" in o.text, o.paid) for o in sent} == {
        (1000, True, True),
        (1001, True, True),
        (1000, False, False),
        (1001, False, False),
    }
