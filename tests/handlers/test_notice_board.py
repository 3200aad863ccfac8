"""/notices and the notice settings: residents read their notices and choose what they get (in both languages);
organisers list, open, cancel and stop theirs; what a resident chose decides what is delivered; forged buttons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.replies import OutMessage
from bot.conversation.state import MemoryStateStore
from bot.domain.campaigns import Audience, AudienceKind, ButtonKind, CampaignStatus, Draft, NoticeButton
from tests.conftest import sqlite_copy
from tests.support.campaigns import ORGANISER, organiser, populate
from tests.support.outbox import FakeTelegram, dispatch_all
from tests.support.points import FakeClock
from tests.support.transcript import FakeChat

RESIDENT, NEIGHBOUR, ENGLISH, UPSTAIRS = 1001, 1002, 1003, 1004
OTHER_ORGANISER = 900_002
LONG = "<b>关于冬季供暖的通知</b>\n" + "各位居民：今年冬季供暖将于十一月十五日开始，请大家提前检查家中暖气阀门，" * 12


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 7, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai


@pytest.fixture
async def app(tmp_path: Path, sqlite_template: Path, clock: FakeClock) -> AsyncIterator[App]:
    url = sqlite_copy(sqlite_template, tmp_path / "board.db")
    settings = Settings(database=DatabaseSettings(url=url))
    app = await build_app(settings, clock=clock, bot_username="sicheng_bot", state_store=MemoryStateStore())
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    await app.services.communities.add("other", "邻近社区", [("1", "1号楼")])
    await organiser(app, clock())
    await populate(app, [RESIDENT, NEIGHBOUR], clock())
    await populate(app, [UPSTAIRS], clock(), building="2")
    await populate(app, [ENGLISH], clock(), locale="en")
    yield app
    await app.aclose()


def person(app: App, user_id: int) -> FakeChat:
    return FakeChat(app.core, user_id=user_id)


async def demo(app: App, code: str = "demo") -> int:
    found = await app.services.communities.by_code(code)
    assert found is not None
    return found.id


async def send(app: App, body: str, *, by: int = ORGANISER, code: str = "demo", **fields: object) -> int:
    campaign = await app.services.campaigns.create(by, Draft(await demo(app, code), body, **fields))  # type: ignore[arg-type]
    return campaign.id


def delivered(telegram: FakeTelegram, text: str) -> set[int]:
    return {o.chat_id for o in telegram.sent if isinstance(o, OutMessage) and text in o.text}


async def test_resident_reads_notices_and_changes_notice_settings_in_chinese(app: App, clock: FakeClock) -> None:
    await send(app, "<b>周六上午</b>小区大扫除，欢迎参加！", track="sanitary")
    clock.advance(minutes=30)
    await send(app, LONG, buttons=(NoticeButton(ButtonKind.QUIZ, "garden"),))
    clock.advance(minutes=30)
    await send(app, "明天上午停水，请提前储水。", urgent=True)
    chat = person(app, RESIDENT)

    (board,) = await chat.send("/notices")
    assert "📢 <b>通知公告</b> · 示范社区" in board
    assert "12月7日 10:00 · 🧹 卫生城市" in board and "<b>周六上午</b>小区大扫除" in board
    assert "12月7日 11:00 · 📌 综合 · 🚨 <b>紧急</b>" in board
    assert "<b>关于冬季供暖的通知</b>" in board and "…" in board and LONG not in board
    assert board.index("停水") < board.index("供暖") < board.index("大扫除"), "newest first"
    assert "订阅创建板块" in board
    assert chat.labels() == ["📖 第2条全文", "📢 通知设置"], "only the shortened notice has a full-text button"

    (full,) = await chat.press("第2条全文")
    assert full.startswith("📢 <b>社区通知</b> · 📌 综合 · 示范社区") and LONG in full
    assert chat.labels() == ["📚 参加园林城市知识答题"], "the notice's own buttons come with it"
    assert chat.last().buttons[0][0][1] == app.router.codec.encode("nt", "quiz", "garden")

    (page,) = await chat.press("通知设置", message_id=min(chat.messages))
    settings_page = chat.last().message_id
    assert "🔔 通知：接收中" in page and "🌙 免打扰：每天 22:00–08:00（北京时间）" in page
    assert "紧急通知照常立即送达" in page and "📌 已订阅的创建板块：暂无" in page
    assert "只发给该板块订阅者的专题通知" in page
    assert "✅ 🌙 免打扰 22:00–08:00" in chat.labels() and "🔔 不设免打扰" in chat.labels()

    (page,) = await chat.press("不设免打扰")
    assert page.startswith("🔔 已关闭免打扰：通知会随时送达。") and "🌙 免打扰：未设置" in page
    assert chat.last().message_id == settings_page, "confirmed in place"
    assert "✅ 🔔 不设免打扰" in chat.labels()
    assert (await app.services.campaigns.preferences(RESIDENT)).quiet is None

    (page,) = await chat.press("园林城市")
    assert page.startswith("✅ 已订阅「园林城市」板块。") and "📌 已订阅的创建板块：园林城市" in page
    assert "✅ 园林城市" in chat.labels() and "➕ 文明城市" in chat.labels()
    assert (await app.services.campaigns.preferences(RESIDENT)).tracks == {"garden"}

    (page,) = await chat.press("不再接收任何通知")
    assert page.startswith("🔕 已关闭通知。今后社区的任何通知都不会再发给您。")
    assert "<b>紧急通知（如停水停电、燃气安全）也不会</b>" in page
    assert chat.labels() == ["🔔 重新接收通知", "⬅️ 返回设置"]
    assert (await app.services.campaigns.preferences(RESIDENT)).notices_off

    (overview,) = await chat.press("返回设置")
    assert "⚙️ <b>设置</b>" in overview and "通知：🔕 已关闭" in overview
    assert chat.last().message_id == settings_page
    (board,) = await chat.send("/notices")
    assert "🔕 您已关闭通知" in board and "停水" in board, "the board still shows them on request"


async def test_resident_reads_notices_and_changes_notice_settings_in_english(app: App) -> None:
    await send(app, "<i>Saturday</i>: clean-up day in the courtyard.", track="garden")
    chat = person(app, ENGLISH)

    (board,) = await chat.send("/notices")
    assert "📢 <b>Notices</b> · 示范社区" in board and "7 Dec 10:00 · 🌳 Garden city" in board
    assert "<i>Saturday</i>: clean-up day" in board and "follow the tracks" in board
    (page,) = await chat.press("Notice settings")
    assert "🌙 Quiet hours: 22:00–08:00 every day (China time)" in page and "urgent notices come at once" in page

    (page,) = await chat.press("No quiet hours")
    assert page.startswith("🔔 Quiet hours are off: notices arrive at any time.")
    (page,) = await chat.press("Quiet 23:00–09:00")
    assert page.startswith("🌙 Quiet hours are now 23:00–09:00 every day (China time).")
    assert "✅ 🌙 Quiet 23:00–09:00" in chat.labels()
    (page,) = await chat.press("Food Safety")
    assert page.startswith("✅ You now follow the Food Safety track.") and "Tracks you follow: Food Safety" in page
    (page,) = await chat.press("Food Safety")
    assert page.startswith("☑️ You no longer follow the Food Safety track.")
    (page,) = await chat.press("Stop all notices")
    assert page.startswith("🔕 Notices are off.") and "<b>not even urgent ones" in page
    (page,) = await chat.press("Get notices again")
    assert page.startswith("🔔 Notices are on again.")
    prefs = await app.services.campaigns.preferences(ENGLISH)
    assert (prefs.notices_off, prefs.quiet and prefs.quiet.label(), prefs.tracks) == (False, "23:00–09:00", set())


async def test_main_menu_and_settings_open_notices_and_empty_board_says_where_they_appear(app: App) -> None:
    chat = person(app, RESIDENT)
    await chat.send("/menu")
    (board,) = await chat.press("📢 通知公告")
    assert "最近 30 天还没有发给您的通知" in board and "会直接发到这个聊天里" in board
    assert "在“⚙️ 通知设置”里订阅创建板块" in board
    assert "组织者" not in board and chat.labels() == ["📢 通知设置"]

    (overview,) = await chat.send("/settings")
    assert "通知：🔔 接收中 · 免打扰 22:00–08:00" in overview
    settings_message = chat.last().message_id
    (page,) = await chat.press("📢 通知设置")
    assert "📢 <b>通知设置</b>" in page and chat.messages[settings_message].text == page


async def test_what_residents_chose_decides_which_new_notices_reach_them(app: App, clock: FakeClock) -> None:
    leaver, follower, night_owl = person(app, RESIDENT), person(app, NEIGHBOUR), person(app, UPSTAIRS)
    for chat in (leaver, follower, night_owl):
        await chat.send("/settings")
        await chat.press("通知设置")
    await leaver.press("不再接收任何通知")
    await follower.press("园林城市")
    await night_owl.press("不设免打扰")

    clock.now = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai: the default quiet hours
    await send(app, "燃气管道检修，请勿使用明火", urgent=True)
    await send(app, "社区绿地补种月季", audience=Audience(AudienceKind.TRACK, track="garden"), track="garden")
    await send(app, "明早八点半楼道消杀")
    telegram = FakeTelegram()
    await dispatch_all(app, telegram, clock)
    assert RESIDENT not in {o.chat_id for o in telegram.sent}, "opted out: nothing, not even the urgent notice"
    assert delivered(telegram, "燃气管道检修") == {NEIGHBOUR, UPSTAIRS, ENGLISH, ORGANISER}
    assert delivered(telegram, "补种月季") == set(), "the subscriber's track notice waits for the morning"
    assert delivered(telegram, "楼道消杀") == {UPSTAIRS}, "quiet hours off: delivered at night"

    clock.now = datetime(2026, 12, 8, 0, 0, 1, tzinfo=UTC)  # 08:00 in Shanghai
    await dispatch_all(app, telegram, clock)
    assert delivered(telegram, "补种月季") == {NEIGHBOUR}, "only the subscriber gets a track notice"
    assert delivered(telegram, "楼道消杀") == {NEIGHBOUR, UPSTAIRS, ENGLISH, ORGANISER}
    assert RESIDENT not in {o.chat_id for o in telegram.sent}

    (board,) = await follower.send("/notices")
    assert "补种月季" in board and "🌳 园林城市" in board
    (board,) = await night_owl.send("/notices")
    assert "补种月季" not in board and "楼道消杀" in board, "a track notice is not listed for non-subscribers"


async def test_organiser_lists_opens_cancels_and_stops_notices_with_counts(app: App, clock: FakeClock) -> None:
    await send(app, "<b>垃圾分类</b>宣传周活动安排")
    telegram = FakeTelegram(blocked={NEIGHBOUR})
    await dispatch_all(app, telegram, clock)
    clock.advance(seconds=10)
    await app.services.campaigns.progress(clock())
    building2 = (await app.services.communities.get(await demo(app))).building("2")
    assert building2 is not None
    scheduled = await send(
        app,
        "周三下午电梯年检",
        audience=Audience(AudienceKind.BUILDINGS, (building2.id,)),
        send_at=clock() + timedelta(days=1),
    )
    sending = await send(app, "今晚八点消防演练", urgent=True)
    chat = person(app, ORGANISER)

    (board,) = await chat.send("/notices")
    assert "📋 您是社区组织者" in board and "📋 我发布的通知" in chat.labels()
    (listing,) = await chat.press("我发布的通知")
    assert "📋 <b>我发布的通知</b>" in listing
    assert f"<b>#{scheduled}</b> ⏰ 待发送 · 将于 12月8日 10:00 发送" in listing
    assert "🏠 2号楼的居民 · 收件人 1" in listing
    assert "📤 发送中 · 已送达 0/5 · 待发 5" in listing and "🚨 紧急" in listing
    assert "✅ 已发送 · 送达 4 · 跳过 1 · 失败 0" in listing and "👥 全体居民 · 收件人 5" in listing
    assert "<b>垃圾分类</b>宣传周活动安排" in listing
    assert chat.labels() == [f"⏰ #{scheduled}", f"📤 #{sending}", "✅ #1", "✏️ 写新通知", "⬅️ 返回通知公告"]

    (detail,) = await chat.press("✅ #1")
    assert "📋 <b>通知 #1</b> · 示范社区" in detail and "状态：✅ 已发送" in detail
    assert "✅ 已送达：4" in detail and "⏭ 已跳过：1" in detail
    assert "未送达的原因：\n• 对方已屏蔽机器人：1" in detail
    assert chat.labels() == ["⬅️ 返回列表"], "nothing to cancel once sent"

    await chat.press("返回列表")
    (detail,) = await chat.press(f"⏰ #{scheduled}")
    assert "计划发送：12月8日 10:00" in detail and "已送达" not in detail
    (confirm,) = await chat.press("取消发送")
    assert f"确定取消通知 #{scheduled} 吗？" in confirm and "原定 12月8日 10:00 发给 🏠 2号楼的居民（1 人）" in confirm
    (detail,) = await chat.press("确认取消")
    assert detail.startswith("🚫 已取消：这条通知不会发送。") and "状态：🚫 已取消" in detail
    assert (await app.services.campaigns.overview(ORGANISER, scheduled)).campaign.status is CampaignStatus.CANCELLED

    await chat.press("返回列表")
    (detail,) = await chat.press(f"📤 #{sending}")
    assert "状态：📤 发送中" in detail and "⏳ 待发送：5" in detail and "🔄 刷新" in chat.labels()
    await chat.press("停止发送")
    (detail,) = await chat.press("确认停止")
    assert detail.startswith("🛑 已停止发送") and "🚫 已停止：5" in detail
    await dispatch_all(app, telegram, clock)
    assert delivered(telegram, "消防演练") == set()

    await chat.press("返回列表")
    (hint,) = await chat.press("写新通知")
    assert hint.startswith("✏️ 发送 /notice 编写新通知")


async def test_forged_and_stale_buttons_are_refused_and_change_nothing(app: App, clock: FakeClock) -> None:
    encode = app.router.codec.encode
    await organiser(app, clock(), OTHER_ORGANISER, community="other")
    elsewhere = await send(app, "邻近社区通知", by=OTHER_ORGANISER, code="other")
    building2 = (await app.services.communities.get(await demo(app))).building("2")
    assert building2 is not None
    upstairs_only = await send(app, "2号楼停电", audience=Audience(AudienceKind.BUILDINGS, (building2.id,)))
    scheduled = await send(app, "下周体检", send_at=clock() + timedelta(days=2))
    chat = person(app, RESIDENT)
    await chat.send("/notices")

    for campaign_id in (elsewhere, upstairs_only, 999):
        replies = await chat.press_data(encode("nb", "read", campaign_id))
        assert replies == ["这条通知无法查看：它不是发给您的，或已超过 30 天。请发送 /notices 查看最近的通知。"]
    for data in (encode("nb", "mine"), encode("nb", "open", scheduled), encode("nb", "cancelok", scheduled)):
        (answer,) = await chat.press_data(data)
        assert "只有社区工作人员可以使用" in answer
    (answer,) = await chat.press_data(encode("nb", "compose"))
    assert "只有社区工作人员可以使用" in answer
    (answer,) = await person(app, OTHER_ORGANISER).press_data(encode("nb", "cancelok", scheduled))
    assert "只有社区工作人员可以使用" in answer, "an organiser of another community"
    assert (await app.services.campaigns.overview(ORGANISER, scheduled)).campaign.status is CampaignStatus.SCHEDULED

    before = await app.services.campaigns.preferences(RESIDENT)
    (answer,) = await chat.press_data(encode("set", "track", "sports"))
    assert answer == "没有这个创建板块（按钮可能已过期），订阅没有改变。请发送 /settings 重新打开通知设置。"
    for index in (99, -1):
        (answer,) = await chat.press_data(encode("set", "quiet", index))
        assert answer == "这个按钮已失效，请重新打开菜单（/menu）。"
    assert await app.services.campaigns.preferences(RESIDENT) == before
    assert all(a.alert for a in chat.answers if a.text)

    stranger = FakeChat(app.core, user_id=5555)
    (reply,) = await stranger.send("/notices")
    assert "这个功能需要先加入社区" in reply
    (answer,) = await stranger.press_data(encode("set", "nt", 0))
    assert "这个功能需要先加入社区" in answer
    (answer,) = await stranger.press_data(encode("nb", "read", upstairs_only))
    assert "这个功能需要先加入社区" in answer


async def test_organiser_stopping_a_finished_notice_is_told_it_cannot(app: App, clock: FakeClock) -> None:
    sent = await send(app, "已经发完的通知")
    await dispatch_all(app, FakeTelegram(), clock)
    clock.advance(seconds=10)
    await app.services.campaigns.progress(clock())
    chat = person(app, ORGANISER)
    replies = await chat.press_data(app.router.codec.encode("nb", "cancel", sent))
    assert replies[0] == "这条通知已经发送完毕或已取消，不能再取消。" and "状态：✅ 已发送" in replies[1]
    replies = await chat.press_data(app.router.codec.encode("nb", "cancelok", sent))
    assert replies[0] == "这条通知已经发送完毕或已取消，不能再取消。" and "状态：✅ 已发送" in replies[1]
    assert (await app.services.campaigns.overview(ORGANISER, sent)).campaign.status is CampaignStatus.DONE


async def test_long_notice_is_cut_between_sentences_with_its_tags_closed(app: App) -> None:
    body = "<b>第一句话比较长，介绍活动的背景和目的。" + "第二句继续说明报名方式和注意事项。" * 10 + "</b>"
    await send(app, body)
    (board,) = await person(app, RESIDENT).send("/notices")
    excerpt = board.split("\n\n")[1].split("\n", 1)[1]
    assert excerpt.startswith("<b>第一句话") and excerpt.endswith("。</b>…"), excerpt
