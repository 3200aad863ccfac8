"""What a walk through 志愿服务 on the sandbox page stumbled on, in Chinese and in English: a resident who is not a
volunteer yet taps "book" on a shift, an organiser looks for the activities under 志愿服务, a volunteer checks in
before the start and tries to check out before it began, and the booking message does not promise a reminder that is
past."""

from __future__ import annotations

from bot.domain.volunteers import BookingStatus, checkin_code
from tests.handlers import test_volunteers
from tests.handlers.test_volunteers import ORGANISER, World
from tests.support.transcript import FakeChat

world = test_volunteers.world  # the same people, shift helpers and languages (zh_Hans, en)

TEXT = {
    "first": ("报名班次前，请先成为志愿者", "To book a shift, first become a volunteer"),
    "manage": ("管理志愿活动", "Manage activities"),
    "counts_from": ("服务时长从班次开始（", "Your service counts from the start of the shift ("),
    "nothing": ("本次没有可计的服务时长", "there is no service time to count"),
    "too_early": ("现在还不能签退", "you cannot check out yet"),
    "about": ("本次服务约", "h of service"),
    "remind_24": ("24 小时", "24 hours"),
    "in": ("签到成功", "Checked in"),
    "mine": ("我的班次", "My shifts"),
}


def say(world: World, key: str) -> str:
    zh, en = TEXT[key]
    return en if world.lang.locale == "en" else zh


async def test_book_before_registering_opens_the_registration_and_then_the_shift_books(world: World) -> None:
    t = world.t
    shift = await world.shift(2)
    chat = world.chat()  # registered in the community, not a volunteer
    await world.open(chat)
    replies = await chat.press(t["book"])
    assert say(world, "first") in replies[0] and t["consent"] in replies[0]
    assert await world.statuses(shift.id) == []
    replies = await chat.press("✅")  # register without details
    assert t["welcome"] in replies[0]
    await world.open(chat)
    replies = await chat.press(t["book"])
    assert t["booked"] in replies[0] and say(world, "remind_24") not in replies[0]
    assert await world.statuses(shift.id) == [BookingStatus.BOOKED]


async def test_organiser_finds_the_activities_under_volunteer_and_a_volunteer_does_not(world: World) -> None:
    await world.shift(2, title="楼道清理")
    organiser = FakeChat(world.app.core, user_id=ORGANISER, first_name="刘书记", language_code="zh-hans")
    await organiser.send("/volunteer")
    assert any("管理志愿活动" in label for label in organiser.labels())
    replies = await organiser.press("管理志愿活动")
    assert "楼道清理" in replies[0] and "新建活动" in " ".join(organiser.labels())
    volunteer = await world.volunteer()
    await volunteer.send("/volunteer")
    assert not any(say(world, "manage") in label for label in volunteer.labels())


async def test_check_out_before_the_start_is_refused_with_the_start_time(world: World) -> None:
    t = world.t
    shift = await world.shift(2)
    chat = await world.volunteer()
    await world.app.services.volunteers.book(chat.user_id, shift.id)
    world.clock.advance(hours=47, minutes=40)  # 20 minutes before the start
    await world.open(chat)
    await chat.press(t["check_in"])
    replies = await chat.send(checkin_code(shift.secret, shift.id, world.clock()))
    assert t["checked_in"] in replies[0] and say(world, "counts_from") in replies[0]
    assert t["check_out"] not in " ".join(chat.labels())  # nothing to close before the start
    replies = await chat.press_data(f"1|vo.out|{shift.id}")  # an old card's button
    assert say(world, "too_early") in " ".join(replies)
    booking = (await world.app.services.volunteers.card(chat.user_id, shift.id)).mine
    assert booking is not None and booking.checked_out_at is None


async def test_check_out_after_serving_tells_the_hours_and_no_early_hint(world: World) -> None:
    t = world.t
    shift = await world.shift(2, in_hours=0.25, cutoff=0)
    chat = await world.volunteer()
    await world.app.services.volunteers.book(chat.user_id, shift.id)
    world.clock.advance(minutes=20)  # the shift began five minutes ago: no longer "upcoming", but among mine
    await chat.send("/volunteer")
    await chat.press(say(world, "mine"))
    await chat.press("垃圾分类督导")
    await chat.press(t["check_in"])
    replies = await chat.send(checkin_code(shift.secret, shift.id, world.clock()))
    assert say(world, "in") in replies[0] and say(world, "counts_from") not in replies[0]
    world.clock.advance(minutes=90)
    await chat.press(t["check_out"])
    replies = await chat.send(checkin_code(shift.secret, shift.id, world.clock()))
    assert t["checked_out"] in replies[0] and say(world, "about") in replies[0]
    assert "1.5" in replies[0] and say(world, "nothing") not in replies[0]
