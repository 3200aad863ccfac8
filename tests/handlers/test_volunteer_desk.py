"""The organisers' volunteer desk in dialog transcripts (Chinese and English): creating activities and shifts (weekly
ones too), typed values that cannot be used, refusals for residents, rosters, approving and correcting hours, moving
and cancelling a shift (everyone concerned told through the outbox), /stats volunteers and an activity's button on
a notice."""

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
from bot.conversation.state import MemoryStateStore
from bot.domain.roles import Role
from bot.domain.volunteers import BookingStatus, HoursStatus, Shift, ShiftDraft, ShiftStatus, checkin_code
from storage.db import make_sessionmaker
from storage.models import AuditLogRow
from storage.uow import SqlUnitOfWork
from tests.conftest import sqlite_copy
from tests.support.notices import Notices
from tests.support.points import FakeClock
from tests.support.transcript import FakeChat

MONDAY_10AM = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 7 December, 10:00 in Shanghai
TUESDAY_9AM = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)  # the next morning, 09:00 in Shanghai
ORGANISER = 900_001
VOLUNTEERS = {801: "王芳", 802: "张伟", 803: "赵磊"}  # Chinese-reading volunteers of 1号楼
ENGLISH = {811: "Amy", 812: "Ben", 813: "Cleo"}  # English-reading volunteers of 2号楼
RESIDENT = 3001  # a resident without any role
OTHERS = range(2000, 2036)  # residents who do not volunteer


@dataclass
class World:
    app: App
    clock: FakeClock
    outbox: Notices

    def organiser(self, language: str = "zh-hans") -> FakeChat:
        return FakeChat(self.app.core, user_id=ORGANISER, first_name="刘书记", language_code=language)

    async def english_organiser(self) -> FakeChat:
        await self.app.services.residents.set_locale(ORGANISER, "en")
        return self.organiser("en")

    async def shift(self, capacity: int = 2, *, weeks: int = 1) -> Shift:
        """An activity with a shift tomorrow 09:00–11:00 (made through the service, not the dialog)."""
        desk = self.app.services.volunteer_desk
        activity = await desk.create_activity(
            ORGANISER, title="垃圾分类督导", description="桶边督导", place="3号楼垃圾房", contact="王老师 13800000000",
            track="sanitary",
        )  # fmt: skip
        draft = ShiftDraft(TUESDAY_9AM, TUESDAY_9AM + timedelta(hours=2), capacity, 2, "", 12, weeks)
        return (await desk.add_shifts(ORGANISER, activity.id, draft))[0]

    async def book(self, shift: Shift, *volunteers: int) -> None:
        for telegram_id in volunteers:
            await self.app.services.volunteers.book(telegram_id, shift.id)

    async def statuses(self, shift: Shift) -> dict[int, BookingStatus]:
        found = await self.app.services.volunteer_desk.roster(ORGANISER, shift.id)
        return {p.telegram_id or 0: b.status for b, p in found.lines}

    async def check_in(self, shift: Shift, *volunteers: int) -> None:
        for telegram_id in volunteers:
            code = checkin_code(shift.secret, shift.id, self.clock())
            done = await self.app.services.volunteers.check_in(telegram_id, shift.id, code=code)
            assert done.problem is None

    async def booking(self, shift: Shift, telegram_id: int) -> int:
        found = await self.app.services.volunteer_desk.roster(ORGANISER, shift.id)
        return next(b.id for b, p in found.lines if p.telegram_id == telegram_id)

    async def balance(self, telegram_id: int) -> int:
        return (await self.app.services.points.overview(telegram_id)).balance

    async def refusals(self, telegram_id: int) -> list[str]:
        """What the audit log holds as refused to this person, in order."""
        sessions = make_sessionmaker(self.app.engine)
        async with sessions() as session:
            query = select(AuditLogRow).where(AuditLogRow.actor_telegram_id == telegram_id).order_by(AuditLogRow.id)
            return [r.action for r in (await session.scalars(query)).all() if not r.allowed]


async def people(app: App, names: dict[int, str] | range, now: datetime, *, building: str, locale: str) -> None:
    """Registered residents of the demo community, in one transaction."""
    community = await app.services.communities.by_code("demo")
    assert community is not None
    place = community.building(building)
    assert place is not None
    async with app.transactions.scope() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        for telegram_id in names:
            resident = await uow.residents.add(telegram_id, locale, now)
            name = names[telegram_id] if isinstance(names, dict) else None
            await uow.residents.update(resident.id, consent_at=now, consent_version="t", community_id=community.id,
                                       building_id=place.id, display_name=name)  # fmt: skip
        await uow.commit()


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[World]:
    url = sqlite_copy(sqlite_template, tmp_path / "desk.db")
    clock = FakeClock(MONDAY_10AM)
    app = await build_app(Settings(database=DatabaseSettings(url=url)), clock=clock, bot_username="sicheng_bot",
                          state_store=MemoryStateStore())  # fmt: skip
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼"), ("3", "3号楼")])
    await people(app, {ORGANISER: "刘书记"}, clock(), building="1", locale="zh_Hans")
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    await people(app, VOLUNTEERS, clock(), building="1", locale="zh_Hans")
    await people(app, ENGLISH, clock(), building="2", locale="en")
    await people(app, {RESIDENT: "路人"}, clock(), building="3", locale="zh_Hans")
    for telegram_id in [*VOLUNTEERS, *ENGLISH]:
        await app.services.volunteers.register(telegram_id, "", "")
    yield World(app, clock, Notices(app))
    await app.aclose()


async def first_steps(chat: FakeChat, *, track: str, title: str, place: str, contact: str, skip: str) -> None:
    """/activities → new activity → track, title, no description, place, no location, contact."""
    await chat.send("/activities")
    await chat.press("➕")
    await chat.press(track)
    await chat.send(title)
    await chat.press(skip)
    await chat.send(place)
    assert chat.sent[-2].reply_keyboard  # the "send the meeting point" button
    await chat.press(skip)
    await chat.send(contact)


# ---- creating -------------------------------------------------------------------------------------------------------


async def test_create_activity_then_weekly_shifts_in_chinese_stores_one_and_four_shifts(world: World) -> None:
    chat = world.organiser()
    (overview,) = await chat.send("/activities")
    assert "志愿活动" in overview and "还没有即将开始的班次" in overview and "无需组织者审核" in overview
    (ask,) = await chat.press("新建活动")
    assert "新建志愿活动" in ask and chat.labels()[-1] == "📌 综合"
    (ask,) = await chat.press("卫生城市")
    assert "活动名称" in ask
    (ask,) = await chat.send("垃圾分类桶边督导")
    assert "介绍" in ask
    (ask,) = await chat.press("跳过")
    assert "在哪里集合" in ask
    (ask_location, _) = await chat.send("3号楼垃圾房")
    assert "按位置签到" in ask_location and chat.sent[-2].reply_keyboard[0][0].text == "📍 发送集合点位置"
    (ask,) = await chat.press("跳过")
    assert "联系人" in ask and chat.sent[-1].remove_reply_keyboard
    (ask,) = await chat.send("王老师 13800000000")
    assert "什么时候开始" in ask and "北京时间" in ask
    (ask,) = await chat.send("12-08 09:00")
    assert "几点结束" in ask and "开始时间：12月8日 周二 09:00" in ask
    (ask,) = await chat.send("11:00")
    assert "几位志愿者" in ask
    (ask,) = await chat.send("5")
    assert chat.labels() == ["1 分", "2 分（默认）", "3 分", "4 分"]
    (ask,) = await chat.press("2 分")
    assert chat.labels() == ["2 小时", "12 小时（默认）", "24 小时"]
    (ask,) = await chat.press("12 小时")
    assert "备注" in ask
    (ask,) = await chat.press("跳过")
    assert chat.labels() == ["只办一次", "4 周", "8 周", "12 周"]
    (summary,) = await chat.press("只办一次")
    assert "板块：🧹 卫生城市" in summary and "活动：垃圾分类桶边督导" in summary and "地点：3号楼垃圾房" in summary
    assert "时间：12月8日 周二 09:00–11:00" in summary
    assert "名额：5 人 · 每小时文明积分 2 分 · 开始前 12 小时截止报名" in summary
    assert "只办一次" in summary
    (created,) = await chat.press("确认创建")
    assert "已创建志愿活动「垃圾分类桶边督导」，共 1 个班次" in created and "12月8日 周二 09:00–11:00" in created
    zone, views = await world.app.services.volunteer_desk.activities(ORGANISER)
    assert [(v.shift.starts_at, v.shift.ends_at, v.shift.capacity, v.activity.track) for v in views] == [
        (TUESDAY_9AM, TUESDAY_9AM + timedelta(hours=2), 5, "sanitary")
    ]

    (ask,) = await chat.press("再添加一个班次")
    assert "为「垃圾分类桶边督导」添加班次" in ask
    await chat.send("12-12 14:00")
    await chat.send("16:00")
    await chat.send("3")
    await chat.press("2 分")
    await chat.press("24 小时")
    await chat.send("请戴手套")
    (summary,) = await chat.press("4 周")
    assert "每周重复 4 周：12月12日 周六、12月19日 周六、12月26日 周六、1月2日 周六" in summary
    assert "备注：请戴手套" in summary and "板块" not in summary  # the activity is not asked again
    (created,) = await chat.press("确认创建")
    assert "已为「垃圾分类桶边督导」添加班次，共 4 个班次" in created
    _, views = await world.app.services.volunteer_desk.activities(ORGANISER)
    weekly = [v.shift for v in views if v.shift.capacity == 3]
    assert [s.starts_at.astimezone(zone).strftime("%m-%d %H:%M") for s in weekly] == [
        "12-12 14:00", "12-19 14:00", "12-26 14:00", "01-02 14:00",
    ]  # fmt: skip
    assert {(s.cutoff_hours, s.note, s.minutes) for s in weekly} == {(24, "请戴手套", 120)}
    assert len({v.activity.id for v in views}) == 1
    (overview,) = await chat.send("/activities")
    assert overview.count("已报名 0/3") == 4 and "已报名 0/5" in overview


async def test_create_activity_in_english_keeps_the_meeting_point_for_check_in(world: World) -> None:
    chat = await world.english_organiser()
    (overview,) = await chat.send("/activities")
    assert "Volunteer activities" in overview and "No upcoming shifts yet" in overview
    await chat.press("New activity")
    (ask,) = await chat.press("General")
    assert "What is the activity called?" in ask
    await chat.send("Park clean-up")
    await chat.send("Picking up litter along the lake")
    (ask_location, _) = await chat.send("East gate")
    assert "check in by their location" in ask_location
    (ask,) = await chat.send_location(31.2304, 121.4737)
    assert "Who is the contact" in ask and chat.sent[-1].remove_reply_keyboard
    await chat.send("Ms Wang 13800000000")
    (ask,) = await chat.send("2026-12-13 08:30")
    assert "Starts: Sun 13 Dec 08:30" in ask
    await chat.send("12-13 10:00")
    await chat.send("８")  # full-width digits are read too
    await chat.press("3 points")
    await chat.press("2 h")
    await chat.press("Skip")
    (summary,) = await chat.press("Just once")
    assert "Track: 📌 General" in summary and "Place: East gate (check-in by location)" in summary
    assert "Time: Sun 13 Dec 08:30–10:00" in summary and "Places: 8 · 3 civility points an hour" in summary
    (created,) = await chat.press("Create")
    assert 'Activity "Park clean-up" created: 1 shift' in created
    _, views = await world.app.services.volunteer_desk.activities(ORGANISER)
    (view,) = views
    assert view.activity.has_coordinates and view.activity.track is None and view.shift.cutoff_hours == 2
    assert (view.shift.points_per_hour, view.shift.capacity) == (3, 8)


async def test_cancel_leaves_the_new_activity_dialog_and_stores_nothing(world: World) -> None:
    chat = world.organiser()
    await chat.send("/activities")
    await chat.press("新建活动")
    await chat.press("园林城市")
    (cancelled,) = await chat.send("/cancel")
    assert "已取消" in cancelled
    replies = await chat.send("桶边督导")  # no longer a title
    assert not any("介绍" in r for r in replies)
    _, views = await world.app.services.volunteer_desk.activities(ORGANISER)
    assert views == []


async def test_new_activity_dialog_resumes_after_a_restart(tmp_path: Path, sqlite_template: Path) -> None:
    url = sqlite_copy(sqlite_template, tmp_path / "restart.db")
    clock = FakeClock(MONDAY_10AM)
    settings = Settings(database=DatabaseSettings(url=url))
    app = await build_app(settings, clock=clock, bot_username="sicheng_bot")  # dialog states kept in the database
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼")])
    await people(app, {ORGANISER: "刘书记"}, clock(), building="1", locale="zh_Hans")
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    chat = FakeChat(app.core, user_id=ORGANISER, first_name="刘书记")
    await chat.send("/activities")
    await chat.press("新建活动")
    await chat.press("文明城市")
    await chat.send("文明劝导")
    await app.aclose()

    app = await build_app(settings, clock=clock, bot_username="sicheng_bot")
    chat.core = app.core
    (ask,) = await chat.send("路口文明交通劝导")
    assert "在哪里集合" in ask  # the description was taken: the dialog went on where it was
    await chat.send("幸福路口")
    await chat.press("跳过")
    await chat.send("李老师")
    await chat.send("12-09 07:30")
    await chat.send("08:30")
    await chat.send("4")
    await chat.press("2 分")
    await chat.press("12 小时")
    await chat.press("跳过")
    await chat.press("只办一次")
    (created,) = await chat.press("确认创建")
    assert "已创建志愿活动「文明劝导」" in created
    _, views = await app.services.volunteer_desk.activities(ORGANISER)
    assert [(v.activity.title, v.activity.description, v.activity.track) for v in views] == [
        ("文明劝导", "路口文明交通劝导", "civilised")
    ]
    await app.aclose()


# ---- bad input ------------------------------------------------------------------------------------------------------


async def test_bad_times_and_capacities_in_chinese_are_explained_and_asked_again(world: World) -> None:
    chat = world.organiser()
    await first_steps(chat, track="卫生城市", title="桶边督导", place="3号楼", contact="王老师", skip="跳过")
    (why, ask) = await chat.send("12-01 09:00")
    assert "开始时间已经过去了" in why and "什么时候开始" in ask
    (why, ask) = await chat.send("明天上午")
    assert "没看懂这个时间" in why and "什么时候开始" in ask
    await chat.send("12-08 09:00")
    (why, ask) = await chat.send("08:00")
    assert "结束时间要晚于开始时间" in why and "几点结束" in ask
    (why, ask) = await chat.send("23:30")
    assert "一个班次最长 12 小时" in why and "几点结束" in ask
    await chat.send("11:00")
    for typed in ("0", "-3", "很多人"):
        (why, ask) = await chat.send(typed)
        assert "名额需在 1 到 500 人之间" in why and "几位志愿者" in ask
    (ask,) = await chat.send("21")  # accepted: the points are asked next
    assert "每服务 1 小时奖励多少文明积分" in ask
    (why, ask) = await chat.send("25")
    assert "每小时积分需在 0 到 20 之间" in why and "每服务 1 小时奖励多少文明积分" in ask
    _, views = await world.app.services.volunteer_desk.activities(ORGANISER)
    assert views == []  # nothing is stored before the summary is confirmed


async def test_bad_times_and_capacities_in_english_are_explained_and_asked_again(world: World) -> None:
    chat = await world.english_organiser()
    await first_steps(chat, track="Garden", title="Tree planting", place="North lawn", contact="Mr Li", skip="Skip")
    await chat.send("12-09 14:00")
    (why, ask) = await chat.send("13:00")
    assert "The end must be after the start" in why and "When does it end?" in ask
    (why, ask) = await chat.send("half past four")
    assert "I could not read that end" in why and "When does it end?" in ask
    await chat.send("16:00")
    for typed in ("0", "-3", "lots"):
        (why, ask) = await chat.send(typed)
        assert "The number of places must be between 1 and 500" in why and "How many volunteers" in ask
    _, views = await world.app.services.volunteer_desk.activities(ORGANISER)
    assert views == []


# ---- refusals -------------------------------------------------------------------------------------------------------


async def test_resident_calling_activities_or_forging_a_roster_button_is_refused_and_audited(world: World) -> None:
    shift = await world.shift()
    resident = FakeChat(world.app.core, user_id=RESIDENT, first_name="路人")
    (answer,) = await resident.send("/activities")
    assert answer == "🚫 抱歉，只有社区工作人员可以使用这个功能。如需开通，请联系社区。"
    (answer,) = await resident.press_data(f"1|vd.roster|{shift.id}")
    assert resident.answers[-1].alert and "只有社区工作人员可以使用" in answer
    (answer,) = await resident.press_data(f"1|vd.hall|{shift.id}")
    assert "只有社区工作人员可以使用" in answer
    assert await world.refusals(RESIDENT) == ["volunteer.list", "volunteer.roster", "volunteer.approve"]
    assert await world.statuses(shift) == {}


async def test_english_volunteer_forging_an_approval_is_refused_in_english(world: World) -> None:
    shift = await world.shift()
    chat = FakeChat(world.app.core, user_id=811, first_name="Amy", language_code="en")
    (answer,) = await chat.press_data(f"1|vd.csy|{shift.id}")
    assert chat.answers[-1].alert and "staff" in answer.lower()
    assert await world.refusals(811) == ["volunteer.cancel_shift"]
    assert (await world.app.services.volunteer_desk.roster(ORGANISER, shift.id)).view.shift.status is ShiftStatus.OPEN


# ---- the roster ------------------------------------------------------------------------------------------------------


async def test_roster_shows_booked_and_waiting_in_order(world: World) -> None:
    shift = await world.shift(capacity=2)
    await world.book(shift, 801, 802, 803)
    chat = world.organiser()
    await chat.send("/activities")
    (roster,) = await chat.press("12/8 09:00（2/2，候补1）")
    assert "📋 <b>垃圾分类督导</b> · 12月8日 周二 09:00–11:00" in roster
    assert "1. 王芳（1号楼） ⏳ 未签到" in roster and "2. 张伟（1号楼） ⏳ 未签到" in roster
    assert "<b>候补（按先后）</b>\n1. 赵磊" in roster and "名额 2/2 · 候补 1 人" in roster
    assert "🔢 显示签到码" in chat.labels() and "🕘 更改时间" in chat.labels()
    assert not any("缺席" in label for label in chat.labels())  # not before the start


async def test_roster_in_english_after_the_start_offers_no_show_and_marks_it(world: World) -> None:
    shift = await world.shift(capacity=2)
    await world.book(shift, 811, 812, 813)
    world.clock.now = TUESDAY_9AM - timedelta(minutes=10)
    await world.check_in(shift, 811)
    world.clock.now = TUESDAY_9AM + timedelta(minutes=20)
    chat = await world.english_organiser()
    (roster,) = await chat.press_data(f"1|vd.roster|{shift.id}")
    assert "1. Amy (2号楼) ✅ checked in 08:50" in roster and "2. Ben (2号楼) ⏳ not checked in" in roster
    assert "<b>Waiting list (in order)</b>\n1. Cleo" in roster
    assert "🚫 Ben did not come" in chat.labels() and "🚫 Amy did not come" not in chat.labels()
    (roster,) = await chat.press("Ben did not come")
    assert roster.startswith("✅ Marked as not come.") and "<b>Did not come</b>: Ben" in roster
    assert (await world.statuses(shift))[812] is BookingStatus.NO_SHOW


async def test_show_code_queues_the_code_message_and_answers_briefly(world: World) -> None:
    shift = await world.shift()
    world.clock.now = TUESDAY_9AM - timedelta(minutes=15)
    chat = world.organiser()
    await chat.press_data(f"1|vd.roster|{shift.id}")
    (answer,) = await chat.press("显示签到码")
    assert "每分钟自动更换" in answer and not chat.answers[-1].alert
    code = await world.outbox.card(f"vcode:{shift.id}", ORGANISER)
    expected = checkin_code(shift.secret, shift.id, world.clock())
    assert f"<b>{expected}</b>" in code.text and "有效至 08:46，每分钟自动更换" in code.text
    assert "「垃圾分类督导」· 12月8日 周二 09:00–11:00" in code.text and "输入这 4 位数字" in code.text


async def test_message_volunteers_reaches_everyone_booked(world: World) -> None:
    shift = await world.shift(capacity=2)
    await world.book(shift, 801, 811, 802)
    chat = world.organiser()
    await chat.press_data(f"1|vd.roster|{shift.id}")
    (ask,) = await chat.press("给志愿者发消息")
    assert "请输入内容" in ask
    (sent,) = await chat.send("明早请带好手套 <3")
    assert sent == "✉️ 已发送给 2 位志愿者。"
    told = {q.chat_id: q for q in await world.outbox.all() if q.template == "volunteers/message"}
    assert set(told) == {801, 811} and "明早请带好手套 &lt;3" in told[801].text


# ---- hours ---------------------------------------------------------------------------------------------------------


async def test_approve_all_credits_points_once(world: World) -> None:
    shift = await world.shift(capacity=2)
    await world.book(shift, 801, 802)
    world.clock.now = TUESDAY_9AM - timedelta(minutes=15)
    await world.check_in(shift, 801, 802)
    world.clock.now = TUESDAY_9AM + timedelta(hours=2, minutes=30)
    chat = world.organiser()
    (roster,) = await chat.press_data(f"1|vd.roster|{shift.id}")
    assert "2 人的服务时长待核定" in roster
    (hours,) = await chat.press("核定服务时长")
    assert "· 王芳：120 分钟（08:45–未签退）" in hours and "全部通过（2 人）" in chat.labels()[0]
    (answer, hours) = await chat.press("全部通过")
    assert answer == "已认定 2 位志愿者共 240 分钟，积分已发放。"
    assert "没有待核定的服务时长" in hours and "· 王芳：120 分钟" in hours and "· 张伟：120 分钟" in hours
    assert (await world.balance(801), await world.balance(802)) == (4, 4)
    (again, _) = await chat.press_data(f"1|vd.hall|{shift.id}")  # a double tap, or the older message's button
    assert "没有待认定的时长" in again
    assert (await world.balance(801), await world.balance(802)) == (4, 4)
    told = [q for q in await world.outbox.all() if q.template == "volunteers/hours_approved"]
    assert sorted(q.chat_id for q in told) == [801, 802] and "2 小时" in told[0].text


async def test_correct_hours_with_a_reason_in_english(world: World) -> None:
    shift = await world.shift(capacity=2)
    await world.book(shift, 811, 812)
    world.clock.now = TUESDAY_9AM - timedelta(minutes=15)
    await world.check_in(shift, 811, 812)
    world.clock.now = TUESDAY_9AM + timedelta(hours=3)
    chat = await world.english_organiser()
    (hours,) = await chat.press_data(f"1|vd.hrs|{shift.id}")
    assert "· Amy: 120 min (08:45–not checked out)" in hours
    (ask,) = await chat.press("Correct Amy")
    assert "Amy served 120 minutes" in ask and "at most 120 minutes" in ask
    (why, ask) = await chat.send("an hour or so")
    assert "I could not read that time" in why and "Type the time to approve" in ask
    (why, _) = await chat.send("3 h")
    assert "longer than the shift itself (2 h)" in why
    (ask,) = await chat.send("1.5")
    assert "90 minutes. Why does it differ?" in ask
    (done,) = await chat.send("Left early to take her child to school")
    assert done == "✅ Approved 90 minutes (1.5 h) for Amy; they are told and their points credited."
    assert await world.balance(811) == 3
    found = await world.app.services.volunteer_desk.roster(ORGANISER, shift.id)
    amy = next(b for b, p in found.lines if p.telegram_id == 811)
    assert (amy.hours, amy.minutes, amy.correction) == (
        HoursStatus.APPROVED, 90, "Left early to take her child to school",
    )  # fmt: skip
    told = await world.outbox.find(811, "Left early")
    assert told.template == "volunteers/hours_approved"
    (hours,) = await chat.press("Back to the hours")
    assert "· Ben: 120 min" in hours and "· Amy: 90 min (corrected: Left early" in hours


async def test_end_of_shift_asks_the_organiser_to_approve_and_the_button_opens_the_hours(world: World) -> None:
    shift = await world.shift(capacity=2)
    await world.book(shift, 801, 802)
    world.clock.now = TUESDAY_9AM - timedelta(hours=1)
    await world.app.services.volunteers.cant_come(802, await world.booking(shift, 802))  # after the cut-off
    late = await world.outbox.last(ORGANISER)
    assert late.template == "volunteers/desk/late_cancel"
    assert "张伟在截止时间后取消了「垃圾分类督导」（12月8日 周二 09:00–11:00）的报名" in late.text
    world.clock.now = TUESDAY_9AM - timedelta(minutes=5)
    await world.check_in(shift, 801)
    world.clock.now = TUESDAY_9AM + timedelta(hours=2)
    await world.app.run_due_jobs(world.clock())
    over = await world.outbox.last(ORGANISER)
    assert over.template == "volunteers/desk/shift_over" and "1 位志愿者的服务时长待认定" in over.text
    chat = world.organiser()
    (hours,) = await chat.press_data(over.data("认定服务时长"))
    assert "· 王芳：120 分钟（08:55–11:00）" in hours
    (roster,) = await chat.press("返回名单")
    assert "<b>临时取消</b>：张伟" in roster and "1. 王芳（1号楼） ✅ 08:55 已签到，11:00 签退" in roster


# ---- moving and cancelling ----------------------------------------------------------------------------------------


async def test_move_time_tells_booked_and_waiting_what_changed(world: World) -> None:
    shift = await world.shift(capacity=1)
    await world.book(shift, 801, 811)
    chat = world.organiser()
    await chat.press_data(f"1|vd.roster|{shift.id}")
    (ask,) = await chat.press("更改时间")
    assert "「垃圾分类督导」目前是 12月8日 周二 09:00–11:00" in ask
    (why, _) = await chat.send("12-06 10:00")
    assert "开始时间已经过去了" in why
    await chat.send("12-08 14:00")
    (why, _) = await chat.send("13:00")
    assert "结束时间要晚于开始时间" in why
    (moved,) = await chat.send("16:00")
    assert "班次已改到 12月8日 周二 14:00–16:00" in moved
    changed = {q.chat_id: q for q in await world.outbox.all() if q.template == "volunteers/changed_time"}
    assert set(changed) == {801, 811}
    assert "原时间：<s>12月8日 周二 09:00–11:00</s>" in changed[801].text
    assert "新时间：<b>12月8日 周二 14:00–16:00</b>" in changed[801].text
    assert "Was: <s>Tue 8 Dec 09:00–11:00</s>" in changed[811].text and "waitlist" in changed[811].text


async def test_change_place_with_a_meeting_point_tells_the_booked(world: World) -> None:
    shift = await world.shift(capacity=2)
    await world.book(shift, 801, 802)
    chat = world.organiser()
    await chat.press_data(f"1|vd.roster|{shift.id}")
    (ask,) = await chat.press("更改地点")
    assert "「垃圾分类督导」现在的地点是“3号楼垃圾房”" in ask
    (why,) = await chat.send("   ")
    assert "内容不能为空" in why
    (ask, _) = await chat.send("5号楼东侧空地")
    assert "发送集合点位置" in ask and chat.sent[-2].reply_keyboard
    (done,) = await chat.send_location(31.2310, 121.4740)
    assert done.startswith("📍 「垃圾分类督导」的地点已改为“5号楼东侧空地”（已设定签到位置）。")
    assert chat.sent[-1].remove_reply_keyboard
    told = {q.chat_id: q for q in await world.outbox.all() if q.template == "volunteers/changed_place"}
    assert set(told) == {801, 802} and "5号楼东侧空地" in told[801].text and "3号楼垃圾房" in told[801].text
    activity, _, _ = await world.app.services.volunteer_desk.activity(ORGANISER, shift.activity_id)
    assert (activity.place, activity.latitude, activity.longitude) == ("5号楼东侧空地", 31.2310, 121.4740)


async def test_cancel_shift_tells_everyone_and_clears_the_waitlist(world: World) -> None:
    shift = await world.shift(capacity=2)
    await world.book(shift, 801, 802, 811)
    chat = world.organiser()
    await chat.press_data(f"1|vd.roster|{shift.id}")
    (confirm,) = await chat.press("取消这个班次")
    assert "已报名 2 人、候补 1 人都会收到取消通知" in confirm
    (done,) = await chat.press("确认取消班次")
    assert done == "❌ 班次已取消，已通知 3 位志愿者。"
    assert set((await world.statuses(shift)).values()) == {BookingStatus.CANCELLED}
    told = sorted(q.chat_id for q in await world.outbox.all() if q.template == "volunteers/cancelled")
    assert told == [801, 802, 811]
    _, views = await world.app.services.volunteer_desk.activities(ORGANISER)
    assert views == []


async def test_cancel_activity_in_english_cancels_every_shift(world: World) -> None:
    shift = await world.shift(capacity=2, weeks=3)
    await world.book(shift, 811)
    chat = await world.english_organiser()
    (card,) = await chat.press_data(f"1|vd.act|{shift.activity_id}")
    assert card.count("booked") == 3
    (confirm,) = await chat.press("Cancel the whole activity")
    assert "Its 3 upcoming shifts are cancelled" in confirm
    (done,) = await chat.press("Yes, cancel the activity")
    assert done == "🗑 Activity cancelled; 1 volunteer was told."
    _, views = await world.app.services.volunteer_desk.activities(ORGANISER)
    assert views == []


# ---- applicants, settings and figures --------------------------------------------------------------------------


async def test_approval_setting_and_applicants_list(world: World) -> None:
    chat = world.organiser()
    await chat.send("/activities")
    (overview,) = await chat.press("新志愿者需审核")
    assert "新志愿者报名需要组织者审核" in overview and "✅ 新志愿者需审核" in chat.labels()
    await world.app.services.volunteers.register(RESIDENT, "会修电脑", "周末")
    applied = await world.outbox.last(ORGANISER)
    assert applied.template == "volunteers/desk/applied" and "路人申请成为本社区志愿者" in applied.text
    (overview,) = await chat.send("/activities")
    assert "1 人等待审核" in overview
    (listing,) = await chat.press("待审核报名（1）")
    assert "1. 路人（3号楼）\n特长：会修电脑；可服务时间：周末" in listing
    (done,) = await chat.press("通过 路人")
    assert done == "✅ 已通过路人的志愿者报名，已告诉本人。"
    assert (await world.outbox.last(RESIDENT)).template == "volunteers/approved"


async def test_stats_volunteers_shows_participation_against_five_percent(world: World) -> None:
    await people(world.app, OTHERS, world.clock(), building="3", locale="zh_Hans")
    shift = await world.shift(capacity=2)
    await world.book(shift, 801, 802)
    world.clock.now = TUESDAY_9AM - timedelta(minutes=15)
    await world.check_in(shift, 801)
    world.clock.now = TUESDAY_9AM + timedelta(hours=3)
    await world.app.services.volunteer_desk.approve_all(ORGANISER, shift.id)
    await world.app.services.volunteer_desk.no_show(ORGANISER, await world.booking(shift, 802))
    chat = world.organiser()
    (figures,) = await chat.send("/stats volunteers")
    # 6 volunteers of 44 registered residents (the organiser, 6 volunteers, 1 resident, 36 others): 13.6%
    assert "志愿者参与率：6 / 44 位注册居民 = 13.6%（目标 5%） ✅ 已达标" in figures
    assert "按板块：🧹 卫生城市 2 小时" in figures and "按楼栋：1号楼 2 小时" in figures
    assert "班次 1 个，报名 2 人次，缺席 1 人次" in figures

    await world.english_organiser()
    for telegram_id in list(VOLUNTEERS)[1:]:
        await world.app.services.volunteer_desk.decide(ORGANISER, await resident_id(world, telegram_id), False)
    chat = world.organiser("en")
    (figures,) = await chat.send("/stats volunteers 7")
    assert "(last 7 days)" in figures
    assert "Participation: 4 volunteers / 44 registered residents = 9.1% (goal 5%) ✅ goal met" in figures


async def resident_id(world: World, telegram_id: int) -> int:
    found = await world.app.services.residents.profile(telegram_id)
    assert found is not None
    return found.id


async def test_stats_volunteers_below_the_goal_says_how_many_are_missing(world: World) -> None:
    await people(world.app, range(4000, 4200), world.clock(), building="3", locale="zh_Hans")
    (figures,) = await world.organiser().send("/stats volunteers")
    assert "志愿者参与率：6 / 208 位注册居民 = 2.9%（目标 5%），还差 5 人" in figures


# ---- announcing with a notice --------------------------------------------------------------------------------------


async def test_notice_offers_an_activity_button_that_opens_it(world: World) -> None:
    shift = await world.shift()
    chat = world.organiser()
    (answer,) = await chat.press_data(f"1|vd.ann|{shift.activity_id}")
    assert "/notice" in answer and "垃圾分类督导" in answer
    await chat.send("/notice")
    await chat.send("周二上午招募垃圾分类督导志愿者！")
    (menu,) = await chat.press("🔘 按钮")
    assert "报名志愿活动" in menu and "🙋 志愿活动：垃圾分类督导" in chat.labels()
    (menu,) = await chat.press("志愿活动：垃圾分类督导")
    assert "1. 🙋 志愿活动「垃圾分类督导」" in menu
    (card,) = await chat.press("返回草稿")
    assert "按钮：🙋 志愿活动「垃圾分类督导」" in card
    replies = await chat.press("👁 预览")
    preview = next(m for m in chat.messages.values() if m.text == replies[1])
    assert preview.buttons == [[("🙋 报名志愿活动：垃圾分类督导", f"1|vo.act|{shift.activity_id}")]]
    await chat.press("立即发送")
    await chat.press("确认发送")
    copy = await world.outbox.find(801, "招募")
    assert copy.buttons == ((("🙋 报名志愿活动：垃圾分类督导", f"1|vo.act|{shift.activity_id}"),),)
    english = await world.outbox.find(811, "招募")
    assert english.labels() == ["🙋 Volunteer: 垃圾分类督导"]


async def test_group_copy_of_a_notice_with_an_activity_carries_no_callback(world: World) -> None:
    await world.shift()
    group = FakeChat(world.app.core, user_id=ORGANISER, chat_id=-100777, chat_type=ChatType.SUPERGROUP)
    await group.send("/linkgroup demo")
    chat = world.organiser()
    await chat.send("/notice")
    await chat.send("招募志愿者")
    await chat.press("🔘 按钮")
    await chat.press("志愿活动：垃圾分类督导")
    await chat.press("返回草稿")
    await chat.press("发送范围")
    await chat.press("居民群")
    await chat.press("立即发送")
    await chat.press("确认发送")
    copy = await world.outbox.find(-100777, "招募志愿者")
    assert all(not data.startswith("1|") for row in copy.buttons for _, data in row)
    # a tap in a group would act for whoever taps: the copy opens the bot in private instead
    assert copy.buttons == ((("👉 打开四城同创机器人", "https://t.me/sicheng_bot?start=cdemo"),),)
    assert [q.chat_id for q in await world.outbox.all() if "招募志愿者" in q.text] == [-100777]
