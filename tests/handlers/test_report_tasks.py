"""Staff side of 问题台账, as transcripts: an assignee the bot cannot reach (the staff group is told so, with the
link that opens their /tasks), /tasks, reassigning, moving a deadline, refused stale buttons, and the resolution
note's minimum length — in Chinese and in English."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.conversation.incoming import ChatType
from bot.conversation.replies import OutMessage
from bot.domain.roles import Role
from storage.db import make_sessionmaker
from storage.models import AuditLogRow
from tests.handlers.test_reports import make_world, report
from tests.support.notices import Notices
from tests.support.reports import Clock, FakeDownloader, copy_db, jpeg_with_gps, png
from tests.support.transcript import FakeChat

STAFF_GROUP = -100777
WORKER, OTHER, ORGANISER, RESIDENT = 2001, 2003, 2002, 1001
NEWBIE = 2004  # a grid worker whose role was granted by Telegram id: he never opened the bot
LINK = "https://t.me/sicheng_bot?start=tasks"


@dataclass
class World:
    app: App
    clock: Clock
    outbox: Notices

    def chat(self, user_id: int, name: str, chat_id: int | None = None, language: str = "zh-hans") -> FakeChat:
        kind = ChatType.SUPERGROUP if chat_id else ChatType.PRIVATE
        return FakeChat(
            self.app.core, user_id=user_id, first_name=name, chat_id=chat_id, chat_type=kind, language_code=language
        )

    def group(self, user_id: int = WORKER, name: str = "张网格") -> FakeChat:
        return self.chat(user_id, name, STAFF_GROUP)


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[World]:
    db = copy_db(sqlite_template, tmp_path / "tasks.db")
    clock, files = Clock(), FakeDownloader()
    app = await make_world(db, tmp_path / "media", clock, files)
    s = app.services
    await s.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    community = await s.communities.by_code("demo")
    assert community is not None
    people = ((WORKER, "张网格"), (OTHER, "李网格"), (ORGANISER, "刘书记"), (RESIDENT, "王小明"))
    for tg, name in people:
        await s.residents.give_consent(tg, name, "zh_Hans")
        await s.residents.join(tg, community.id, community.buildings[0].id)
    for tg in (WORKER, OTHER, NEWBIE):  # NEWBIE: `sicheng admin grant 2004 grid_worker --community demo`
        await s.access.grant(tg, Role.GRID_WORKER, "demo", None)
    await s.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    await s.communities.link_group(STAFF_GROUP, "demo", "示范社区工作群", "staff")
    files.add("p1", jpeg_with_gps())
    files.add("p2", png())
    files.add("after", jpeg_with_gps(colour=(20, 160, 40)))
    yield World(app, clock, Notices(app))
    await app.aclose()


async def take(world: World, staff: FakeChat, who: str, report_id: int = 1) -> list[str]:
    """Accept from the card in the staff group and pick ``who``."""
    await staff.press_data((await world.outbox.card(f"report:{report_id}", STAFF_GROUP)).data("受理并指派"))
    return await staff.press(who)


async def audit(app: App, action: str) -> list[dict[str, object]]:
    async with make_sessionmaker(app.engine)() as session:
        rows = await session.scalars(select(AuditLogRow).where(AuditLogRow.action == action))
        return [dict(r.details) | {"actor": r.actor_telegram_id} for r in rows.all()]


async def test_assign_to_worker_who_never_started_tells_group_the_truth_and_link_opens_tasks(world: World) -> None:
    await report(world.chat(RESIDENT, "王小明"))
    staff = world.group()
    await staff.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("受理并指派"))
    assert staff.labels() == ["张网格", "李网格", "刘书记", "ID 2004"]  # the bot has no name for him yet
    replies = await staff.press("ID 2004")
    assert "R-2026-000001</b> 已受理，由 ID 2004 负责" in replies[0] and "已通知报告人。" in replies[0]
    assert "已通知责任人" not in replies[0]
    assert "ID 2004 还没有开始使用本机器人（或已把它屏蔽），我没法私聊通知他" in replies[0]
    assert f"请他用 Telegram 点开这个链接一次：{LINK}" in replies[0]
    assert staff.last().buttons == [[("📲 打开我的待办", LINK)]]
    card = await world.outbox.card("report:1", STAFF_GROUP)
    assert "责任人：ID 2004" in card.text and card.labels() == ["🛠 开始处理", "📷 整改完成", "🔀 改派", "📅 调整期限"]

    # He opens the link: language, consent, and straight to what is assigned to him.
    newbie = world.chat(NEWBIE, "老赵")
    replies = await newbie.send("/start tasks")
    assert newbie.labels() == ["中文", "English"]
    await newbie.press("中文")
    replies = await newbie.press("同意")
    assert "以后指派给您的问题，我都会在这里私聊通知您" in replies[0]
    assert "指派给我的问题（1 件）" in replies[1] and "R-2026-000001</b> · 乱扔垃圾/垃圾满溢 · 已受理" in replies[1]
    assert "期限：11月27日 10:00" in replies[1]
    replies = await newbie.press("R-2026-000001")
    assert "状态：已受理" in replies[-1] and "报告人：王小明" in replies[-1]
    assert newbie.labels() == ["🛠 开始处理", "📷 整改完成"]
    await newbie.press("整改完成")
    await newbie.send_photo("after")
    replies = await newbie.send("已清运垃圾并消杀")
    assert "R-2026-000001</b> 已标记为整改完成" in replies[0]
    assert (await world.outbox.card("report:1", STAFF_GROUP)).labels() == ["✅ 复查通过，销号", "🔁 未整改好，重新处理"]
    # From now on the bot knows his name, and a later assignment reaches him.
    await report(world.chat(RESIDENT, "王小明"), where=(31.3, 121.5))
    replies = await take(world, staff, "老赵", 2)
    assert "已通知责任人和报告人" in replies[0] and "还没有开始使用" not in replies[0]
    assert staff.last().buttons == []


async def test_unreachable_assignee_told_in_english_and_link_works_in_english(world: World) -> None:
    await world.app.services.residents.set_locale(WORKER, "en")
    await report(world.chat(RESIDENT, "王小明"))
    staff = world.chat(WORKER, "Zhang", STAFF_GROUP, language="en")
    await staff.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("受理并指派"))
    replies = await staff.press("ID 2004")
    assert "accepted; person responsible: ID 2004" in replies[0] and "The reporter has been told." in replies[0]
    assert "But ID 2004 has not started the bot yet (or has blocked it), so I cannot message them." in replies[0]
    assert f"Ask them to open this link in Telegram once: {LINK}" in replies[0]
    assert staff.last().buttons == [[("📲 Open my tasks", LINK)]]
    newbie = world.chat(NEWBIE, "Zhao", language="en")
    await newbie.send("/start tasks")
    await newbie.press("English")
    replies = await newbie.press("I agree")
    assert "From now on I will message you here about reports assigned to you" in replies[0]
    assert "Assigned to me (1)" in replies[1] and "due 27 Nov 10:00" in replies[1]
    await newbie.press("R-2026-000001")
    await newbie.press("Mark fixed")
    await newbie.send_photo("after")
    replies = await newbie.send("ok")
    assert "That note is too short (2 characters): please say what was done, at least 5 characters" in replies[0]
    replies = await newbie.send("Bins emptied")
    assert "marked fixed" in replies[0]


async def test_tasks_lists_my_open_reports_overdue_first(world: World) -> None:
    resident = world.chat(RESIDENT, "王小明")
    staff = world.group()
    await report(resident)
    world.clock.advance(hours=2)
    await report(resident, where=(31.3, 121.5))
    for rid in (1, 2):
        await take(world, staff, "张网格", rid)
    await world.app.services.report_desk.move_deadline(WORKER, 1, days=7)
    world.clock.advance(hours=25)  # report 2 (due 11月27日 12:00) is overdue; report 1 now due 12月4日 10:00
    worker = world.chat(WORKER, "张网格")
    replies = await worker.send("/tasks")
    lines = [line for line in replies[0].splitlines() if "R-2026" in line]
    assert lines == ["🚨 已逾期 <b>R-2026-000002</b> · 乱扔垃圾/垃圾满溢 · 已受理",
                     "📌 <b>R-2026-000001</b> · 乱扔垃圾/垃圾满溢 · 已受理"]  # fmt: skip
    assert "期限：11月27日 12:00" in replies[0] and "期限：12月4日 10:00" in replies[0]
    assert worker.labels() == ["📌 R-2026-000002", "📌 R-2026-000001"]
    replies = await world.chat(OTHER, "李网格").send("/tasks")
    assert "目前没有指派给您的问题" in replies[0]
    replies = await world.chat(WORKER, "张网格", STAFF_GROUP).send("/tasks")
    assert "R-2026" not in replies[0]  # a private list: not shown in the group


async def test_reassign_tells_old_and_new_assignee_and_reporter_and_is_audited(world: World) -> None:
    await report(world.chat(RESIDENT, "王小明"))
    await take(world, world.group(), "张网格")
    organiser = world.group(ORGANISER, "刘书记")
    await world.outbox.fresh()
    await organiser.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("改派"))
    assert "改派 <b>R-2026-000001</b>：请选择新的责任人（处理期限不变）" in organiser.last().text
    assert organiser.labels() == ["李网格", "刘书记", "ID 2004"]  # not the one handling it now
    replies = await organiser.press("李网格")
    assert "R-2026-000001</b> 已改由 李网格 负责，处理期限 11月27日 10:00" in replies[0]
    assert "已通知新、原责任人和报告人" in replies[0]
    told = {q.chat_id: q for q in await world.outbox.fresh()}
    assert "已改由 李网格 负责，您不用再处理了" in told[WORKER].text and told[WORKER].buttons == ()
    assert "您有新的待办：<b>R-2026-000001</b>" in told[OTHER].text
    assert told[OTHER].labels() == ["🛠 开始处理", "📷 整改完成"]
    assert "问题 <b>R-2026-000001</b>（乱扔垃圾/垃圾满溢）责任人已改为 李网格" in told[RESIDENT].text
    assert "责任人：李网格" in told[STAFF_GROUP].text and told[STAFF_GROUP].edit
    assert await audit(world.app, "report.reassign") == [
        {"report": "R-2026-000001", "move": "reassign", "to": "accepted", "from": WORKER, "assignee": OTHER,
         "actor": ORGANISER}]  # fmt: skip
    # The old assignee's buttons no longer work for him; /tasks is his list.
    replies = await world.chat(WORKER, "张网格").press_data(told[OTHER].data("整改完成"))
    assert "🚫" in replies[0]
    _, history = await world.app.services.reports.detail(RESIDENT, 1)
    assert [e.action for e in history] == ["submit", "accept", "reassign"]
    replies = await world.chat(RESIDENT, "王小明").send("/myreports")
    assert "李网格" in replies[0]


async def test_reassign_in_english(world: World) -> None:
    await world.app.services.residents.set_locale(ORGANISER, "en")
    await world.app.services.residents.set_locale(OTHER, "en")
    await report(world.chat(RESIDENT, "王小明"))
    await take(world, world.group(), "张网格")
    organiser = world.chat(ORGANISER, "Liu", STAFF_GROUP, language="en")
    await organiser.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("改派"))
    asked = "Reassign <b>R-2026-000001</b>: who is the new person responsible? (The deadline stays.)"
    assert asked in organiser.last().text
    replies = await organiser.press("李网格")
    assert "now has 李网格 as the person responsible, due 27 Nov 10:00" in replies[0]
    assert "The new and the previous person responsible and the reporter have been told." in replies[0]
    assert "New task for you: <b>R-2026-000001</b>" in (await world.outbox.last(OTHER)).text


async def test_deadline_plus_three_days_tells_reporter_and_assignee(world: World) -> None:
    await report(world.chat(RESIDENT, "王小明"))
    await take(world, world.group(), "张网格")
    organiser = world.group(ORGANISER, "刘书记")
    await world.outbox.fresh()
    await organiser.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("调整期限"))
    shown = organiser.last().text
    assert "调整 <b>R-2026-000001</b> 的处理期限（现在是 11月27日 10:00）" in shown
    assert "+1 天 → 11月28日 10:00" in shown and "+7 天 → 12月4日 10:00" in shown
    assert organiser.labels() == ["+1 天", "+3 天", "+7 天", "✏️ 输入日期"]
    replies = await organiser.press("+3 天")
    assert "R-2026-000001</b> 的处理期限已改为 <b>11月30日 10:00</b>" in replies[0]
    told = {q.chat_id: q for q in await world.outbox.fresh()}
    assert "处理期限调整为 11月30日 10:00" in told[RESIDENT].text
    assert "处理期限改为 <b>11月30日 10:00</b>" in told[WORKER].text
    assert "处理期限：11月30日 10:00" in told[STAFF_GROUP].text
    assert (await audit(world.app, "report.deadline"))[0]["deadline"] == "2026-11-30T02:00:00+00:00"
    # The old deadline's timers find it moved: nothing at 11月27日; the reminder comes at the new one.
    world.clock.advance(days=2)
    await world.app.services.jobs.run_due_jobs(world.clock())
    assert await world.outbox.fresh() == []
    world.clock.advance(days=2, minutes=1)
    await world.app.services.jobs.run_due_jobs(world.clock())
    assert ["已到处理期限（11月30日 10:00）" in q.text for q in await world.outbox.fresh()] == [True]


async def test_deadline_typed_in_private_after_wrong_tries(world: World) -> None:
    await report(world.chat(RESIDENT, "王小明"))
    staff = world.group()
    await take(world, staff, "张网格")
    await staff.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("调整期限"))
    replies = await staff.press("输入日期")
    assert replies[0] == "请在与我的私聊中输入新的日期。"  # the alert in the group; the question goes to private
    asked = [o for o in staff.sent if isinstance(o, OutMessage) and o.chat_id == WORKER]
    assert "请输入 <b>R-2026-000001</b> 新的处理期限（当天 23:59 截止），例如 12月5日" in asked[-1].text
    worker = world.chat(WORKER, "张网格")
    assert "没看懂这个日期" in (await worker.send("下周"))[0]
    assert "这个日期已经过去了" in (await worker.send("2026-11-20"))[0]
    assert "这个日期已经过去了" in (await worker.send("11月20日"))[0]  # last week, not next year
    assert "期限最多只能定在 90 天以内" in (await worker.send("2027-06-01"))[0]
    replies = await worker.send("12月5日")
    assert "处理期限已改为 <b>12月5日 23:59</b>" in replies[0]
    assert "处理期限调整为 12月5日 23:59" in (await world.outbox.last(RESIDENT)).text
    report_, _ = await world.app.services.reports.detail(RESIDENT, 1)
    assert report_.deadline is not None and report_.deadline.isoformat() == "2026-12-05T15:59:00+00:00"


async def test_deadline_typed_in_english(world: World) -> None:
    await world.app.services.residents.set_locale(WORKER, "en")
    await report(world.chat(RESIDENT, "王小明"))
    staff = world.chat(WORKER, "Zhang", STAFF_GROUP, language="en")
    await take(world, staff, "张网格")
    await staff.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("调整期限"))
    assert "Move the deadline of <b>R-2026-000001</b> (now 27 Nov 10:00)" in staff.last().text
    assert staff.labels() == ["+1 day", "+3 days", "+7 days", "✏️ Type a date"]
    await staff.press("Type a date")
    worker = world.chat(WORKER, "Zhang", language="en")
    assert "I could not read that as a date" in (await worker.send("soon"))[0]
    replies = await worker.send("2026-12-05")
    assert "The deadline of <b>R-2026-000001</b> is now <b>05 Dec 23:59</b>" in replies[0]


async def test_stale_button_on_old_card_points_staff_to_tasks(world: World) -> None:
    await report(world.chat(RESIDENT, "王小明"))
    stale = (await world.outbox.card("report:1", STAFF_GROUP)).data("受理并指派")
    staff = world.group()
    await take(world, staff, "张网格")
    replies = await staff.press_data(stale)
    assert "这个问题目前是“已受理”，这个操作已经不适用了。发送 /tasks 查看指派给您的问题。" in replies[0]
    assert "/myreports" not in replies[0]
    await world.app.services.residents.set_locale(WORKER, "en")
    replies = await world.chat(WORKER, "Zhang", STAFF_GROUP, language="en").press_data(stale)
    assert "that action no longer applies. Send /tasks for the reports assigned to you." in replies[0]


async def test_two_character_note_is_refused_and_asked_again(world: World) -> None:
    await report(world.chat(RESIDENT, "王小明"))
    await take(world, world.group(), "张网格")
    worker = world.chat(WORKER, "张网格")
    await world.outbox.deliver(worker)
    await worker.press("整改完成")
    await worker.send_photo("after")
    replies = await worker.send("ok")
    assert "整改说明太短了（2 个字）：请写清楚做了什么，至少 5 个字" in replies[0]
    assert "整改说明太短了（3 个字）" in (await worker.send("已修好"))[0]
    replies = await worker.send("已清运垃圾")
    assert "R-2026-000001</b> 已标记为整改完成" in replies[0]
    report_, _ = await world.app.services.reports.detail(RESIDENT, 1)
    assert report_.resolution_note == "已清运垃圾"
