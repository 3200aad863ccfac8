"""志愿服务, the volunteers' side, as transcripts in Chinese and in English: registering (with and without an
organiser's approval), browsing by day and track, booking, a full shift's waitlist, a freed place offered to the first
waiting (confirmed, or lapsing to the next), cancelling after the cut-off ("I can't come"), checking in with wrong,
expired, another shift's and the right code (or a location), hours approved once with their points, /myhours,
/certificate and /checkcert, and forged or repeated buttons."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from bot.app import App
from bot.conversation.replies import OutMessage
from bot.domain.roles import Role
from bot.domain.volunteers import BookingStatus, Shift, ShiftDraft, Stars, checkin_code
from storage.db import make_sessionmaker
from storage.models import AuditLogRow
from storage.uow import SqlUnitOfWork
from tests.handlers.test_reports import make_world
from tests.support.notices import Notices
from tests.support.reports import Clock, FakeDownloader, copy_db
from tests.support.transcript import FakeChat

ORGANISER = 2002
# Three volunteers per language: the first books, the others wait.
PEOPLE = {"zh_Hans": ((1001, "王小明"), (1002, "赵阿姨"), (1003, "李叔叔")),
          "en": ((1101, "Anna Smith"), (1102, "Ben"), (1103, "Chloe"))}  # fmt: skip
PLACE = (31.2304, 121.4737)  # 3号楼垃圾房


@dataclass(frozen=True)
class Lang:
    """What one language's transcript presses and expects."""

    locale: str
    telegram: str
    t: dict[str, str]


# What each transcript presses and expects: (Chinese, English).
TEXT = {
    "menu": ("志愿服务", "Volunteer"),
    "recruit": ("<b>① 招募</b>", "<b>① Sign up</b>"),
    "stars": ("一星 100 小时、二星 300 小时", "1★ at 100 h, 2★ at 300 h"),
    "register": ("报名成为志愿者", "Become a volunteer"),
    "consent": ("只给本社区的志愿服务组织者看", "Only your community's volunteer organisers see these"),
    "fill": ("填写特长和空闲时间", "Add skills and free times"),
    "ask_skills": ("您的<b>特长</b>", "What are your <b>skills</b>?"),
    "ask_free": ("<b>什么时候有空</b>", "<b>When are you usually free?</b>"),
    "skip": ("跳过", "Skip"),
    "welcome": ("欢迎成为志愿者", "Welcome, volunteer!"),
    "skills": ("特长：会急救", "Skills: first aid"),
    "pending": ("报名已提交", "Registration sent!"),
    "not_approved": ("还在等待社区审核", "still waiting for the community's approval"),
    "approved": ("已通过审核", "registration is approved"),
    "browse": ("近期班次", "Upcoming shifts"),
    "mine": ("我的班次", "My shifts"),
    "two_free": ("余 2/2 个名额", "2/2 places free"),
    "closed": ("报名已截止", "booking closed"),
    "two_free_button": ("余2个名额", "2 free"),
    "book": ("报名这个班次", "Book this shift"),
    "booked": ("报名成功", "You're booked!"),
    "one_free": ("已报名 1，剩余 1", "1 booked, 1 free"),
    "already": ("您已经报名了这个班次", "You have already booked this shift"),
    "full": ("这个班次已经满员了", "This shift is full"),
    "join1": ("加入候补（第 1 位）", "Join the waitlist (no. 1)"),
    "join2": ("加入候补（第 2 位）", "Join the waitlist (no. 2)"),
    "waiting1": ("您排在第 1 位", "number 1"),
    "waiting2": ("您排在第 2 位", "number 2"),
    "cancel": ("取消报名", "Cancel my place"),
    "sure": ("确定要取消这个班次的报名吗", "Cancel your place on this shift?"),
    "yes_cancel": ("确认取消", "Yes, cancel"),
    "cancelled": ("已取消报名", "Your place is cancelled"),
    "offer": ("候补到位了", "A place is free for you!"),
    "confirm": ("确认参加", "I'll come"),
    "confirmed": ("已确认参加", "Confirmed — see you there!"),
    "lapsed": ("没有在规定时间内确认", "was not confirmed in time"),
    "offer_gone": ("这个空位已经失效", "This offer is no longer open"),
    "past_cutoff": (
        "已过取消截止时间（11月27日 周五 22:00）",
        "The cut-off for cancelling (Fri 27 Nov 22:00) has passed",
    ),
    "cant": ("我去不了", "I can't come"),
    "cant_sure": ("确定去不了吗", "Sure you can't come"),
    "cant_yes": ("确定去不了，让出名额", "Yes, give up my place"),
    "keep": ("保留报名", "Keep my place"),
    "cant_done": ("已为您取消，并已告诉组织者", "Cancelled for you, and the organiser has been told"),
    "check_in": ("签到", "Check in"),
    "ask_code": ("<b>4 位签到码</b>", "<b>4-digit code</b>"),
    "location": ("发送我的位置", "Send my location"),
    "wrong": ("签到码不对或已过期", "Wrong or expired code"),
    "left4": ("还可以试 4 次", "4 tries left"),
    "left3": ("还可以试 3 次", "3 tries left"),
    "other": ("这是「敬老院陪伴」的签到码", 'That is the code of "敬老院陪伴"'),
    "checked_in": ("签到成功</b>（11月28日 周六 09:40）", "Checked in</b> (Sat 28 Nov 09:40)"),
    "check_out": ("签退", "Check out"),
    "too_far": ("您离活动地点约", "You are about"),
    "hours_ok": ("服务时长已认定", "Service hours approved"),
    "points4": ("获得文明积分 4 分", "4 civility points earned"),
    "approved_total": ("已认定服务时长：<b>2 小时</b>", "Approved service: <b>2 h</b>"),
    "year": ("2026 年：2 小时", "2026: 2 h"),
    "to_next": ("距离一星级还差 <b>98 小时</b>", "<b>98 h</b> to go for 1 star"),
    "waiting_hours": ("等待组织者认定：2 小时", "Waiting for approval: 2 h"),
    "cert": ("志愿服务记录证明已开具", "Certificate of volunteer service issued"),
    "valid": ("证明有效", "Valid certificate"),
    "masked": ("志愿者：王**", "Volunteer: A**"),
    "cert_hours": ("累计服务时长：2 小时", "Approved service: 2 h"),
    "unknown": ("没有找到编号为", "No certificate of volunteer service has the number"),
    "no_hours": ("您还没有经过认定的服务时长", "You have no approved service hours yet"),
    "not_yours": ("这不是您的报名", "This is not your booking"),
    "no_tries": ("次数已用完", "no tries are left"),
    "too_many": ("签到码已输错 5 次", "The code was wrong 5 times"),
    "had_dialog": ("已取消当前操作", "Cancelled."),
    "activity": ("<b>近期班次</b>", "<b>Upcoming shifts</b>"),
    "today": ("今天", "Today"),
    "tomorrow": ("明天", "Tomorrow"),
    "week": ("本周", "This week"),
    "garden": ("园林城市", "Garden"),
    "two_weeks": ("两周内", "2 weeks"),
    "reminder": ("约 24 小时后开始", "starts in about 24 hours"),
    "cant_early": (
        "已为您取消，名额会让给候补的志愿者",
        "Cancelled for you; your place goes to someone on the waitlist",
    ),
    "moved": ("新时间：<b>11月28日 周六 14:00–16:00</b>", "Now: <b>Sat 28 Nov 14:00–16:00</b>"),
    "place_moved": ("新地点：<b>社区广场</b>", "Now: <b>社区广场</b>"),
    "message": ("组织者消息", "Message from the organiser"),
    "shift_cancelled": ("班次已取消", "Shift cancelled"),
    "star": ("恭喜您成为一星级志愿者", "you are now a 1-star volunteer"),
    "declined": ("没有通过社区审核", "was not approved"),
    "checked_out": ("签退成功", "Checked out"),
    "fallback": ("操作没有完成", "That did not work"),
}
ZH = Lang("zh_Hans", "zh-hans", {key: zh for key, (zh, _) in TEXT.items()})
EN = Lang("en", "en", {key: en for key, (_, en) in TEXT.items()})


@dataclass
class World:
    app: App
    clock: Clock
    outbox: Notices
    lang: Lang

    @property
    def t(self) -> dict[str, str]:
        return self.lang.t

    def person(self, index: int) -> tuple[int, str]:
        return PEOPLE[self.lang.locale][index]

    def chat(self, index: int = 0) -> FakeChat:
        user_id, name = self.person(index)
        return FakeChat(self.app.core, user_id=user_id, first_name=name, language_code=self.lang.telegram)

    async def volunteer(self, index: int = 0) -> FakeChat:
        """A registered volunteer (approved: the community asks no approval by default)."""
        await self.app.services.volunteers.register(self.person(index)[0], "", "")
        return self.chat(index)

    async def shift(
        self,
        capacity: int,
        *,
        in_hours: float = 48,
        hours: float = 2,
        cutoff: int = 12,
        title: str = "垃圾分类督导",
        track: str | None = "sanitary",
    ) -> Shift:
        desk = self.app.services.volunteer_desk
        activity = await desk.create_activity(
            ORGANISER, title=title, description="桶边督导，分类指导", place="3号楼垃圾房", contact="王老师 13800000000",
            track=track, latitude=PLACE[0], longitude=PLACE[1],
        )  # fmt: skip
        start = self.clock() + timedelta(hours=in_hours)
        draft = ShiftDraft(start, start + timedelta(hours=hours), capacity, 2, "请穿志愿者马甲", cutoff, 1)
        return (await desk.add_shifts(ORGANISER, activity.id, draft))[0]

    async def statuses(self, shift_id: int) -> list[BookingStatus]:
        async with SqlUnitOfWork(make_sessionmaker(self.app.engine)) as uow:
            return [b.status for b in await uow.volunteers.bookings(shift_id)]

    async def open(self, chat: FakeChat, shift_title: str = "垃圾分类督导") -> list[str]:
        """/volunteer → upcoming shifts → the shift's card."""
        await chat.send("/volunteer")
        await chat.press(self.t["browse"])
        return await chat.press(shift_title)


@pytest.fixture(params=[ZH, EN], ids=["zh_Hans", "en"])
async def world(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> AsyncIterator[World]:
    lang: Lang = request.param
    db = copy_db(sqlite_template, tmp_path / "volunteers.db")
    clock = Clock()  # Thursday 26 Nov 2026, 10:00 in Shanghai
    app = await make_world(db, tmp_path / "media", clock, FakeDownloader())
    s = app.services
    await s.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    community = await s.communities.by_code("demo")
    assert community is not None
    for telegram_id, name in ((ORGANISER, "刘书记"), *PEOPLE[lang.locale]):
        await s.residents.give_consent(telegram_id, name, "zh_Hans" if telegram_id == ORGANISER else lang.locale)
        await s.residents.join(telegram_id, community.id, community.buildings[0].id)
    await s.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    yield World(app, clock, Notices(app), lang)
    await app.aclose()


async def test_register_from_main_menu_explains_then_asks_optional_details(world: World) -> None:
    t, chat = world.t, world.chat()
    await chat.send("/menu")
    replies = await chat.press(t["menu"])
    assert t["recruit"] in replies[0] and t["stars"] in replies[0]
    replies = await chat.press(t["register"])
    assert t["consent"] in replies[0] and "/deleteme" in replies[0]
    replies = await chat.press(t["fill"])
    assert t["ask_skills"] in replies[0]
    replies = await chat.send("first aid" if world.lang.locale == "en" else "会急救")
    assert t["ask_free"] in replies[0]
    replies = await chat.press(t["skip"])
    assert t["welcome"] in replies[0] and t["skills"] in replies[0]
    # Now a volunteer: the menu offers shifts, my shifts, hours and the certificate.
    await chat.send("/volunteer")
    assert len(chat.labels()) == 5 and t["browse"] in chat.labels()[0]


async def test_register_where_approval_is_required_waits_for_the_organiser(world: World) -> None:
    t, chat = world.t, world.chat()
    await world.app.services.volunteer_desk.set_approval(ORGANISER, True)
    shift = await world.shift(2)
    await chat.send("/volunteer")
    await chat.press(t["register"])
    replies = await chat.press("✅")  # register without details
    assert t["pending"] in replies[0]
    applied = await world.outbox.last(ORGANISER)
    assert applied.template == "volunteers/desk/applied" and world.person(0)[1] in applied.text
    # Booking is refused until an organiser approves.
    await chat.press(t["browse"])
    await chat.press("垃圾分类督导")
    replies = await chat.press(t["book"])
    assert t["not_approved"] in replies[0]
    assert await world.statuses(shift.id) == []
    resident = await world.app.services.residents.profile(world.person(0)[0])
    assert resident is not None
    await world.app.services.volunteer_desk.decide(ORGANISER, resident.id, True)
    assert t["approved"] in (await world.outbox.last(chat.user_id)).text
    replies = await chat.press(t["book"])
    assert t["booked"] in replies[0]


async def test_book_shows_the_card_and_booking_twice_says_already_booked(world: World) -> None:
    t = world.t
    shift = await world.shift(2)
    chat = await world.volunteer()
    await chat.send("/volunteer")
    replies = await chat.press(t["browse"])
    assert "垃圾分类督导" in replies[0] and t["two_free"] in replies[0]
    replies = await chat.press("垃圾分类督导")
    card = replies[-1]
    assert "3号楼垃圾房" in card and "请穿志愿者马甲" in card and "王老师 13800000000" in card
    assert ("11月28日 周六 10:00–12:00" if world.lang.locale == "zh_Hans" else "Sat 28 Nov 10:00–12:00") in card
    replies = await chat.press(t["book"])
    assert t["booked"] in replies[0] and t["one_free"] in replies[0]
    assert t["book"] not in " ".join(chat.labels()) and t["cancel"] in chat.labels()
    # A second press on an old card (or a forged one): already booked, nothing added.
    replies = await chat.press_data(f"1|vo.book|{shift.id}")
    assert t["already"] in replies[0]
    assert await world.statuses(shift.id) == [BookingStatus.BOOKED]


async def test_full_shift_offers_the_waitlist_with_the_position(world: World) -> None:
    t = world.t
    shift = await world.shift(1)
    first, second, third = [await world.volunteer(i) for i in range(3)]
    await world.open(first)
    await first.press(t["book"])
    await world.open(second)  # the card of a full shift offers the waitlist, with the place it would give
    assert t["book"] not in " ".join(second.labels()) and t["join1"] in " ".join(second.labels())
    replies = await second.press(t["join1"])
    assert t["waiting1"] in replies[0]
    # A card opened before the shift filled still says 报名: pressing it says it is full and offers the waitlist.
    await world.open(third)
    replies = await third.press_data(f"1|vo.book|{shift.id}")
    assert t["full"] in replies[0] and t["join2"] in " ".join(third.labels())
    replies = await third.press(t["join2"])
    assert t["waiting2"] in replies[0]
    assert await world.statuses(shift.id) == [BookingStatus.BOOKED, BookingStatus.WAITING, BookingStatus.WAITING]


async def test_cancel_offers_the_place_to_the_first_waiting_who_confirms(world: World) -> None:
    t = world.t
    shift = await world.shift(1)
    first, second, third = [await world.volunteer(i) for i in range(3)]
    await world.app.services.volunteers.book(first.user_id, shift.id)
    await world.app.services.volunteers.book(second.user_id, shift.id)
    await world.app.services.volunteers.book(third.user_id, shift.id)
    await world.open(first)
    replies = await first.press(t["cancel"])
    assert t["sure"] in replies[0]
    replies = await first.press(t["yes_cancel"])
    assert t["cancelled"] in replies[0]
    offer = await world.outbox.last(second.user_id)
    assert t["offer"] in offer.text and "垃圾分类督导" in offer.text
    await world.outbox.deliver(second)
    replies = await second.press(t["confirm"])
    assert t["confirmed"] in replies[0]
    statuses = await world.statuses(shift.id)
    assert statuses == [BookingStatus.CANCELLED, BookingStatus.BOOKED, BookingStatus.WAITING]
    assert await world.outbox.to(third.user_id) == []  # the third still waits, nobody asked them


async def test_offer_not_confirmed_in_time_goes_to_the_next_waiting(world: World) -> None:
    t = world.t
    shift = await world.shift(1)
    first, second, third = [await world.volunteer(i) for i in range(3)]
    for chat in (first, second, third):
        await world.app.services.volunteers.book(chat.user_id, shift.id)
    await world.open(first)
    await first.press(t["cancel"])
    await first.press(t["yes_cancel"])
    await world.outbox.deliver(second)
    world.clock.advance(hours=2, minutes=1)  # the offer stood for two hours
    await world.app.run_due_jobs(world.clock())
    assert t["lapsed"] in (await world.outbox.last(second.user_id)).text
    assert t["offer"] in (await world.outbox.last(third.user_id)).text
    replies = await second.press(t["confirm"])  # too late
    assert t["offer_gone"] in replies[0]
    await world.outbox.deliver(third)
    replies = await third.press(t["confirm"])
    assert t["confirmed"] in replies[0]
    statuses = await world.statuses(shift.id)
    assert statuses == [BookingStatus.CANCELLED, BookingStatus.LAPSED, BookingStatus.BOOKED]


async def test_cancel_after_cutoff_is_refused_and_i_cant_come_frees_the_place(world: World) -> None:
    t = world.t
    shift = await world.shift(1)  # Saturday 10:00; cancelling oneself until Friday 22:00
    chat, waiting = await world.volunteer(0), await world.volunteer(1)
    await world.app.services.volunteers.book(chat.user_id, shift.id)
    await world.app.services.volunteers.book(waiting.user_id, shift.id)
    world.clock.advance(hours=40)  # Saturday 02:00
    await world.open(chat)
    replies = await chat.press(t["cancel"])
    assert t["past_cutoff"] in replies[0] and t["cant"] in replies[0]
    assert await world.statuses(shift.id) == [BookingStatus.BOOKED, BookingStatus.WAITING]
    replies = await chat.press(t["cant"])
    assert t["cant_done"] in replies[0]
    told = await world.outbox.last(ORGANISER)
    assert told.template == "volunteers/desk/late_cancel" and world.person(0)[1] in told.text
    assert t["offer"] in (await world.outbox.last(waiting.user_id)).text
    assert await world.statuses(shift.id) == [BookingStatus.CANCELLED, BookingStatus.OFFERED]


async def test_check_in_refuses_wrong_expired_and_other_codes_then_accepts_the_right_one(world: World) -> None:
    t = world.t
    shift = await world.shift(2)
    other = await world.shift(2, title="敬老院陪伴", track=None)
    chat = await world.volunteer()
    await world.app.services.volunteers.book(chat.user_id, shift.id)
    world.clock.advance(hours=47, minutes=40)  # 20 minutes before the start
    await world.open(chat)
    replies = await chat.press(t["check_in"])
    assert t["ask_code"] in replies[0]
    prompt = [o for o in chat.sent if isinstance(o, OutMessage)][-1]
    assert prompt.reply_keyboard[0][0].request_location and t["location"] in prompt.reply_keyboard[0][0].text
    now = world.clock()
    valid = {
        checkin_code(shift.secret, shift.id, now),
        checkin_code(shift.secret, shift.id, now - timedelta(minutes=1)),
    }
    wrong = next(c for c in ("0000", "1111", "2222") if c not in valid)
    replies = await chat.send(wrong)
    assert t["wrong"] in replies[0] and t["left4"] in replies[0]
    expired = next(
        code
        for back in range(2, 30)
        if (code := checkin_code(shift.secret, shift.id, now - timedelta(minutes=back))) not in valid
    )
    replies = await chat.send(expired)  # a code shown two minutes ago or more
    assert t["wrong"] in replies[0] and t["left3"] in replies[0]
    replies = await chat.send(checkin_code(other.secret, other.id, now))
    assert t["other"] in replies[0]
    replies = await chat.send(checkin_code(shift.secret, shift.id, now))
    assert t["checked_in"] in replies[0]
    assert t["check_out"] not in " ".join(chat.labels())  # before the start there is nothing to check out of
    assert chat.sent[-2].remove_reply_keyboard  # type: ignore[union-attr]
    replies = await chat.send("1234")  # the dialog is over: the text is not taken for a code
    assert t["wrong"] not in replies[0]


async def test_check_in_stops_after_five_wrong_codes_and_cancel_leaves_the_dialog(world: World) -> None:
    t = world.t
    shift = await world.shift(2)
    chat = await world.volunteer()
    await world.app.services.volunteers.book(chat.user_id, shift.id)
    world.clock.advance(hours=47, minutes=40)
    await world.open(chat)
    await chat.press(t["check_in"])
    replies = await chat.send("12")  # a mistyped code counts as a try, too
    assert t["left4"] in replies[0]
    await chat.send("/cancel")
    assert t["had_dialog"] in chat.last().text
    assert chat.sent[-1].remove_reply_keyboard  # type: ignore[union-attr]  # the "send my location" key goes too
    replies = await chat.send("123456")  # no dialog any more: not taken for a code
    assert t["wrong"] not in replies[0]
    await chat.press(t["check_in"])
    valid = {checkin_code(shift.secret, shift.id, world.clock() - timedelta(minutes=m)) for m in (0, 1)}
    wrong = [c for c in ("1111", "2222", "3333", "4444", "5555", "6666") if c not in valid][:4]
    for code in wrong:
        replies = await chat.send(code)
    assert t["no_tries"] in replies[0]
    replies = await chat.send(checkin_code(shift.secret, shift.id, world.clock()))  # the dialog ended
    assert t["wrong"] not in replies[0] and t["checked_in"] not in replies[0]
    await chat.press(t["check_in"])
    replies = await chat.send(checkin_code(shift.secret, shift.id, world.clock()))
    assert t["too_many"] in replies[0] and "王老师 13800000000" in replies[0]


async def test_notice_buttons_open_the_activity_and_my_hours(world: World) -> None:
    t = world.t
    shift = await world.shift(2)
    chat = await world.volunteer()
    replies = await chat.press_data(f"1|vo.act|{shift.activity_id}")
    assert "垃圾分类督导" in replies[0] and t["activity"] in replies[0] and t["two_free"] in replies[0]
    replies = await chat.press("垃圾分类督导")
    assert t["book"] in " ".join(chat.labels())
    replies = await chat.press_data("1|vo.hours")
    assert t["waiting_hours"] not in replies[-1] and "/volunteer" in replies[-1]


async def test_check_in_by_location_too_far_then_near(world: World) -> None:
    t = world.t
    shift = await world.shift(2)
    chat = await world.volunteer()
    await world.app.services.volunteers.book(chat.user_id, shift.id)
    world.clock.advance(hours=47, minutes=40)
    await world.open(chat)
    await chat.press(t["check_in"])
    replies = await chat.send_location(31.25, 121.50)
    assert t["too_far"] in replies[0]
    replies = await chat.send_location(PLACE[0] + 0.0005, PLACE[1])  # about 55 m away
    assert t["checked_in"] in replies[0]
    world.clock.advance(hours=1)  # 10:40: service counts from the start at 10:00, so 40 minutes
    await world.open(chat)  # the card now offers check-out
    await chat.press(t["check_out"])
    replies = await chat.send_location(PLACE[0], PLACE[1])
    assert (
        t["checked_out"] in replies[0]
        and ("约 0.7 小时" if world.lang.locale == "zh_Hans" else "About 0.7 h") in replies[0]
    )


async def test_hours_approved_credit_points_once_and_show_in_myhours_and_certificate(world: World) -> None:
    t = world.t
    shift = await world.shift(2)
    chat = await world.volunteer()
    await world.app.services.volunteers.book(chat.user_id, shift.id)
    replies = await chat.send("/certificate")
    assert t["no_hours"] in replies[0]
    world.clock.advance(hours=47, minutes=40)
    await world.open(chat)
    await chat.press(t["check_in"])
    await chat.send(checkin_code(shift.secret, shift.id, world.clock()))
    world.clock.advance(hours=2, minutes=30)  # the shift ended at 12:00
    await world.app.run_due_jobs(world.clock())
    replies = await chat.send("/myhours")
    assert t["waiting_hours"] in replies[0]
    desk = world.app.services.volunteer_desk
    assert await desk.approve_all(ORGANISER, shift.id) == (1, 120)
    assert (await world.app.services.points.overview(chat.user_id)).balance == 4
    assert await desk.approve_all(ORGANISER, shift.id) == (0, 0)
    assert (await world.app.services.points.overview(chat.user_id)).balance == 4
    approved = await world.outbox.last(chat.user_id)
    assert t["hours_ok"] in approved.text and t["points4"] in approved.text
    replies = await chat.send("/myhours")
    assert t["approved_total"] in replies[0] and t["year"] in replies[0] and t["to_next"] in replies[0]
    assert t["waiting_hours"] not in replies[0]

    replies = await chat.send("/certificate")
    assert t["cert"] in replies[0]
    number = re.search(r"ZYFW-2026-\d{6}-[A-Z0-9]{4}", replies[0])
    assert number is not None
    (pdf,) = chat.documents()  # the certificate itself, in the reader's language, named by its number
    assert pdf.filename == f"{number.group()}.pdf"
    text = "".join(page.extract_text() for page in PdfReader(pdf.document).pages)
    assert number.group() in text and "2.0" in text
    stranger = FakeChat(world.app.core, user_id=9999, first_name="路人", language_code=world.lang.telegram)
    replies = await stranger.send(f"/checkcert {number.group().lower()}")
    assert t["valid"] in replies[0] and t["masked"] in replies[0] and t["cert_hours"] in replies[0]
    assert "示范社区" in replies[0]
    replies = await stranger.send("/checkcert ZYFW-2026-999999-ABCD")
    assert t["unknown"] in replies[0]


async def test_forged_button_with_someone_elses_booking_is_refused_and_changes_nothing(world: World) -> None:
    t = world.t
    shift = await world.shift(1)
    owner, other = await world.volunteer(0), await world.volunteer(1)
    booked = await world.app.services.volunteers.book(owner.user_id, shift.id)
    await world.app.services.volunteers.book(other.user_id, shift.id)
    for action in ("cxl", "cant", "yes", "no"):
        replies = await other.press_data(f"1|vo.{action}|{booked.booking.id}")
        assert t["not_yours"] in replies[0]
    assert await world.statuses(shift.id) == [BookingStatus.BOOKED, BookingStatus.WAITING]
    async with make_sessionmaker(world.app.engine)() as session:
        refusals = (await session.scalars(select(AuditLogRow).where(AuditLogRow.allowed.is_(False)))).all()
    assert {r.action for r in refusals if r.actor_telegram_id == other.user_id} == {"vo.cxl", "vo.cant", "vo.yes",
                                                                                   "vo.no"}  # fmt: skip


async def test_browse_filters_by_day_and_track(world: World) -> None:
    t = world.t
    await world.shift(2, in_hours=3, title="今天的督导")  # Thursday 13:00
    await world.shift(2, in_hours=26, title="明天的巡查", track="civilised")  # Friday 12:00
    await world.shift(2, in_hours=24 * 8, title="下周的植树", track="garden")
    chat = await world.volunteer()
    await chat.send("/volunteer")
    replies = await chat.press(t["browse"])
    assert all(title in replies[0] for title in ("今天的督导", "明天的巡查", "下周的植树"))
    replies = await chat.press(t["today"])
    assert "今天的督导" in replies[0] and "明天的巡查" not in replies[0]
    replies = await chat.press(t["tomorrow"])
    assert "明天的巡查" in replies[0] and "今天的督导" not in replies[0]
    replies = await chat.press(t["week"])
    assert "今天的督导" in replies[0] and "明天的巡查" in replies[0] and "下周的植树" not in replies[0]
    replies = await chat.press(t["garden"])
    assert "下周的植树" not in replies[0]  # garden, but not this week
    replies = await chat.press(t["two_weeks"])  # the track filter stays

    assert "下周的植树" in replies[0] and "今天的督导" not in replies[0]


async def test_my_shifts_when_empty_offers_the_upcoming_shifts_right_there(world: World) -> None:
    """ "My shifts" with nothing booked says to look at the upcoming shifts: its button is on that message (it was
    only one screen back, behind 返回)."""
    t = world.t
    await world.shift(2, in_hours=26, title="明天的巡查")
    chat = await world.volunteer()
    await chat.send("/volunteer")
    await chat.press(t["mine"])
    assert any(t["browse"] in label for label in chat.labels())
    replies = await chat.press(t["browse"])
    assert "明天的巡查" in replies[0]
    await chat.press("明天的巡查")
    await chat.press(t["book"])
    await chat.send("/volunteer")
    replies = await chat.press(t["mine"])
    assert "明天的巡查" in replies[0] and not any(t["browse"] in label for label in chat.labels())


async def test_browse_marks_a_shift_past_its_cut_off_as_closed_not_free(world: World) -> None:
    """Booking closes 12 h before the start: such a shift was listed with its free places, and only its card said
    booking had closed."""
    t = world.t
    await world.shift(2, in_hours=3, title="马上开始的督导")
    await world.shift(2, in_hours=26, title="明天的巡查")
    chat = await world.volunteer()
    await chat.send("/volunteer")
    replies = await chat.press(t["browse"])
    assert replies[0].count(t["closed"]) == 1 and replies[0].count(t["two_free"]) == 1
    assert replies[0].index("马上开始的督导") < replies[0].index(t["closed"]) < replies[0].index("明天的巡查")
    soon, tomorrow = (next(label for label in chat.labels() if title in label) for title in ("马上开始", "明天的巡查"))
    assert soon.endswith(t["closed"]) and tomorrow.endswith(t["two_free_button"])


async def test_organiser_changes_reminders_and_stars_reach_the_volunteer_in_their_language(world: World) -> None:
    t, desk = world.t, world.app.services.volunteer_desk
    shift = await world.shift(2)
    chat, other = await world.volunteer(0), await world.volunteer(1)
    await world.app.services.volunteers.book(chat.user_id, shift.id)
    await world.app.services.volunteers.book(other.user_id, shift.id)
    world.clock.advance(hours=24, minutes=1)  # Friday 10:01: a day before the start
    await world.app.run_due_jobs(world.clock())
    reminder = await world.outbox.last(chat.user_id)
    assert t["reminder"] in reminder.text and t["cant"] in reminder.labels()[0]
    await world.outbox.deliver(chat)
    replies = await chat.press(t["cant"])  # asked once more: the place would go to the waitlist at once
    assert t["cant_sure"] in replies[0] and await world.statuses(shift.id) == [BookingStatus.BOOKED] * 2
    await chat.press(t["keep"])  # the message becomes the shift's card again
    assert await world.statuses(shift.id) == [BookingStatus.BOOKED] * 2
    mine = (await world.app.services.volunteers.card(chat.user_id, shift.id)).mine
    assert mine is not None
    await chat.press_data(f"1|vo.cant|{mine.id}")  # the reminder's button once more
    replies = await chat.press(t["cant_yes"])  # before the cut-off: not a late cancellation
    assert t["cant_early"] in replies[0] and t["cant_done"] not in replies[0]
    assert all(q.template != "volunteers/desk/late_cancel" for q in await world.outbox.to(ORGANISER))

    start = shift.starts_at + timedelta(hours=4)
    await desk.move_shift(ORGANISER, shift.id, start, start + timedelta(hours=2))
    assert t["moved"] in (await world.outbox.last(other.user_id)).text
    await desk.move_place(ORGANISER, shift.activity_id, "社区广场")
    assert t["place_moved"] in (await world.outbox.last(other.user_id)).text
    await desk.message(ORGANISER, shift.id, "请带好<手套>")
    message = await world.outbox.last(other.user_id)
    assert t["message"] in message.text and "请带好&lt;手套&gt;" in message.text
    await desk.cancel_shift(ORGANISER, shift.id)
    assert t["shift_cancelled"] in (await world.outbox.last(other.user_id)).text

    # A community that counts a star from one hour: the first approved shift announces it, once.
    community = await world.app.services.communities.by_code("demo")
    assert community is not None
    async with SqlUnitOfWork(make_sessionmaker(world.app.engine)) as uow:
        await uow.volunteers.save_settings(community.id, False, Stars((1, 5)), world.clock())
        await uow.commit()
    served = await world.shift(2, in_hours=1, cutoff=0)
    await world.app.services.volunteers.book(other.user_id, served.id)
    world.clock.advance(minutes=45)
    await world.open(other)
    await other.press(t["check_in"])
    await other.send(checkin_code(served.secret, served.id, world.clock()))
    world.clock.advance(hours=2, minutes=30)
    await world.app.run_due_jobs(world.clock())
    await desk.approve_all(ORGANISER, served.id)
    assert t["star"] in (await world.outbox.last(other.user_id)).text

    # Registration declined by the organiser.
    await desk.set_approval(ORGANISER, True)
    await world.app.services.volunteers.register(world.person(2)[0], "", "")
    resident = await world.app.services.residents.profile(world.person(2)[0])
    assert resident is not None
    await desk.decide(ORGANISER, resident.id, False)
    assert t["declined"] in (await world.outbox.last(world.person(2)[0])).text


AT = datetime(2026, 11, 27, 22, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
REFUSALS: dict[str, dict[str, object]] = {
    "empty": {}, "too_long": {"limit": 61}, "ends_before_start": {}, "shift_too_long": {"hours": 12},
    "starts_in_past": {}, "too_far": {"days": 180}, "bad_capacity": {"limit": 500}, "bad_points": {"limit": 20},
    "bad_cutoff": {"limit": 72}, "bad_repeat": {"limit": 12}, "not_volunteer": {}, "not_approved": {},
    "suspended": {}, "shift_cancelled": {}, "started": {}, "past_cutoff": {"cutoff": AT}, "already_waiting": {},
    "already_booked": {}, "clash": {"starts_at": AT, "ends_at": AT + timedelta(hours=2)}, "full": {"capacity": 7},
    "not_active": {}, "cancel_past_cutoff": {"cutoff": AT, "booking": 1}, "offer_gone": {}, "not_booked": {},
    "already_checked_in": {"at": AT}, "checkin_closed": {}, "no_place_coordinates": {},
    "too_far_away": {"metres": 731, "radius": 200}, "too_many_codes": {"attempts": 5, "contact": "王老师"},
    "code_other_shift": {"title": "敬老院陪伴", "left": 2}, "code_wrong": {"left": 3}, "not_checked_in": {},
    "already_checked_out": {}, "no_hours": {}, "not_started": {}, "not_no_show": {}, "bad_minutes": {"limit": 24},
    "already_approved": {}, "not_served": {}, "over_shift": {"limit": 150},
}  # fmt: skip


async def test_every_refusal_reads_with_its_details(world: World) -> None:
    """Each VolunteerError code has its own explanation, with the numbers and times it carries."""
    texts = set()
    for code, context in REFUSALS.items():
        text = world.app.renderer.render(world.lang.locale, "volunteers/problem", {"code": code, **context})
        assert text and world.t["fallback"] not in text, code
        for value in context.values():
            if isinstance(value, int) and code != "cancel_past_cutoff":
                assert str(value if code != "over_shift" else "2.5") in text, (code, text)
        if "cutoff" in context or "at" in context:
            assert ("11月27日 周五 22:00" if world.lang.locale == "zh_Hans" else "Fri 27 Nov 22:00") in text
        texts.add(text)
    assert len(texts) == len(REFUSALS)
