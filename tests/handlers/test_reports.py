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
from bot.conversation.replies import Outgoing, OutMessage, OutPhoto
from bot.domain.roles import Role
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
    yield World(app, clock, files, tmp_path / "media")
    await app.aclose()


def to_chat(sent: list[Outgoing], chat_id: int) -> list[OutMessage | OutPhoto]:
    return [o for o in sent if isinstance(o, OutMessage | OutPhoto) and o.chat_id == chat_id]


def text_of(item: OutMessage | OutPhoto) -> str:
    return item.text if isinstance(item, OutMessage) else item.caption or ""


def button(items: list[OutMessage | OutPhoto], label: str) -> str:
    for item in reversed(items):
        for row in item.inline_keyboard:
            for b in row:
                if label in b.text and b.callback_data:
                    return b.callback_data
    raise AssertionError(f"no button {label!r} in {[text_of(i) for i in items]}")


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

    post = to_chat(chat.sent, STAFF_GROUP)
    assert len(post) == 1 and isinstance(post[0], OutPhoto)
    assert "新问题 R-2026-000001" in text_of(post[0]) and "报告人：王小明" in text_of(post[0])
    assert [b.text for b in post[0].inline_keyboard[0]] == ["✅ 受理并指派", "❌ 不予受理"]
    stored = Image.open(io.BytesIO(read(post[0].photo)))
    assert Path(post[0].photo).is_relative_to(world.media.resolve())
    assert not stored.getexif() and b"PhoneMaker" not in read(post[0].photo)

    replies = await chat.send("/myreports")
    assert "R-2026-000001" in replies[0] and "已提交，待受理" in replies[0]
    replies = await chat.press("查看 R-2026-000001")
    assert "处理记录" in replies[0] and "提交" in replies[0]


async def test_plus_one_on_a_nearby_report_follows_it_instead_of_a_duplicate(world: World) -> None:
    await report(world.chat(RESIDENT, "王小明"))
    neighbour = world.chat(NEIGHBOUR, "赵阿姨")
    await neighbour.send("/report")
    await neighbour.press("乱扔垃圾")
    await neighbour.send_photo("p2")
    await neighbour.press("照片发完了")
    replies = await neighbour.send_location(*CLOSE_BY)
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
    await staff.press_data(button(to_chat(reporter.sent, STAFF_GROUP), "不予受理"))
    replies = await staff.press("信息无效")
    assert "R-2026-000001</b> 已不予受理（信息无效或问题不存在）" in replies[0]
    told = to_chat(staff.sent, RESIDENT)
    assert "未予受理，原因：信息无效或问题不存在" in text_of(told[0])
    overview = await world.app.services.points.overview(RESIDENT)
    assert overview.balance == 0


async def test_reject_as_duplicate_makes_the_reporter_follow_the_original(world: World) -> None:
    await report(world.chat(NEIGHBOUR, "赵阿姨"), where=(31.3, 121.5))
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)  # far away: no +1 offered
    staff = world.chat(WORKER, "张网格", STAFF_GROUP)
    await staff.press_data(button(to_chat(reporter.sent, STAFF_GROUP), "不予受理"))
    await staff.press("重复")
    replies = await staff.press("R-2026-000001")
    assert "R-2026-000002</b> 已不予受理（与已有问题重复）" in replies[0]
    assert "已为您关注原问题 <b>R-2026-000001</b>" in text_of(to_chat(staff.sent, RESIDENT)[0])


async def accept(world: World, reporter: FakeChat) -> FakeChat:
    staff = world.chat(WORKER, "张网格", STAFF_GROUP)
    await staff.press_data(button(to_chat(reporter.sent, STAFF_GROUP), "受理并指派"))
    replies = await staff.press("张网格")
    assert "R-2026-000001</b>" in replies[0]
    return staff


async def resolve(world: World, worker: FakeChat) -> None:
    await worker.press("开始处理")
    replies = await worker.press("整改完成")
    assert "请发送一张整改后的现场照片" in replies[0]
    await worker.send_photo("after")
    replies = await worker.send("已清运垃圾并对周边进行了消杀")
    assert "已标记为整改完成" in replies[0]


async def test_accept_resolve_verify_closes_with_points(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    staff = await accept(world, reporter)
    told = to_chat(staff.sent, RESIDENT)
    assert "已受理，由网格员 张网格 负责" in text_of(told[0]) and "获得文明积分 5 分" in text_of(told[0])
    worker = world.chat(WORKER, "张网格")
    worker.messages.update({i: m for i, m in staff.messages.items() if m.chat_id == WORKER})
    await resolve(world, worker)
    check = to_chat(worker.sent, RESIDENT)[-1]
    assert isinstance(check, OutPhoto) and "问题解决了吗" in text_of(check)
    replies = await reporter.press_data(button([check], "已解决"))
    assert "已销号" in replies[0] and "获得文明积分 2 分" in replies[0]
    report_, history = await world.app.services.reports.detail(RESIDENT, 1)
    assert report_.status == "verified" and [e.action for e in history] == [
        "submit", "accept", "start", "resolve", "verify"]  # fmt: skip
    assert (await world.app.services.points.overview(RESIDENT)).balance == 7
    replies = await reporter.press_data(button([check], "已解决"))
    assert "不能再执行这个操作" in replies[0]


async def test_not_fixed_reopens_to_the_same_assignee_with_a_new_deadline(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    staff = await accept(world, reporter)
    worker = world.chat(WORKER, "张网格")
    worker.messages.update({i: m for i, m in staff.messages.items() if m.chat_id == WORKER})
    await resolve(world, worker)
    check = to_chat(worker.sent, RESIDENT)[-1]
    world.clock.advance(hours=30)
    replies = await reporter.press_data(button([check], "还没解决"))
    assert "请发送一张现在的照片" in replies[0]
    replies = await reporter.send_photo("p1")
    assert "已退回重新处理" in replies[0] and "11月28日 16:00" in replies[0]
    back = to_chat(reporter.sent, WORKER)[-1]
    assert isinstance(back, OutPhoto) and "没有整改到位，已退回给您" in text_of(back)
    report_, _ = await world.app.services.reports.detail(RESIDENT, 1)
    assert report_.status == "accepted" and report_.reopened == 1 and report_.assignee_id is not None


async def test_overdue_reminds_then_escalates_once_with_an_injected_clock(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    await accept(world, reporter)
    assert await world.app.run_due_jobs(world.clock()) == []
    world.clock.advance(hours=24, minutes=1)
    out = await world.app.run_due_jobs(world.clock())
    assert [(o.chat_id, "已到处理期限" in text_of(o)) for o in out if isinstance(o, OutMessage | OutPhoto)] == [
        (WORKER, True)]  # fmt: skip
    world.clock.advance(hours=24)
    out = await world.app.run_due_jobs(world.clock())
    assert len(out) == 1 and out[0].chat_id == STAFF_GROUP and "逾期未办结：R-2026-000001" in text_of(out[0])  # type: ignore[union-attr]
    assert await world.app.run_due_jobs(world.clock()) == []


async def test_unconfirmed_fix_goes_to_organisers_for_a_revisit(world: World) -> None:
    reporter = world.chat(RESIDENT, "王小明")
    await report(reporter)
    staff = await accept(world, reporter)
    worker = world.chat(WORKER, "张网格")
    worker.messages.update({i: m for i, m in staff.messages.items() if m.chat_id == WORKER})
    await resolve(world, worker)
    world.clock.advance(days=3, minutes=1)
    out = await world.app.run_due_jobs(world.clock())
    revisit = [o for o in out if "回头看：R-2026-000001" in text_of(o)]  # type: ignore[arg-type]
    assert len(revisit) == 1 and revisit[0].chat_id == STAFF_GROUP  # type: ignore[union-attr]
    organiser = world.chat(ORGANISER, "刘书记", STAFF_GROUP)
    replies = await organiser.press_data(button(revisit, "复查通过"))  # type: ignore[arg-type]
    assert any("复查通过，已销号" in r for r in replies)
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
    data = button(to_chat(reporter.sent, STAFF_GROUP), "受理并指派")
    neighbour = world.chat(NEIGHBOUR, "赵阿姨")
    replies = await neighbour.press_data(data)
    assert "只有这个问题的报告人、负责的网格员或社区负责人" in replies[0]
    replies = await neighbour.press_data(data.replace("rs.take", "rs.assign") + "|4")
    assert "只有这个问题的报告人" in replies[0]
    replies = await neighbour.press_data("1|rf.ok|1")
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
    await accept(world, reporter)
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
    post = to_chat(reporter.sent, STAFF_GROUP)[0]
    assert isinstance(post, OutMessage) and "新问题 R-2026-000001" in post.text  # the staff group reads Chinese
    staff = await accept(world, reporter)
    assert "was accepted; grid worker 张网格 handles it" in text_of(to_chat(staff.sent, RESIDENT)[0])
    assigned = to_chat(staff.sent, WORKER)[0]
    assert "New task for you" in text_of(assigned) and "Mark fixed" in assigned.inline_keyboard[0][1].text
    worker = world.chat(WORKER, "张网格")
    await worker.press_data(button([assigned], "Mark fixed"))
    await worker.send_photo("after")
    replies = await worker.send("Rat traps set, holes sealed")
    assert "marked fixed" in replies[0]
    check = to_chat(worker.sent, RESIDENT)[-1]
    assert "Is it really fixed?" in text_of(check) and "Note: Rat traps set, holes sealed" in text_of(check)
    await reporter.press_data(button([check], "Not fixed"))
    replies = await reporter.press("No photo, just reopen")
    assert "is reopened; the new deadline is" in replies[0]
    replies = await reporter.send("/myreports")
    assert "handled by 张网格" in replies[0]
    replies = await reporter.press("View R-2026-000001")
    assert "History" in replies[0] and "reopened" in replies[0] and "Reported by" not in replies[0]
