"""A grid worker who never started the bot, end to end over HTTP against the emulator, through both real channels.

An organiser granted 老赵 the grid-worker role by his Telegram id; he has never written to the bot, so Telegram (the
emulator) answers 403 "bot can't initiate conversation with a user" to anything sent to him. A report is assigned
to him in the staff group: the group is told the truth, with the link that opens the bot on his tasks; the notice to
him is refused by Telegram and skipped; he opens the link, agrees, sees /tasks and resolves the report, and the
resident is asked whether it is fixed.
"""

from __future__ import annotations

import pytest

from bot.domain.messaging import OutboxStatus
from bot.domain.reports import Status
from bot.domain.roles import Role
from bot.sandbox.demo import COMMUNITY, ORGANISER_ID, STAFF_GROUP
from tests.e2e.conftest import StartSandbox
from tests.e2e.test_reports_http import AUNT, HOME, TICKET, buttons
from tests.support.outbox import settled
from tests.support.reports import jpeg_with_gps
from tests.support.sandbox_user import SimResident

NEWBIE = 1000010  # 老赵: in Telegram, not in the bot
LINK = "https://t.me/sicheng_bot?start=tasks"


async def report_problem(aunt: SimResident) -> str:
    """王阿姨 reports overflowing bins with a photo and her location, waiting for each answer; returns the ticket."""
    await aunt.send("/report")
    await aunt.wait_for("请选择问题类别")
    await aunt.press("乱扔垃圾")
    await aunt.wait_for("现场照片")
    await aunt.send_photo(jpeg_with_gps())
    await aunt.wait_for("已收到第 1 张照片")
    await aunt.press("照片发完了")
    await aunt.wait_for("问题在哪里")
    await aunt.send_location(*HOME)
    await aunt.wait_for("位置已记录")
    await aunt.send("2号楼门口垃圾桶满了，垃圾散落一地")
    await aunt.wait_for("是否显示您的称呼")
    await aunt.press("显示我的称呼")
    await aunt.wait_for("请确认问题信息")
    await aunt.press("确认提交")
    found = TICKET.search((await aunt.wait_for("已提交，编号"))["text"])
    assert found is not None
    return found.group()


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_worker_who_never_started_is_told_through_the_group_and_resolves_from_tasks(
    sandbox_for: StartSandbox, channel: str
) -> None:
    async with sandbox_for(channel) as box:
        emulator, services = box.emulator, box.app.services
        emulator.create_user("老赵", language_code="zh-hans", user_id=NEWBIE)
        assert (NEWBIE, emulator.bot().id) not in emulator.started
        await services.access.grant(NEWBIE, Role.GRID_WORKER, COMMUNITY, actor=ORGANISER_ID)
        aunt, organiser, newbie = SimResident(emulator, AUNT), SimResident(emulator, ORGANISER_ID), SimResident(
            emulator, NEWBIE)  # fmt: skip

        await organiser.send("/tasks")  # an organiser with nothing assigned (and the bot is up before anyone reports)
        await organiser.wait_for("目前没有指派给您的问题")
        ticket = await report_problem(aunt)
        await organiser.wait_for(f"新问题 {ticket}", chat_id=STAFF_GROUP)
        await organiser.press("受理并指派", chat_id=STAFF_GROUP)
        await organiser.wait_for("请选择责任人", chat_id=STAFF_GROUP)
        await organiser.press(f"ID {NEWBIE}", chat_id=STAFF_GROUP)

        # The staff group is told the truth, with the link (and a button for him, were he in the group).
        told = await organiser.wait_for(f"{ticket} 已受理，由 ID {NEWBIE} 负责", chat_id=STAFF_GROUP)
        assert "已通知报告人。" in told["text"] and "已通知责任人" not in told["text"]
        assert f"ID {NEWBIE} 还没有开始使用本机器人" in told["text"] and LINK in told["text"]
        assert [b.get("url") for row in told["inline_keyboard"] for b in row] == [LINK]
        # Telegram refused the notice to him: the outbox recorded it, and nothing reached his chat.
        rows = [r for r in await settled(box.app) if r.chat_id == NEWBIE]
        assert rows and all(r.status is OutboxStatus.SKIPPED for r in rows)
        assert emulator.transcript(NEWBIE)["messages"] == []
        card = await organiser.wait_for(f"责任人：ID {NEWBIE}", chat_id=STAFF_GROUP)
        assert buttons(card) == ["🛠 开始处理", "📷 整改完成", "🔀 改派", "📅 调整期限"]

        # He opens t.me/sicheng_bot?start=tasks: language, consent, and his tasks straight away.
        await newbie.send("/start tasks")
        await newbie.wait_for("欢迎使用")
        await newbie.press("中文")
        await newbie.wait_for("个人信息保护告知")
        await newbie.press("同意")
        await newbie.wait_for("以后指派给您的问题，我都会在这里私聊通知您")
        tasks = await newbie.wait_for("指派给我的问题（1 件）")
        assert f"{ticket} · 乱扔垃圾/垃圾满溢 · 已受理" in tasks["text"]
        await newbie.send("/tasks")  # the same list, any time
        assert buttons(await newbie.wait_for("指派给我的问题（1 件）")) == [f"📌 {ticket}"]
        await newbie.press(ticket)
        task = await newbie.wait_for("报告人：王阿姨")
        assert buttons(task) == ["🛠 开始处理", "📷 整改完成"]
        await newbie.press("整改完成")
        await newbie.wait_for("请发送一张整改后的现场照片")
        await newbie.send_photo(jpeg_with_gps(colour=(20, 160, 40)))
        await newbie.wait_for("请简要说明整改情况（5–300 字）")
        await newbie.send("ok")
        await newbie.wait_for("整改说明太短了（2 个字）")
        await newbie.send("已清运垃圾并消杀")
        await newbie.wait_for(f"{ticket} 已标记为整改完成")

        check = await aunt.wait_for("问题解决了吗")
        assert "说明：已清运垃圾并消杀" in check["caption"]
        card = await organiser.wait_for("状态：已整改，待确认", chat_id=STAFF_GROUP)
        assert buttons(card) == ["✅ 复查通过，销号", "🔁 未整改好，重新处理"]
        (report,) = (await services.reports.mine(AUNT)).reported
        assert report.status is Status.RESOLVED and report.resolution_note == "已清运垃圾并消杀"
        assert emulator.flood_violations() == []
