"""志愿服务 end to end over HTTP against the emulator, through both real channels.

The organiser 刘主任 creates an activity with one shift in /activities, typing and tapping as a person would. The
issue's story — two volunteers book, one is waitlisted, one cancels, the other is promoted, both check in — cannot
end with both checked in on a shift of one place, so the shift has two: 小陈 (the demo volunteer) takes one, 老张
the other, and 王阿姨 (who registers through the volunteer menu first) is waitlisted at position 1. 老张 cancels
before the cut-off; 王阿姨 is offered the place in her chat and confirms. The organiser shows the rotating check-in
code; 小陈 and 王阿姨 read it from his chat and type it. The shift ends, the organiser approves the hours from the
notice and the roster, both are told "hours approved" with their points, and a second tap on "approve all" (on an
older message that still shows it) credits nobody again.

The bot's wall clock is set, not waited for: it runs from 09:00 of a chosen day in the community's zone, the shift
is 09:20–10:20 (check-in opens 30 minutes before), and after the check-ins the clock is set to just past the end
so the shift's end job runs on the next tick.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.config import Settings
from bot.sandbox.app import Sandbox, start_sandbox
from bot.sandbox.demo import ORGANISER_ID
from tests.e2e.conftest import StartSandbox
from tests.e2e.test_reports_http import buttons
from tests.support.outbox import settled
from tests.support.sandbox_user import SimResident

AUNT, VOLUNTEER, WORKER = 1000002, 1000004, 1000005  # 王阿姨 (resident), 小陈 (volunteer), 老张 (grid worker)
ZONE = ZoneInfo("Asia/Shanghai")  # the demo community's (the default) zone
TITLE = "楼道杂物清理"
PLACE = "5号楼一单元大堂"
POINTS_PER_HOUR = 3
CODE = re.compile(r"^(\d{4})$", re.MULTILINE)
CERTIFICATE = re.compile(r"ZYFW-\d{4}-\d+-[A-Z0-9]+")


class SetClock:
    """The bot's wall clock: real time running on from a moment the test chose, set forward when the test says."""

    def __init__(self, start: datetime) -> None:
        self.offset = timedelta()
        self.set(start)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)


@pytest.fixture
def clock() -> SetClock:
    """Tomorrow, 09:00 in the community's zone: daytime, out of anyone's quiet hours."""
    day = datetime.now(ZONE).date() + timedelta(days=1)
    return SetClock(datetime.combine(day, time(9, 0), ZONE))


@pytest.fixture
def sandbox_for(sandbox_settings: Settings, clock: SetClock) -> StartSandbox:
    """The whole stack from an empty database, as in conftest, with the bot reading ``clock``."""

    def start(channel: str) -> AbstractAsyncContextManager[Sandbox]:
        return start_sandbox(sandbox_settings, port=0, channel=channel, fresh=True, clock=clock)

    return start


def local(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


async def answered(person: SimResident, act: Callable[[], object], expect: str, within: float = 5.0) -> dict[str, Any]:
    """Do ``act`` and wait for the bot's message (new or edited since) containing ``expect`` in the person's chat.
    Quicker than SimResident's send/press, which wait for half a second of silence after every step."""
    emulator = person.emulator
    before = emulator.events.version
    act()
    async with asyncio.timeout(within):
        while True:
            version = emulator.events.version
            for m in reversed(emulator.transcript(person.chat, after=before)["messages"]):
                if m["from_bot"] and expect in (m["text"] or m["caption"] or ""):
                    return dict(m)
            await emulator.wait_events(version, wait=within)


async def say(person: SimResident, text: str, expect: str) -> dict[str, Any]:
    """Type ``text``; the answer containing ``expect``."""
    return await answered(person, lambda: person.emulator.send_text(person.user_id, text), expect)


async def tap(person: SimResident, label: str, expect: str) -> dict[str, Any]:
    """Tap the newest button whose label contains ``label``; the answer containing ``expect``."""
    message = newest_with(person, label)
    tapped = label_on(message, label)

    def press() -> None:
        person.emulator.press_button(person.user_id, person.chat, message["message_id"], text=tapped)

    return await answered(person, press, expect)


def newest_with(person: SimResident, label: str) -> dict[str, Any]:
    found = with_button(person, label)
    if found:
        return found[-1]
    raise AssertionError(f"no button {label!r} in {person.texts()[-3:]}")


def with_button(person: SimResident, label: str) -> list[dict[str, Any]]:
    """The messages in the person's chat with a button whose label contains ``label``."""
    return [m for m in person.emulator.transcript(person.chat)["messages"] if label_on(m, label)]


def label_on(message: dict[str, Any], label: str) -> str | None:
    """The full label of the message's button containing ``label``, if there is one."""
    return next((text for text in buttons(message) if label in text), None)


async def create_activity(organiser: SimResident, start: datetime, end: datetime) -> None:
    """刘主任's whole /activities dialog: a new activity with one shift of two places, 3 points an hour, the
    cut-off at the start (0 hours), once."""
    await say(organiser, "/activities", "点班次查看名单")
    await tap(organiser, "新建活动", "新建志愿活动")
    await tap(organiser, "综合", "活动名称是什么")
    await say(organiser, TITLE, "简单介绍一下活动内容")
    await tap(organiser, "跳过", "在哪里集合")
    await say(organiser, PLACE, "不需要按位置签到")
    await tap(organiser, "跳过", "现场联系人和电话")
    await say(organiser, "刘主任 021-5555 0101", "什么时候开始")
    await say(organiser, local(start), "几点结束")
    await say(organiser, local(end), "需要几位志愿者")
    await say(organiser, "2", "每服务 1 小时奖励多少文明积分")
    await tap(organiser, f"{POINTS_PER_HOUR} 分", "开始前多少小时截止报名")
    await say(organiser, "0", "给志愿者的备注")
    await tap(organiser, "跳过", "每周同一时间重复几周")
    summary = await tap(organiser, "只办一次", "请确认")
    assert f"活动：{TITLE}" in summary["text"] and f"地点：{PLACE}" in summary["text"]
    assert f"名额：2 人 · 每小时文明积分 {POINTS_PER_HOUR} 分 · " in summary["text"], summary["text"]
    await tap(organiser, "确认创建", f"已创建志愿活动「{TITLE}」，共 1 个班次")


async def open_shift(person: SimResident) -> dict[str, Any]:
    """/volunteer, the upcoming shifts, then the shift: its card."""
    await say(person, "/volunteer", "志愿服务")
    await tap(person, "近期班次", "近期志愿服务班次")
    return await tap(person, TITLE, "报名和自行取消截止")


async def register_from_menu(person: SimResident) -> None:
    """Not a volunteer yet: /volunteer explains, and registering without the optional details takes two taps."""
    await say(person, "/volunteer", "和邻居一起为社区出份力")
    await tap(person, "报名成为志愿者", "报名后马上就可以选班次")
    await tap(person, "直接报名", "欢迎成为志愿者")


async def check_in(person: SimResident, organiser: SimResident) -> None:
    """On the shift's card, the volunteer taps 签到 and types the code the organiser's chat shows now."""
    await tap(person, "签到", "请输入组织者现场出示的 4 位签到码")
    shown = await organiser.wait_for("每分钟自动更换")
    code = CODE.search(shown["text"])
    assert code is not None, shown["text"]
    await say(person, code.group(1), "签到成功")


async def press_answered(person: SimResident, label: str) -> dict[str, Any]:
    """Tap the newest button labelled ``label`` in the person's chat; what the bot answered to the tap."""
    emulator = person.emulator
    message = newest_with(person, label)
    query = emulator.press_button(person.user_id, person.chat, message["message_id"], text=label_on(message, label))
    async with asyncio.timeout(5):
        while not (answer := emulator.callback_answer(query))["answered"]:
            await emulator.wait_events(emulator.events.version, wait=0.1)
    return answer


async def ticked(box: Sandbox, now: datetime) -> None:
    """One run of the periodic work at ``now``; its messages delivered."""
    await box.app.tick(now)
    box.channel.inbox.dispatcher.wake()
    await settled(box.app)


async def hours_approved(person: SimResident, *, at_least: int = 0) -> list[str]:
    """The "hours approved" notices for this test's shift in the person's chat (小陈's chat also has those of the
    demo's past shifts), waiting for ``at_least`` of them."""
    async with asyncio.timeout(5):
        while True:
            version = person.emulator.events.version
            found = [t for t in person.texts() if "服务时长已认定" in t and f"「{TITLE}」" in t]
            if len(found) >= at_least:
                return found
            await person.emulator.wait_events(version, wait=5)


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_waitlisted_volunteer_promoted_checks_in_and_gets_points_once(
    sandbox_for: StartSandbox, clock: SetClock, channel: str
) -> None:
    async with sandbox_for(channel) as box:
        emulator, services = box.emulator, box.app.services
        organiser = SimResident(emulator, ORGANISER_ID)
        chen, aunt, worker = (SimResident(emulator, user) for user in (VOLUNTEER, AUNT, WORKER))
        await services.volunteers.register(WORKER, "", "")  # 老张 volunteers too (his registration is not the story)
        before = {p: (await services.points.overview(p)).balance for p in (VOLUNTEER, AUNT, WORKER)}
        start = clock().replace(second=0, microsecond=0) + timedelta(minutes=20)
        end = start + timedelta(hours=1)

        await create_activity(organiser, start, end)

        # 小陈 and 老张 take the two places; 王阿姨 registers through the menu and finds the shift full.
        cards = {}
        for person in (chen, worker):
            card = await open_shift(person)
            assert "👥 共 2 个名额" in card["text"] and buttons(card)[0] == "✅ 报名这个班次"
            cards[person.user_id] = await tap(person, "报名这个班次", "报名成功")
        assert "📍 签到" in buttons(cards[VOLUNTEER])  # check-in opens 30 minutes before the start: now
        await register_from_menu(aunt)
        await tap(aunt, "近期班次", "近期志愿服务班次")
        full = await tap(aunt, TITLE, "已报名 2，剩余 0")  # a full shift's card offers the waitlist at once
        assert buttons(full)[0] == "⏳ 加入候补（第 1 位）"
        waiting = await tap(aunt, "加入候补", "已加入候补")
        assert "您排在第 1 位" in waiting["text"] and "⏳ 您在候补名单第 1 位" in waiting["text"]

        # 老张 cancels before the cut-off: the place is offered to 王阿姨 in her chat, and she confirms.
        await tap(worker, "取消报名", "确定要取消这个班次的报名吗")
        await tap(worker, "确认取消", "已取消报名")
        offer = await aunt.wait_for("候补到位了")
        assert f"「{TITLE}」空出了一个名额" in offer["text"]
        assert buttons(offer) == ["✅ 确认参加", "让给下一位"]
        confirmed = await tap(aunt, "确认参加", "已确认参加")
        assert "📍 签到" in buttons(confirmed)

        # The roster; the organiser shows the check-in code in his chat and both volunteers type it.
        roster = await tap(organiser, "查看名单", f"📋 {TITLE}")
        assert "名额 2/2" in roster["text"] and "1. 小陈" in roster["text"] and "2. 王阿姨" in roster["text"]
        assert "老张" not in roster["text"] and "候补" not in roster["text"]
        await tap(organiser, "显示签到码", "每分钟自动更换")
        for person in (chen, aunt):
            await check_in(person, organiser)

        # The shift ends: whoever checked in is checked out at the end and the organiser is asked to approve.
        clock.set(end + timedelta(minutes=1))
        await ticked(box, clock())
        over = await organiser.wait_for("已结束，2 位志愿者的服务时长待认定")
        assert buttons(over) == ["✅ 认定服务时长"]
        await tap(organiser, "认定服务时长", "核定服务时长")  # the hours, from the notice
        await tap(organiser, "刷新", "2 人的服务时长待核定")  # and from the roster: two messages with "approve all"
        hours = await tap(organiser, "核定服务时长（2 人待核定）", "核定服务时长")
        assert "小陈：60 分钟" in hours["text"] and "王阿姨：60 分钟" in hours["text"]
        assert len(with_button(organiser, "全部通过（2 人）")) == 2

        first = await press_answered(organiser, "全部通过（2 人）")
        assert first["text"] == "已认定 2 位志愿者共 120 分钟，积分已发放。"
        for person in (chen, aunt):
            (told,) = await hours_approved(person, at_least=1)
            assert "1 小时" in told and f"获得文明积分 {POINTS_PER_HOUR} 分" in told
        again = await press_answered(organiser, "全部通过（2 人）")  # the older message still shows the button
        assert again["text"] == "没有待认定的时长（可能已经认定过了）。"
        await ticked(box, clock())  # anything the second tap might have queued is delivered before counting
        assert with_button(organiser, "全部通过") == []
        assert len([t for t in organiser.texts() if "没有待核定的服务时长" in t and "小陈：60 分钟" in t]) == 2

        after = {p: (await services.points.overview(p)).balance for p in (VOLUNTEER, AUNT, WORKER)}
        assert after == {VOLUNTEER: before[VOLUNTEER] + POINTS_PER_HOUR, AUNT: before[AUNT] + POINTS_PER_HOUR,
                         WORKER: before[WORKER]}  # fmt: skip
        assert [len(await hours_approved(p)) for p in (chen, aunt)] == [1, 1]
        assert (await services.volunteers.hours(AUNT)).record.minutes == 60
        assert await services.points.check() == []
        assert emulator.flood_violations() == []


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])  # each library uploads the document its own way
async def test_certificate_sends_the_pdf_that_checkcert_confirms(sandbox_for: StartSandbox, channel: str) -> None:
    async with sandbox_for(channel) as box:
        chen = SimResident(box.emulator, VOLUNTEER)  # the demo volunteer has 7.5 approved hours of past service
        await chen.send("/certificate")
        issued = await chen.wait_for("志愿服务记录证明已开具")
        number = CERTIFICATE.search(issued["text"])
        assert number is not None and "累计服务时长：7.5 小时（3 个班次）" in issued["text"]
        document = await chen.wait_for(number.group(), document=True, within=15.0)
        assert number.group() in document["caption"]
        assert document["message"]["document"]["file_name"] == f"{number.group()}.pdf"
        async with aiohttp.ClientSession() as http, http.get(box.url + document["document_url"]) as response:
            assert response.status == 200
            assert (await response.read()).startswith(b"%PDF")
        await chen.send(f"/checkcert {number.group()}")
        checked = await chen.wait_for("证明有效")
        assert "志愿者：小**" in checked["text"] and "累计服务时长：7.5 小时" in checked["text"]
