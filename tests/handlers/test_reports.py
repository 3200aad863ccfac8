"""随手拍 / 问题台账 dialog transcripts: report, +1, reject, resolve → verify / reopen, timers, restart, refusals."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from bot.app import App, build_app
from bot.config import DatabaseSettings, FilesSettings, Settings
from bot.conversation.incoming import ChatType
from bot.conversation.replies import OutEdit, Outgoing, OutMessage, OutPhoto
from bot.domain.messaging import OutboxStatus
from bot.domain.roles import Role
from bot.services.report_actions import FOLLOWUP_OK
from tests.support.notices import Notices, Queued
from tests.support.outbox import FakeTelegram, dispatch_all, outbox_rows
from tests.support.reports import Clock, FakeDownloader, copy_db, jpeg_with_gps, png, read
from tests.support.transcript import FakeChat

STAFF_GROUP = -100777
WORKER, ORGANISER, RESIDENT, NEIGHBOUR = 2001, 2002, 1001, 1002
HOME = (31.2304, 121.4737)
CLOSE_BY = (31.2310, 121.4740)  # about 70 m away


@dataclass
class World:
    app: App
    clock: Clock
    files: FakeDownloader
    media: Path
    outbox: Notices

    def chat(self, user_id: int, name: str = "小李", chat_id: int | None = None) -> FakeChat:
        kind = ChatType.SUPERGROUP if chat_id else ChatType.PRIVATE
        return FakeChat(self.app.core, user_id=user_id, first_name=name, chat_id=chat_id, chat_type=kind)


async def make_world(db: Path, media: Path, clock: Clock, files: FakeDownloader) -> App:
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{db}"), files=FilesSettings(root=media))
    return await build_app(settings, clock=clock, bot_username="sicheng_bot", downloader=files)


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[World]:
    db = copy_db(sqlite_template, tmp_path / "reports.db")
    clock, files = Clock(), FakeDownloader()
    app = await make_world(db, tmp_path / "media", clock, files)
    s = app.services
    await s.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    community = await s.communities.by_code("demo")
    assert community is not None
    for tg, name in ((WORKER, "张网格"), (ORGANISER, "刘书记"), (RESIDENT, "王小明"), (NEIGHBOUR, "赵阿姨")):
        await s.residents.give_consent(tg, name, "zh_Hans")
        await s.residents.join(tg, community.id, community.buildings[0].id)
    await s.access.grant(WORKER, Role.GRID_WORKER, "demo", None)
    await s.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    await s.communities.link_group(STAFF_GROUP, "demo", "示范社区工作群", "staff")
    files.add("p1", jpeg_with_gps())
    files.add("p2", png())
    files.add("after", jpeg_with_gps(colour=(20, 160, 40)))
    yield World(app, clock, files, tmp_path / "media", Notices(app))
    await app.aclose()


def to_chat(sent: list[Outgoing], chat_id: int) -> list[OutMessage | OutPhoto]:
    """Replies (rendered for the update) that went to ``chat_id``."""
    return [o for o in sent if isinstance(o, OutMessage | OutPhoto) and o.chat_id == chat_id]


async def report(
    chat: FakeChat, *, where: tuple[float, float] = HOME, text: str = "2号楼门口垃圾桶满了，垃圾散落一地"
) -> str:
    """The whole reporting dialog with two photos and a location; returns the confirmation."""
    await chat.send("/report")
    await chat.press("乱扔垃圾")
    await chat.send_photo("p1", as_file=True)
    await chat.send_photo("p2")
    await chat.press("照片发完了")
    await chat.send_location(*where)
    await chat.send(text)
    await chat.press("显示我的称呼")
    return (await chat.press("确认提交"))[0]


async def test_whole_report_flow_with_photos_location_and_staff_post(world: World) -> None:
    chat = world.chat(RESIDENT, "王小明")
    replies = await chat.send("/report")
    assert "请选择问题类别" in replies[0] and "🧹 卫生城市：乱扔垃圾/垃圾满溢" in replies[0]
    assert "乱扔垃圾/垃圾满溢" in chat.labels()
    replies = await chat.press("乱扔垃圾")
    assert "请发送 1–5 张现场照片" in replies[0] and "跳过拍照" not in chat.labels()
    replies = await chat.send_photo("p1", as_file=True)
    assert "已收到第 1 张照片，还可以再发 4 张" in replies[0]
    await chat.send_photo("p2")
    replies = await chat.press("照片发完了")
    assert "问题在哪里" in replies[0] and "或者" not in replies[0]
    location = next(o for o in chat.sent if isinstance(o, OutMessage) and o.reply_keyboard)
    assert location.reply_keyboard[0][0].request_location
    replies = await chat.send_location(*HOME)
    assert "位置已记录" in replies[0] and "请用一两句话描述问题" in replies[1]
    replies = await chat.send("太短")
    assert "问题描述需要 5–500 个字（现在是 2 个字）" in replies[0]
    await chat.send("2号楼门口垃圾桶满了，垃圾散落一地")
    replies = await chat.press("显示我的称呼")
    assert "照片：2 张" in replies[0] and "位置：已发送定位" in replies[0]
    replies = await chat.press("确认提交")
    assert "已提交，编号 <b>R-2026-000001</b>" in replies[0]
    assert "11月27日 10:00" in replies[0]  # 24 h in Shanghai time

    # The staff group's card is queued in the outbox with the report, not sent as a reply to the reporter.
    assert to_chat(chat.sent, STAFF_GROUP) == []
    post = await world.outbox.to(STAFF_GROUP)
    assert len(post) == 1 and post[0].photo is not None and (post[0].ref, post[0].edit) == ("report:1", False)
    assert "新问题 R-2026-000001" in post[0].text and "报告人：王小明" in post[0].text
    assert "状态：已提交，待受理" in post[0].text and "责任人：—" in post[0].text
    assert post[0].labels() == ["✅ 受理并指派", "❌ 不予受理"]
    stored = Image.open(io.BytesIO(read(post[0].photo)))
    assert Path(post[0].photo).is_relative_to(world.media.resolve())
    assert not stored.getexif() and b"PhoneMaker" not in read(post[0].photo)

    replies = await chat.send("/myreports")
    assert "R-2026-000001" in replies[0] and "已提交，待受理" in replies[0]
    replies = await chat.press("查看 R-2026-000001")
    assert "处理记录" in replies[0] and "提交" in replies[0]


async def report_nearby(world: World) -> tuple[FakeChat, list[str]]:
    """王小明 reports; then 赵阿姨 starts a report of the same kind close by (the bot offers a +1)."""
    await report(world.chat(RESIDENT, "王小明"))
    neighbour = world.chat(NEIGHBOUR, "赵阿姨")
    await neighbour.send("/report")
    await neighbour.press("乱扔垃圾")
    await neighbour.send_photo("p2")
    await neighbour.press("照片发完了")
    return neighbour, await neighbour.send_location(*CLOSE_BY)


async def test_plus_one_on_a_nearby_report_follows_it_instead_of_a_duplicate(world: World) -> None:
    neighbour, replies = await report_nearby(world)
    assert "附近已有同类问题" in replies[1] and "R-2026-000001</b>（约 7" in replies[1]
    replies = await neighbour.press("我也遇到了")
    assert "已关注 <b>R-2026-000001</b>" in replies[0] and "获得文明积分 2 分" in replies[0]
    replies = await neighbour.send("/myreports")
    assert "我关注的（+1）" in replies[0] and "R-2026-000001" in replies[0]
    # Only one ticket exists, and a second +1 earns nothing more.
    outcome = await world.app.services.reports.follow(NEIGHBOUR, 1)
    assert outcome.points == 0


async def test_staff_reject_as_invalid_tells_reporter_and_awards_nothing(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    staff = world.chat(WORKER, "张网格", STAFF_GROUP)
    await staff.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("不予受理"))
    replies = await staff.press("信息无效")
    assert "R-2026-000001</b> 已不予受理（信息无效或问题不存在）" in replies[0]
    assert to_chat(staff.sent, RESIDENT) == []  # told through the outbox
    told = await world.outbox.last(RESIDENT)
    assert "不予受理，原因：信息无效或问题不存在" in told.text
    card = await world.outbox.card("report:1", STAFF_GROUP)
    assert card.edit and "状态：不予受理（信息无效或问题不存在）" in card.text and card.buttons == ()
    overview = await world.app.services.points.overview(RESIDENT)
    assert overview.balance == 0


async def test_reject_as_duplicate_makes_the_reporter_follow_the_original(world: World) -> None:
    await report(world.chat(NEIGHBOUR, "赵阿姨"), where=(31.3, 121.5))
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)  # far away: no +1 offered
    staff = world.chat(WORKER, "张网格", STAFF_GROUP)
    await staff.press_data((await world.outbox.card("report:2", STAFF_GROUP)).data("不予受理"))
    await staff.press("重复")
    replies = await staff.press("R-2026-000001")
    assert "R-2026-000002</b> 已不予受理（与已有问题重复）" in replies[0]
    assert "已为您关注原问题 <b>R-2026-000001</b>" in (await world.outbox.last(RESIDENT)).text
    assert (await world.outbox.card("report:1", STAFF_GROUP)).buttons != ()  # the original is untouched


async def test_duplicate_with_nothing_earlier_keeps_the_other_reasons_to_choose(world: World) -> None:
    """The only open report cannot duplicate anything: the message says so and still offers the other reasons, so the
    grid worker can go on (it asked to "choose another reason" with no button left before)."""
    await report(world.chat(RESIDENT, "王小明"))
    staff = world.chat(WORKER, "张网格", STAFF_GROUP)
    await staff.press_data((await world.outbox.card("report:1", STAFF_GROUP)).data("不予受理"))
    replies = await staff.press("重复")
    assert "没有找到 <b>R-2026-000001</b> 之前的同类未办结问题，请选择其他原因" in replies[0]
    assert staff.labels() == ["不属于社区处理范围", "信息无效或问题不存在"]
    replies = await staff.press("不属于社区处理范围")
    assert "R-2026-000001</b> 已不予受理（不属于社区处理范围）" in replies[0]


async def test_photos_done_on_a_report_already_sent_says_the_button_is_old(world: World) -> None:
    """Tapping an old "照片发完了" after the report went in must not ask for photos again (it did: "请先发送至少 1 张
    现场照片"); before any photo of a report under way it still asks for one."""
    chat = world.chat(RESIDENT, "王小明")
    await report(chat)
    old = next(m for m in chat.messages.values() if any("照片发完了" in text for row in m.buttons for text, _ in row))
    replies = await chat.press("照片发完了", old.message_id)
    assert replies == ["这个按钮已失效，请重新打开菜单（/menu）。"] and chat.answers[-1].alert
    await chat.send("/report")
    await chat.press("乱扔垃圾")
    replies = await chat.press("照片发完了", old.message_id)
    assert replies == ["请先发送至少 1 张现场照片。"]


async def accept(world: World, report_id: int = 1) -> FakeChat:
    """A grid worker accepts from the staff group's card and assigns the report to themself."""
    staff = world.chat(WORKER, "张网格", STAFF_GROUP)
    await staff.press_data((await world.outbox.card(f"report:{report_id}", STAFF_GROUP)).data("受理并指派"))
    replies = await staff.press("张网格")
    assert f"R-2026-{report_id:06d}</b>" in replies[0]
    return staff


async def worker_chat(world: World) -> FakeChat:
    """The grid worker's private chat, with what the bot sent them so far."""
    worker = world.chat(WORKER, "张网格")
    await world.outbox.deliver(worker)
    return worker


async def resolve(world: World, worker: FakeChat) -> None:
    await worker.press("开始处理")
    replies = await worker.press("整改完成")
    assert "请发送一张整改后的现场照片" in replies[0]
    await worker.send_photo("after")
    replies = await worker.send("已清运垃圾并对周边进行了消杀")
    assert "已标记为整改完成" in replies[0]


PHOTO_MESSAGE = 4242  # the message id of the 回头看 photo in the reporter's chat


def caption_edits(chat: FakeChat, message_id: int, *, caption: bool = True) -> list[OutEdit]:
    """The edits of that message's caption (or of its text), oldest first."""
    return [o for o in chat.sent if isinstance(o, OutEdit) and o.message_id == message_id and o.caption is caption]


async def test_accept_resolve_verify_closes_with_points(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    await accept(world)
    told = await world.outbox.last(RESIDENT)
    assert "已受理，由责任人 张网格 负责" in told.text and "获得文明积分 5 分" in told.text
    worker = await worker_chat(world)
    await resolve(world, worker)
    check = await world.outbox.last(RESIDENT)
    assert check.photo is not None and "问题解决了吗" in check.text
    replies = await reporter.press_data(check.data("已解决"), PHOTO_MESSAGE, on_photo=True)
    assert "已销号" in replies[-1] and "获得文明积分 2 分" in replies[-1]
    # The photo's question becomes the answer and its two buttons go, so they cannot be pressed by mistake later.
    [answered] = caption_edits(reporter, PHOTO_MESSAGE)
    assert "您已确认问题解决" in answered.text and "问题解决了吗" not in answered.text
    assert "说明：已清运垃圾并对周边进行了消杀" in answered.text and answered.inline_keyboard == ()
    report_, history = await world.app.services.reports.detail(RESIDENT, 1)
    assert report_.status == "verified" and [e.action for e in history] == [
        "submit", "accept", "start", "resolve", "verify"]  # fmt: skip
    assert (await world.app.services.points.overview(RESIDENT)).balance == 7
    replies = await reporter.press_data(check.data("已解决"))
    assert "不能再执行这个操作" in replies[0]
    assert "已确认整改到位并销号" in (await world.outbox.last(WORKER)).text
    assert not [q for q in await world.outbox.to(RESIDENT) if "销号" in q.text]  # the reporter had the reply


async def test_answer_to_a_question_sent_without_its_photo_edits_the_text(world: World) -> None:
    """When the fix photo could not be sent the question comes as text: the answer replaces it there (a caption
    edit would be refused by Telegram)."""
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    await accept(world)
    await resolve(world, await worker_chat(world))
    check = await world.outbox.last(RESIDENT)
    await reporter.press_data(check.data("已解决"), PHOTO_MESSAGE)
    assert caption_edits(reporter, PHOTO_MESSAGE) == []
    [answered] = caption_edits(reporter, PHOTO_MESSAGE, caption=False)
    assert "您已确认问题解决" in answered.text and answered.inline_keyboard == ()


async def test_not_fixed_reopens_to_the_same_assignee_with_a_new_deadline(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    await accept(world)
    worker = await worker_chat(world)
    await resolve(world, worker)
    check = await world.outbox.last(RESIDENT)
    world.clock.advance(hours=30)
    replies = await reporter.press_data(check.data("还没解决"), PHOTO_MESSAGE, on_photo=True)
    assert "请发送一张现在的照片" in replies[0]
    assert caption_edits(reporter, PHOTO_MESSAGE) == []  # not yet: the report is reopened only after this step
    replies = await reporter.send_photo("p1")
    assert "已退回重新处理" in replies[-1] and "11月28日 16:00" in replies[-1]
    [answered] = caption_edits(reporter, PHOTO_MESSAGE)
    assert "您反馈问题还没解决" in answered.text and answered.inline_keyboard == ()
    back = await world.outbox.last(WORKER)
    assert back.photo is not None and "没有整改到位，已退回给您" in back.text
    assert back.labels() == ["🛠 开始处理", "📷 整改完成"]
    report_, _ = await world.app.services.reports.detail(RESIDENT, 1)
    assert report_.status == "accepted" and report_.reopened == 1 and report_.assignee_id is not None


async def test_overdue_reminds_then_escalates_once_with_an_injected_clock(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    await accept(world)
    await world.outbox.fresh()
    await world.app.services.jobs.run_due_jobs(world.clock())
    assert await world.outbox.fresh() == []
    world.clock.advance(hours=24, minutes=1)
    await world.app.services.jobs.run_due_jobs(world.clock())
    assert [(q.chat_id, "已到处理期限" in q.text) for q in await world.outbox.fresh()] == [(WORKER, True)]
    world.clock.advance(hours=24)
    await world.app.services.jobs.run_due_jobs(world.clock())
    alert, card = await world.outbox.fresh()
    assert alert.chat_id == STAFF_GROUP and "逾期未办结：R-2026-000001" in alert.text and alert.ref is None
    assert (card.chat_id, card.ref, card.edit) == (STAFF_GROUP, "report:1", True) and "🚨 已逾期" in card.text
    await world.app.services.jobs.run_due_jobs(world.clock())
    assert await world.outbox.fresh() == []


async def test_unconfirmed_fix_goes_to_organisers_for_a_revisit(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    await accept(world)
    worker = await worker_chat(world)
    await resolve(world, worker)
    await world.outbox.fresh()
    world.clock.advance(days=3, minutes=1)
    await world.app.services.jobs.run_due_jobs(world.clock())
    revisit = [q for q in await world.outbox.fresh() if "回头看：R-2026-000001" in q.text]
    assert len(revisit) == 1 and revisit[0].chat_id == STAFF_GROUP
    organiser = world.chat(ORGANISER, "刘书记", STAFF_GROUP)
    replies = await organiser.press_data(revisit[0].data("复查通过"))
    assert any("复查通过，已销号" in r for r in replies)
    card = await world.outbox.card("report:1", STAFF_GROUP)
    assert "状态：已销号" in card.text and card.buttons == ()
    await world.outbox.find(RESIDENT, "已确认整改到位，正式销号")  # an organiser closed it (then: the rating)
    assert (await world.app.services.points.overview(RESIDENT)).balance == 5  # no points for an unconfirmed fix


async def test_restart_in_the_middle_of_the_dialog_resumes(world: World, tmp_path: Path) -> None:
    chat = world.chat(RESIDENT, "王小明")
    await chat.send("/report")
    await chat.press("乱扔垃圾")
    await chat.send_photo("p1")
    await chat.press("照片发完了")
    await world.app.aclose()
    world.app = await make_world(tmp_path / "reports.db", world.media, world.clock, world.files)
    chat.core = world.app.core
    replies = await chat.send("3号楼东侧垃圾站旁")
    assert "请用一两句话描述问题" in replies[-1]
    await chat.send("垃圾站满了，周围有异味")
    await chat.press("对其他居民匿名")
    replies = await chat.press("确认提交")
    assert "R-2026-000001" in replies[0]


async def test_resident_cannot_act_on_reports_even_with_forged_buttons(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    data = (await world.outbox.card("report:1", STAFF_GROUP)).data("受理并指派")
    neighbour = world.chat(NEIGHBOUR, "赵阿姨")
    replies = await neighbour.press_data(data)
    assert "只有这个问题的报告人、责任人或社区组织者" in replies[0]
    replies = await neighbour.press_data(world.app.router.codec.encode("rs", "assign", 1, 4))
    assert "只有这个问题的报告人" in replies[0]
    replies = await neighbour.press_data(world.app.router.encode_ref(FOLLOWUP_OK, 1))
    assert "只有这个问题的报告人" in replies[0]
    replies = await reporter.press_data(data)  # the reporter is no staff either
    assert "只有这个问题的报告人" in replies[0]
    replies = await neighbour.press_data("1|rf.show|1")
    assert "只有社区工作人员" in replies[0] or "🚫" in replies[0]


async def test_non_image_and_oversized_files_are_refused_clearly(world: World) -> None:
    world.files.add("pdf", b"%PDF-1.7 not a photo")
    world.files.add("huge", b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024))
    chat = world.chat(RESIDENT)
    await chat.send("/report")
    await chat.press("乱扔垃圾")
    replies = await chat.send_photo("pdf", as_file=True)
    assert "这个文件不是可以识别的图片。请发送 JPEG、PNG 或 WebP 格式的照片。" in replies[0]
    replies = await chat.send_photo("huge", as_file=True)
    assert "照片太大了（不能超过 10 MB）" in replies[0]
    replies = await chat.press("取消")
    assert "已取消" in replies[0]


async def test_organiser_sees_report_figures(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    await accept(world)
    organiser = world.chat(ORGANISER, "刘书记")
    replies = await organiser.send("/stats reports")
    assert "示范社区 · 随手拍统计" in replies[0] and "共 1 件：处理中 1" in replies[0]
    assert "乱扔垃圾/垃圾满溢 1" in replies[0]


async def test_each_person_is_told_in_their_own_language(world: World) -> None:
    for telegram_id in (RESIDENT, WORKER):
        await world.app.services.residents.set_locale(telegram_id, "en")
    reporter = world.chat(RESIDENT, "Wang")
    await reporter.send("/report")
    await reporter.press("Pests")
    await reporter.press("Skip photos")
    replies = await reporter.press("Can't be photographed")
    assert "Where is it?" in replies[0]
    await reporter.press("1号楼")
    await reporter.send("Rats in the basement every night")
    replies = await reporter.press("Anonymous to other residents")
    assert "Photos: none (it can&#39;t be photographed at night or indoors)" in replies[0]
    replies = await reporter.press("Submit")
    assert "Submitted as <b>R-2026-000001</b>" in replies[0] and "28 Nov 10:00" in replies[0]
    post = await world.outbox.card("report:1", STAFF_GROUP)
    assert post.photo is None and "新问题 R-2026-000001" in post.text  # the staff group reads Chinese
    await accept(world)
    assert "was accepted; 张网格 is the person responsible" in (await world.outbox.last(RESIDENT)).text
    assigned = await world.outbox.last(WORKER)
    assert "New task for you" in assigned.text and assigned.labels()[1] == "📷 Mark fixed"
    assert "状态：已受理" in (await world.outbox.card("report:1", STAFF_GROUP)).text
    worker = world.chat(WORKER, "张网格")
    await worker.press_data(assigned.data("Mark fixed"))
    await worker.send_photo("after")
    replies = await worker.send("Rat traps set, holes sealed")
    assert "marked fixed" in replies[0]
    check = await world.outbox.last(RESIDENT)
    assert "Is it really fixed?" in check.text and "Note: Rat traps set, holes sealed" in check.text
    await reporter.press_data(check.data("Not fixed"), PHOTO_MESSAGE, on_photo=True)
    replies = await reporter.press("No photo, just reopen")
    assert "is reopened; the new deadline is" in replies[-1]
    [answered] = caption_edits(reporter, PHOTO_MESSAGE)
    assert "You said it is not fixed yet" in answered.text and answered.inline_keyboard == ()
    replies = await reporter.send("/myreports")
    assert "person responsible: 张网格" in replies[0]
    replies = await reporter.press("View R-2026-000001")
    assert "History" in replies[0] and "reopened" in replies[0] and "Reported by" not in replies[0]


def card_lines(card: Queued) -> list[str]:
    """The lines of a staff card that change as the report moves on."""
    return [line for line in card.text.splitlines() if line.startswith(("状态：", "责任人：", "处理期限："))]


async def test_report_moves_staff_card_edited_each_state(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    await accept(world)
    worker = await worker_chat(world)
    await resolve(world, worker)  # in progress, then resolved
    world.clock.advance(hours=30)
    await reporter.press_data((await world.outbox.last(RESIDENT)).data("还没解决"))
    await reporter.press("不拍照，直接退回")
    world.clock.advance(hours=48, minutes=1)  # past the new deadline and the grace period
    await world.app.services.jobs.run_due_jobs(world.clock())
    await world.outbox.deliver(worker)
    await resolve(world, worker)
    await reporter.press_data((await world.outbox.last(RESIDENT)).data("已解决"))

    versions = await world.outbox.versions("report:1", STAFF_GROUP)
    assert [v.edit for v in versions] == [False] + [True] * (len(versions) - 1)
    assert all(v.photo == versions[0].photo is not None for v in versions)  # the card is a photo: its caption
    first, later = "11月27日 10:00", "11月28日 16:00"  # 24 h from submission; 24 h from the reopening
    overdue = "　🚨 已逾期，已上报社区组织者"  # until it is fixed
    steer = ["🔀 改派", "📅 调整期限"]  # the card's second row while someone handles it
    take, start, fix, close = ["✅ 受理并指派", "❌ 不予受理"], ["🛠 开始处理", "📷 整改完成", *steer], [
        "📷 整改完成", *steer], ["✅ 复查通过，销号", "🔁 未整改好，重新处理"]  # fmt: skip
    assert [(card_lines(v), v.labels()) for v in versions] == [
        (["状态：已提交，待受理", "责任人：—", f"处理期限：{first}"], take),
        (["状态：已受理", "责任人：张网格", f"处理期限：{first}"], start),
        (["状态：处理中", "责任人：张网格", f"处理期限：{first}"], fix),
        (["状态：已整改，待确认", "责任人：张网格", f"处理期限：{first}"], close),
        (["状态：已受理，已退回重新处理 1 次", "责任人：张网格", f"处理期限：{later}"], start),
        (["状态：已受理，已退回重新处理 1 次", "责任人：张网格", f"处理期限：{later}{overdue}"], start),
        (["状态：处理中，已退回重新处理 1 次", "责任人：张网格", f"处理期限：{later}{overdue}"], fix),
        (["状态：已整改，待确认，已退回重新处理 1 次", "责任人：张网格", f"处理期限：{later}"], close),
        (["状态：已销号，已退回重新处理 1 次", "责任人：张网格", f"处理期限：{later}"], []),
    ]
    assert "整改说明：已清运垃圾并对周边进行了消杀" in versions[-1].text
    # Nobody's reply is the card: the group hears about it only through the outbox.
    assert not [o for c in (reporter, worker) for o in to_chat(c.sent, STAFF_GROUP)]


async def test_notice_buttons_decode_to_routes(world: World) -> None:
    """Every button queued in a whole report flow and by the three timers is callback data the root router
    decodes to a handler, for an action declared once (no action spelled as a string elsewhere)."""
    from bot.domain.actions import ActionRef, declared
    from bot.services import report_actions
    from bot.services.surveys import RATE_FIX

    reporter, neighbour = world.chat(RESIDENT, "王小明"), world.chat(NEIGHBOUR, "赵阿姨")
    await report(reporter)  # 1: accepted, fixed, not fixed, fixed again, left unconfirmed → 回头看, closed
    await report(neighbour, where=(31.3, 121.5))  # 2: rejected
    staff = world.chat(WORKER, "张网格", STAFF_GROUP)
    await staff.press_data((await world.outbox.card("report:2", STAFF_GROUP)).data("不予受理"))
    await staff.press("不属于社区")
    await report(neighbour, where=(31.4, 121.6))  # 3: nobody takes it → reminder, escalation
    await accept(world)
    worker = await worker_chat(world)
    await resolve(world, worker)
    await reporter.press_data((await world.outbox.last(RESIDENT)).data("还没解决"))
    await reporter.press("不拍照，直接退回")
    await world.outbox.deliver(worker)
    await resolve(world, worker)
    world.clock.advance(days=3, minutes=1)
    await world.app.services.jobs.run_due_jobs(world.clock())
    organiser = world.chat(ORGANISER, "刘书记", STAFF_GROUP)
    await organiser.press_data((await world.outbox.find(STAFF_GROUP, "回头看")).data("复查通过"))

    queued = await world.outbox.all()
    templates = {q.template for q in queued}
    assert {"reports/staff/overdue", "reports/staff/escalated", "reports/staff/revisit"} <= templates
    assert {"reports/notify/rejected", "reports/notify/resolved", "reports/staff/reopened"} <= templates
    keys = set()
    for q in queued:
        for row in q.buttons:
            for label, data in row:
                route, parsed = world.app.router.decode(data)
                assert route.handler is not None and parsed.key in declared(), (q.template, label, data)
                keys.add(parsed.key)
    report_refs = {v.key for v in vars(report_actions).values() if isinstance(v, ActionRef)}
    assert keys == report_refs | {RATE_FIX.key} and len(report_refs) == 10  # and the reporter's rating of the fix


async def test_follower_who_blocked_the_bot_is_tried_once_and_skipped_afterwards(world: World) -> None:
    """A report moves while a +1 follower has blocked the bot: one 403, then no attempt for any later notice."""
    neighbour, _ = await report_nearby(world)
    await neighbour.press("我也遇到了")
    telegram = FakeTelegram(blocked={NEIGHBOUR})
    await dispatch_all(world.app, telegram)  # what was queued so far (the staff card)

    await accept(world)  # the reporter and the follower are told
    await dispatch_all(world.app, telegram)
    assert telegram.attempts[NEIGHBOUR] == 1
    assert telegram.attempts[RESIDENT] >= 1
    worker = await worker_chat(world)
    await resolve(world, worker)  # both are asked again (回头看 for the reporter, news for the follower)
    await dispatch_all(world.app, telegram)
    assert telegram.attempts[NEIGHBOUR] == 1, "no second attempt after the 403"
    skipped = [r for r in await outbox_rows(world.app) if r.chat_id == NEIGHBOUR]
    assert skipped and all(r.status is OutboxStatus.SKIPPED for r in skipped)
    assert sum(1 for r in await outbox_rows(world.app) if r.chat_id == RESIDENT and r.status is OutboxStatus.SENT) >= 2


async def test_file_over_the_size_limit_is_refused_by_its_size_without_a_download(world: World) -> None:
    chat = world.chat(RESIDENT, "王小明")
    await chat.send("/report")
    await chat.press("乱扔垃圾")
    world.files.add("huge", png())  # Telegram would refuse getFile above 20 MB: it must not be asked
    (answer,) = await chat.send_photo("huge", as_file=True, size=26 * 1024 * 1024)
    assert "照片太大了（不能超过 10 MB）" in answer
    assert "huge" not in world.files.calls
    replies = await chat.send_photo("p2", size=180_000)  # the dialog goes on
    assert "已收到第 1 张照片" in replies[0]


async def test_photo_sent_outside_a_dialog_starts_a_report_with_it(world: World) -> None:
    """A resident who just sends a photo is offered 随手拍 with it: the category comes first, then the photo is the
    report's first (its caption the description), and the report goes on as usual."""
    chat = world.chat(RESIDENT, "王小明")
    replies = await chat.send_photo("p1", caption="2号楼门口垃圾桶满了，垃圾散落一地")
    assert "收到您的照片" in replies[0] and "请选择问题类别" in replies[0]
    assert "乱扔垃圾/垃圾满溢" in chat.labels() and "没有理解" not in replies[0]
    replies = await chat.press("乱扔垃圾")
    assert "类别：<b>乱扔垃圾/垃圾满溢</b>" in replies[0]
    assert "已收到第 1 张照片，还可以再发 4 张" in replies[1] and "已记为问题描述" in replies[1]
    await chat.send_photo("p2")
    await chat.press("照片发完了")
    await chat.send_location(*HOME)  # the caption is the description: straight on to anonymity
    await chat.press("显示我的称呼")
    replies = await chat.press("确认提交")
    assert "已提交，编号 <b>R-2026-000001</b>" in replies[0]
    post = await world.outbox.to(STAFF_GROUP)
    assert len(post) == 1 and post[0].photo is not None and "2号楼门口垃圾桶满了" in post[0].text
    async with world.app.uow() as uow:
        stored = await uow.reports.get(1)
    assert stored is not None and len(stored.photos) == 2


async def test_photo_outside_a_dialog_in_english_and_from_a_newcomer(world: World) -> None:
    await world.app.services.residents.set_locale(RESIDENT, "en")
    replies = await world.chat(RESIDENT, "Wang").send_photo("p1")
    assert "Got your photo" in replies[0] and "Choose a category" in replies[0]
    newcomer = world.chat(4242, "新人")  # never registered: asked to join first, nothing stored
    replies = await newcomer.send_photo("p2")
    assert replies and "收到您的照片" not in replies[0]
    assert await world.app.core.store.get(4242, 4242) is None


async def test_photos_sent_together_outside_a_dialog_ask_for_the_category_once(world: World) -> None:
    """An album arrives as one message per photo: the categories are asked for once and every photo is kept."""
    chat = world.chat(RESIDENT, "王小明")
    first = await chat.send_photo("p1")
    second = await chat.send_photo("p2")
    assert "请选择问题类别" in first[0] and second == ["📷 已收到 2 张照片，请在上面选择问题类别，照片会一并提交。"]
    replies = await chat.press("乱扔垃圾")
    assert "已收到第 2 张照片，还可以再发 3 张" in replies[-1]
    replies = await chat.press("照片发完了")
    assert "问题在哪里" in replies[0]
