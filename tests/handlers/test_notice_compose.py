"""/notice dialog transcripts: an organiser composes, previews, schedules, cancels and sends a notice; bad input and
forged buttons get a clear answer and nothing reaches residents."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.incoming import ChatType
from bot.conversation.replies import OutCallbackAnswer, OutMessage, OutPhoto
from bot.conversation.state import MemoryStateStore
from bot.domain.campaigns import CampaignStatus
from bot.domain.roles import Role
from storage.db import make_sessionmaker
from storage.models import AuditLogRow
from tests.conftest import sqlite_copy
from tests.support.campaigns import ORGANISER, organiser, populate
from tests.support.notices import Notices
from tests.support.outbox import FakeTelegram, dispatch_all
from tests.support.points import FakeClock
from tests.support.transcript import FakeChat

MONDAY_10AM = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
BUILDING_1 = range(1000, 1004)  # Chinese-reading residents of 1号楼
BUILDING_2 = range(2000, 2003)  # English-reading residents of 2号楼
RESIDENTS = [*BUILDING_1, *BUILDING_2]
STRANGER = 3001  # a resident without any role


@dataclass
class World:
    app: App
    clock: FakeClock
    outbox: Notices
    url: str

    def organiser(self, language: str = "zh-hans", user_id: int = ORGANISER) -> FakeChat:
        return FakeChat(self.app.core, user_id=user_id, first_name="刘书记", language_code=language)

    async def to_residents(self) -> list[str]:
        """Texts queued for anyone but the organiser."""
        return [q.text for q in await self.outbox.all() if q.chat_id != ORGANISER]

    async def campaigns(self) -> list[tuple[int, CampaignStatus, datetime]]:
        overviews = await self.app.services.campaigns.for_organiser(ORGANISER, limit=20)
        return sorted((o.campaign.id, o.campaign.status, o.campaign.send_at) for o in overviews)


async def make(url: str, clock: FakeClock, *, memory: bool = True) -> App:
    store = MemoryStateStore() if memory else None
    return await build_app(
        Settings(database=DatabaseSettings(url=url)), clock=clock, bot_username="sicheng_bot", state_store=store
    )


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[World]:
    url = sqlite_copy(sqlite_template, tmp_path / "notices.db")
    clock = FakeClock(MONDAY_10AM)
    app = await make(url, clock)
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼"), ("3", "3号楼")])
    await app.services.communities.add("other", "邻近社区", [("9", "9号楼")])
    await organiser(app, clock())
    await populate(app, BUILDING_1, clock())
    await populate(app, BUILDING_2, clock(), building="2", locale="en")
    await populate(app, [STRANGER], clock(), building="3")
    yield World(app, clock, Notices(app), url)
    await app.aclose()


async def english_organiser(world: World) -> FakeChat:
    await world.app.services.residents.set_locale(ORGANISER, "en")
    return world.organiser("en")


async def draft(chat: FakeChat, text: str = "<b>周六上午</b>小区大扫除，欢迎参加！") -> list[str]:
    await chat.send("/notice")
    return await chat.send(text)


# ---- whole dialogs ------------------------------------------------------------------------------------------------


async def test_compose_preview_schedule_and_cancel_in_chinese_sends_nothing(world: World) -> None:
    chat = world.organiser()
    (ask,) = await chat.send("/notice")
    assert "发布通知 · 示范社区" in ask and "&amp;lt;" in ask and "3800" in ask
    assert chat.labels() == ["📰 创建动态周报", "♻️ 垃圾分类每周提醒"]

    (card,) = await chat.send("<b>周六上午</b>小区大扫除，欢迎参加！")
    assert "已保存通知文字" in card and "周六上午小区大扫除，欢迎参加！（15 字）" in card
    assert "全体居民" in card and "收件人：9 人" in card  # 8 residents and the organiser

    await chat.press("🏷 板块")
    (card,) = await chat.press("卫生城市")
    assert "板块：🧹 卫生城市" in card
    await chat.press("🔘 按钮")
    (menu,) = await chat.press("积分兑换")
    assert "1. 🎁 积分兑换" in menu
    await chat.press("卫生城市答题")
    (card,) = await chat.press("返回草稿")
    assert "按钮：🎁 积分兑换、📚 卫生城市知识答题" in card

    replies = await chat.press("👁 预览")
    assert "预览（中文版）" in replies[0]
    assert replies[1] == "📢 <b>社区通知</b> · 🧹 卫生城市 · 示范社区\n\n<b>周六上午</b>小区大扫除，欢迎参加！"
    preview = next(m for m in chat.messages.values() if m.text == replies[1])
    assert preview.buttons == [
        [("🎁 看看积分能换什么", "1|nt.rewards")],
        [("📚 参加卫生城市知识答题", "1|nt.quiz|sanitary")],
    ]
    assert "通知草稿" in replies[2] and "📤 立即发送" in chat.labels()
    (english,) = [r for r in await chat.press("英文版预览") if "Community notice" in r]
    assert english.startswith("📢 <b>Community notice</b> · 🧹 Sanitary city · 示范社区")

    (ask_time,) = await chat.press("⏰ 定时发送")
    assert "北京时间（Asia/Shanghai）" in ask_time
    (confirm,) = await chat.send("12-08 09:00")
    assert "确认在 2026-12-08 09:00（周二，北京时间）发送？" in confirm and "目前 9 人" in confirm
    (scheduled,) = await chat.press("确认定时发送")
    assert "通知 #1 已定时" in scheduled and "2026-12-08 09:00（周二，北京时间）" in scheduled
    assert await world.campaigns() == [(1, CampaignStatus.SCHEDULED, datetime(2026, 12, 8, 1, 0, tzinfo=UTC))]
    assert await world.outbox.all() == []

    (cancelled,) = await chat.press("取消这条通知")
    assert cancelled == "🚫 通知 #1 已取消，不会发送。"
    assert [status for _, status, _ in await world.campaigns()] == [CampaignStatus.CANCELLED]
    world.clock.advance(days=2)
    assert await world.app.services.campaigns.start_due(world.clock()) == 0
    assert await world.outbox.all() == []
    (again,) = await chat.press_data("1|nc.cancel|1")  # a second tap (from an older copy of the message)
    assert "已经发送完毕或已取消" in again and chat.answers[-1].alert


async def test_compose_send_progress_and_report_in_english_reach_the_chosen_building(world: World) -> None:
    chat = await english_organiser(world)
    (ask,) = await chat.send("/notice")
    assert "New notice · 示范社区" in ask
    await chat.send("Water is off on <i>Tuesday</i> 9:00–12:00 &amp; lifts are checked.")
    await chat.press("👥 Audience")
    (picker,) = await chat.press("Buildings")
    assert "Chosen: none yet" in picker
    await chat.press("2号楼")
    (picker,) = await chat.press("3号楼")
    assert "Chosen: 2号楼, 3号楼" in picker and chat.labels()[:3] == ["☐ 1号楼", "✅ 2号楼", "✅ 3号楼"]
    await chat.press("3号楼")
    (card,) = await chat.press("Done")
    assert "Audience: residents of 2号楼" in card and "Recipients: 3 people" in card
    (card,) = await chat.press("Urgent")
    assert "Urgent: yes" in card and "✅ Urgent" in chat.labels()
    (card,) = await chat.press("Paid broadcast")
    assert "Paid broadcast: on, about 0.3 Stars (0.1 Star per message, up to 1000 messages a second)" in card

    (confirm,) = await chat.press("📤 Send now")
    assert "Send it now to 3 people?" in confirm and "costs about 0.3 Telegram Stars" in confirm
    (sending,) = await chat.press("Send it")
    assert sending.startswith("📤 <b>Notice #1 is being sent</b> to 3 people.")
    again = await chat.press_data("1|nc.go")  # a double tap sends nothing more
    assert "no longer open" in again[0]
    (progress,) = await world.outbox.to(ORGANISER)
    assert (
        progress.template == "notices/progress"
        and "Sending notice #1" in progress.text
        and "Remaining: 3" in progress.text
    )
    assert "🛑 Stop sending" in progress.labels()
    received = {q.chat_id: q for q in await world.outbox.all() if q.chat_id != ORGANISER}
    assert set(received) == set(BUILDING_2)
    assert received[2000].text.startswith("🚨 <b>Urgent notice</b> · 📌 General · 示范社区")

    telegram = FakeTelegram()
    await dispatch_all(world.app, telegram, world.clock)
    assert {o.chat_id for o in telegram.sent if isinstance(o, OutMessage) and "Tuesday" in o.text} == set(BUILDING_2)
    world.clock.advance(seconds=10)
    assert await world.app.services.campaigns.progress(world.clock()) == 1
    report = await world.outbox.find(ORGANISER, "delivery report")
    assert "Recipients: 3" in report.text and "delivered 3" in report.text
    assert "has been sent" in (await world.outbox.card("cn1", ORGANISER)).text


async def test_compose_preview_schedule_and_cancel_in_english(world: World) -> None:
    chat = await english_organiser(world)
    await draft(chat, "Lift maintenance on <b>Wednesday</b> morning")
    replies = await chat.press("👁 Preview")
    assert "Preview (English)" in replies[0]
    assert (
        replies[1]
        == "📢 <b>Community notice</b> · 📌 General · 示范社区\n\nLift maintenance on <b>Wednesday</b> morning"
    )
    (ask_time,) = await chat.press("⏰ Schedule")
    assert "China time (Asia/Shanghai)" in ask_time
    (confirm,) = await chat.send("2026-12-09 08:30")
    assert "Send it on 2026-12-09 08:30 (Wednesday, China time)?" in confirm and "9 people now" in confirm
    (scheduled,) = await chat.press("Schedule it")
    assert "Notice #1 is scheduled</b> for 2026-12-09 08:30 (Wednesday, China time)" in scheduled
    (cancelled,) = await chat.press("Cancel this notice")
    assert cancelled == "🚫 Notice #1 is cancelled and will not be sent."
    assert [status for _, status, _ in await world.campaigns()] == [CampaignStatus.CANCELLED]
    assert await world.outbox.all() == []


async def test_compose_send_progress_and_report_in_chinese(world: World) -> None:
    chat = world.organiser()
    await draft(chat, "今晚 8 点<b>停水</b>检修")
    await chat.press("👥 发送范围")
    (card,) = await chat.press("志愿者")
    assert "发送范围：志愿者" in card and "收件人：0 人" in card
    await world.app.services.access.grant(1001, Role.VOLUNTEER, "demo", None)
    await chat.press("👥 发送范围")
    (card,) = await chat.press("志愿者")
    assert "收件人：1 人" in card
    (confirm,) = await chat.press("📤 立即发送")
    assert "确认现在发送给 1 人？" in confirm
    (sending,) = await chat.press("确认发送")
    assert "通知 #1 开始发送</b>，共 1 人。发送进度见下一条消息" in sending
    (volunteer,) = await world.outbox.to(1001)
    assert volunteer.text == "📢 <b>社区通知</b> · 📌 综合 · 示范社区\n\n今晚 8 点<b>停水</b>检修"
    assert "正在发送" in (await world.outbox.card("cn1", ORGANISER)).text
    await dispatch_all(world.app, FakeTelegram(), world.clock)
    world.clock.advance(seconds=10)
    assert await world.app.services.campaigns.progress(world.clock()) == 1
    report = await world.outbox.find(ORGANISER, "发送报告")
    assert "收件人：1" in report.text and "送达 1" in report.text
    assert "已发送完毕" in (await world.outbox.card("cn1", ORGANISER)).text


async def test_library_template_repeats_weekly_and_previews_its_own_text(world: World) -> None:
    chat = world.organiser()
    await chat.send("/notice")
    (card,) = await chat.press("垃圾分类每周提醒")
    assert "常用模板「垃圾分类每周提醒」" in card and "每周重复：是" in card and "板块：🧹 卫生城市" in card
    replies = await chat.press("👁 预览")
    assert "垃圾分类，每周提醒" in replies[1] and "GB/T 19095-2019" in replies[1]
    await chat.press("📤 立即发送")
    (sending,) = await chat.press("确认发送")
    assert "之后每周同一时间自动重复发送" in sending
    statuses = await world.campaigns()
    assert [(s, at - MONDAY_10AM) for _, s, at in statuses] == [
        (CampaignStatus.SENDING, timedelta(0)),
        (CampaignStatus.SCHEDULED, timedelta(days=7)),
    ]


async def test_photo_notice_preview_is_a_photo_with_the_caption(world: World) -> None:
    chat = world.organiser()
    await chat.send("/notice")
    (first,) = await chat.send_photo("photo-1")
    assert "照片已收到" in first and "850" in first
    (card,) = await chat.send("今晚<b>停电</b>检修")
    assert "配图：有" in card
    await chat.press("👁 预览")
    (photo,) = [o for o in chat.sent if isinstance(o, OutPhoto)]
    assert (
        photo.photo == "photo-1" and photo.caption == "📢 <b>社区通知</b> · 📌 综合 · 示范社区\n\n今晚<b>停电</b>检修"
    )
    await chat.press("📷 配图")
    (card,) = await chat.press("删除配图")
    assert "已删除配图" in card and "配图：无" in card


async def test_url_buttons_need_text_and_address_and_at_most_four(world: World) -> None:
    chat = world.organiser()
    await draft(chat)
    await chat.press("🔘 按钮")
    (ask,) = await chat.press("网页链接")
    assert "按钮文字 | 网址" in ask
    (wrong,) = await chat.send("报名表 https://example.com/form")
    assert "请按“按钮文字 | 网址”的格式" in wrong
    (unsafe,) = await chat.send("报名表 | javascript:alert(1)")
    assert "链接无效" in unsafe
    (card,) = await chat.send("报名表 ｜ https://example.com/form")
    assert "🔗 报名表（https://example.com/form）" in card
    await chat.press("🔘 按钮")
    await chat.press("📚 文明城市答题")
    (duplicate,) = await chat.press("📚 文明城市答题")
    assert "这个按钮已经加过了" in duplicate
    await chat.press("积分兑换")
    await chat.press("随手拍")
    (full,) = await chat.press("卫生城市答题")
    assert "最多 4 个按钮" in full and chat.answers[-1].alert
    await chat.press("返回草稿")
    replies = await chat.press("👁 预览")
    preview = next(m for m in chat.messages.values() if m.text == replies[1])
    assert preview.buttons[0] == [("报名表", "https://example.com/form")] and len(preview.buttons) == 4


async def test_draft_survives_a_restart(world: World) -> None:
    await world.app.aclose()
    app = await make(world.url, world.clock, memory=False)  # dialog state in the database
    chat = FakeChat(app.core, user_id=ORGANISER)
    await chat.send("/notice")
    await chat.send("明天上午电梯检修")
    await app.aclose()

    world.app = await make(world.url, world.clock, memory=False)
    chat.core = world.app.core
    (card,) = await chat.press("紧急")
    assert "明天上午电梯检修" in card and "紧急通知：是" in card
    (resume,) = await chat.send("/notice")
    assert "还没发出的通知草稿" in resume
    (card,) = await chat.press("继续编辑草稿")
    assert "明天上午电梯检修" in card


async def test_text_typed_at_the_draft_card_does_not_replace_the_notice(world: World) -> None:
    chat = world.organiser()
    await draft(chat, "周六上午大扫除")
    await chat.press("👥 发送范围")
    await chat.press("订阅板块的居民")
    await chat.press("园林城市")
    await chat.press("⏰ 定时发送")  # refused: nobody subscribed
    (hint,) = await chat.send("18:30")  # typed anyway
    assert "要修改通知文字，请先点“改文字”" in hint
    (card,) = await chat.press("显示草稿")
    assert "周六上午大扫除（7 字）" in card
    await chat.press("改文字")
    (card,) = await chat.send("周日上午大扫除")
    assert "已保存通知文字" in card and "周日上午大扫除（7 字）" in card


# ---- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<b>周六大扫除", "第 1 个字符处的 &lt;b&gt; 没有结束：请在对应文字后面加上 &lt;/b&gt;"),
        ("请到<div>3号楼</div>集合", "第 3 个字符处的 &lt;div&gt; 不是 Telegram 支持的标签"),
        ("气温<5度，注意防冻", "要显示“&lt;”号本身，请写成 &amp;lt;"),
        ("<b><i>周六</b></i>", "第 9 个字符处的 &lt;/b&gt; 和前面的标签对不上"),
        ('<a href="https://x.cn>报名</a>', "属性写法有误"),
        ("<b> </b>", "去掉标签后没有任何文字"),
    ],
)
async def test_text_telegram_would_refuse_is_explained_and_asked_again(world: World, text: str, expected: str) -> None:
    chat = world.organiser()
    await chat.send("/notice")
    (answer,) = await chat.send(text)
    assert "这段内容 Telegram 无法发送" in answer and expected in answer
    (card,) = await chat.send("周六<b>大扫除</b>")
    assert "通知草稿" in card
    assert await world.outbox.all() == []


async def test_bad_html_in_english_names_the_tag_and_the_place(world: World) -> None:
    chat = await english_organiser(world)
    await chat.send("/notice")
    (answer,) = await chat.send("Meet at <div>gate 3</div>")
    assert "&lt;div&gt; at character 9 is not a tag Telegram supports" in answer
    assert "Here: <code>Meet at &lt;div&gt;gate 3&lt;/div&gt;</code>" in answer


async def test_text_over_the_limit_is_refused_with_its_length(world: World) -> None:
    chat = world.organiser()
    await chat.send("/notice")
    (answer,) = await chat.send("通" * 3801)
    assert "内容有 3801 字，通知正文最多 3800 字" in answer
    (card,) = await chat.send("通" * 3800)
    assert "（3800 字）" in card


async def test_photo_is_refused_while_the_text_is_too_long_for_a_caption(world: World) -> None:
    chat = world.organiser()
    await draft(chat, "停" * 900)
    await chat.press("📷 配图")
    (refused,) = await chat.send_photo("photo-1")
    assert "内容有 900 字，配图时图片说明最多 850 字" in refused and "这张照片没有加上" in refused
    (refused,) = await chat.send_photo("photo-1", caption="停" * 851)
    assert "内容有 851 字" in refused
    (card,) = await chat.send_photo("photo-1", caption="停水通知")
    assert "配图：有" in card and "停水通知（4 字）" in card
    (ask,) = await chat.press("改文字")
    assert "配图时图片说明最多 850 字" in ask
    (refused,) = await chat.send("停" * 851)  # with a photo, a new text must fit the caption too
    assert "配图时图片说明最多 850 字" in refused
    (card,) = await chat.send("停水通知：明天 9:00–12:00")
    assert "停水通知：明天 9:00–12:00" in card and "配图：有" in card


async def test_a_file_instead_of_a_photo_asks_for_a_photo(world: World) -> None:
    chat = await english_organiser(world)
    await chat.send("/notice")
    (answer,) = await chat.send_photo("scan.pdf", as_file=True)
    assert "Send the image again as a photo (not as a file)" in answer
    await chat.send("Water is off on Tuesday")
    await chat.press("📷 Photo")
    (answer,) = await chat.send_photo("poster.png", as_file=True)
    assert "as a photo (not as a file)" in answer
    (card,) = await chat.press("Back to the draft")
    assert "Photo: none" in card


async def test_schedule_in_the_past_or_unreadable_is_refused_and_asked_again(world: World) -> None:
    chat = world.organiser()
    await draft(chat)
    await chat.press("⏰ 定时发送")
    (unreadable,) = await chat.send("明天早上")
    assert "没看懂这个时间" in unreadable
    (past,) = await chat.send("2026-12-01 09:00")
    assert "这个时间已经过去了" in past
    (far,) = await chat.send("2027-06-01 09:00")
    assert "最多只能提前 92 天" in far
    (confirm,) = await chat.send("9:30")  # today's 09:30 has passed: tomorrow
    assert "2026-12-08 09:30（周二，北京时间）" in confirm
    for stale in ("1|nc.go", "1|nc.goat|1765000000"):  # an older "send now", a confirmation of another time
        (answer,) = await chat.press_data(stale)
        assert "通知草稿已经不在了" in answer
    world.clock.advance(days=1)  # the organiser comes back too late
    (late,) = await chat.press("确认定时发送")
    assert "这个时间已经过去了" in late and chat.answers[-1].alert
    assert await world.campaigns() == [] and await world.outbox.all() == []


async def test_empty_audience_is_refused_and_nothing_is_queued(world: World) -> None:
    chat = world.organiser()
    await draft(chat)
    await chat.press("👥 发送范围")
    await chat.press("订阅板块的居民")
    (card,) = await chat.press("园林城市")
    assert "订阅了「园林城市」板块的居民" in card and "收件人：0 人" in card and "目前没有收件人" in card
    for button in ("📤 立即发送", "⏰ 定时发送"):
        (refused,) = await chat.press(button)
        assert "找不到任何收件人" in refused and chat.answers[-1].alert
    assert await world.campaigns() == [] and await world.outbox.all() == []

    await world.app.services.campaigns.toggle_track(1000, "garden")
    await chat.press("👥 发送范围")
    await chat.press("订阅板块的居民")
    (card,) = await chat.press("园林城市")
    assert "收件人：1 人" in card


async def test_non_organiser_is_refused_and_the_refusal_audited(world: World) -> None:
    chat = FakeChat(world.app.core, user_id=STRANGER)
    (answer,) = await chat.send("/notice")
    assert "只有社区工作人员可以使用" in answer
    sessions = make_sessionmaker(world.app.engine)
    async with sessions() as session:
        rows = (await session.scalars(select(AuditLogRow).where(AuditLogRow.actor_telegram_id == STRANGER))).all()
    assert [(r.action, r.allowed) for r in rows] == [("notice", False)]


async def test_notice_in_a_group_is_refused(world: World) -> None:
    chat = FakeChat(world.app.core, user_id=ORGANISER, chat_id=-100555, chat_type=ChatType.SUPERGROUP)
    (answer,) = await chat.send("/notice")
    assert "只能在与我的私聊中使用" in answer


async def test_organiser_of_two_communities_chooses_one(world: World) -> None:
    await world.app.services.access.grant(ORGANISER, Role.ORGANISER, "other", None)
    chat = world.organiser()
    (choose,) = await chat.send("/notice")
    assert "你负责多个社区" in choose and chat.labels() == ["示范社区", "邻近社区"]
    (ask,) = await chat.press("邻近社区")
    assert "发布通知 · 邻近社区" in ask
    (card,) = await chat.send("9号楼停水")
    assert "通知草稿 · 邻近社区" in card and "收件人：0 人" in card


async def test_forged_compose_buttons_get_a_clear_answer_and_send_nothing(world: World) -> None:
    organiser_chat = world.organiser()
    await draft(organiser_chat)
    await organiser_chat.press("⏰ 定时发送")
    await organiser_chat.send("12-08 09:00")
    await organiser_chat.press("确认定时发送")
    demo = await world.app.services.communities.by_code("demo")
    other = await world.app.services.communities.by_code("other")
    assert demo is not None and other is not None

    resident = FakeChat(world.app.core, user_id=STRANGER)
    for data in ("1|nc.send", "1|nc.go", "1|nc.urgent", f"1|nc.bld|{demo.buildings[0].id}", "1|nc.prev|zh_Hans"):
        (answer,) = await resident.press_data(data)
        assert "通知草稿已经不在了" in answer and resident.answers[-1].alert
    for data in ("1|nc.cancel|1", "1|nt.stop|1", "1|nc.new"):
        (answer,) = await resident.press_data(data)
        assert "只有社区工作人员可以使用" in answer and resident.answers[-1].alert
    (answer,) = await resident.press_data(f"1|nc.comm|{demo.id}")
    assert "通知草稿已经不在了" in answer
    (answer,) = await organiser_chat.press_data("1|nc.cancel|99")
    assert "没有找到这条通知" in answer
    (answer,) = await organiser_chat.press_data("1|nc.goat|not-a-number")
    assert "这个按钮已失效" in answer

    await draft(organiser_chat)
    await organiser_chat.press("👥 发送范围")
    await organiser_chat.press("按楼栋")
    (answer,) = await organiser_chat.press_data(f"1|nc.bld|{other.buildings[0].id}")
    assert "没有找到该楼栋" in answer
    (answer,) = await organiser_chat.press("完成")
    assert "请至少选择一个楼栋" in answer
    (answer,) = await organiser_chat.press_data("1|nc.tpl|birthday")
    assert "没有这个通知模板" in answer

    assert [status for _, status, _ in await world.campaigns()] == [CampaignStatus.SCHEDULED]
    assert await world.outbox.all() == []
    assert all(isinstance(o, OutCallbackAnswer) for o in resident.sent)
