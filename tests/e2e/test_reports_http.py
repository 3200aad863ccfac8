"""随手拍 end to end over HTTP against the emulator, through both real channels: a resident reports with a photo and
a location, the grid worker accepts it in the staff group and resolves it in private with an after-photo and a note,
the resident confirms the fix; the report is verified, the points are in the ledger and no served photo has EXIF.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.config import FilesSettings, Settings
from bot.domain.points import Reason
from bot.domain.reports import Status
from bot.sandbox.app import Sandbox
from bot.sandbox.demo import STAFF_GROUP
from tests.e2e.conftest import StartSandbox
from tests.support.reports import jpeg_with_gps
from tests.support.sandbox_user import SimResident

AUNT, WORKER = 1000002, 1000005  # 王阿姨 (registered resident) and 老张 (grid worker) in the demo personas
HOME = (31.2304, 121.4737)
DESCRIPTION = "2号楼门口垃圾桶满了，垃圾散落一地"
NOTE = "已清运垃圾并对周边进行了消杀"
TICKET = re.compile(r"R-\d{4}-\d{6}")


@pytest.fixture
def sandbox_settings(sandbox_settings: Settings, tmp_path: Path) -> Settings:
    """Residents' photos go to the test's own folder, not to the working directory."""
    return sandbox_settings.model_copy(update={"files": FilesSettings(root=tmp_path / "media")})


async def served_photo(box: Sandbox, view: dict[str, Any]) -> bytes:
    """The photo of a message as the emulator serves it over HTTP (what a person's client shows)."""
    assert view.get("photo_url"), f"no photo on {view['caption'] or view['text']!r}"
    async with aiohttp.ClientSession() as http, http.get(box.url + view["photo_url"]) as response:
        assert response.status == 200
        return await response.read()


def assert_no_metadata(data: bytes) -> None:
    image = Image.open(io.BytesIO(data))
    assert image.format in ("JPEG", "PNG", "WEBP")
    assert not image.getexif() and b"Exif" not in data and b"PhoneMaker" not in data


def buttons(view: dict[str, Any]) -> list[str]:
    return [b["text"] for row in view.get("inline_keyboard", []) for b in row]


async def report_with_photo_and_location(aunt: SimResident, photo: bytes) -> str:
    """The resident's whole 随手拍 dialog in her private chat; returns the ticket."""
    await aunt.send("/report")
    await aunt.press("乱扔垃圾")
    await aunt.send_photo(photo)
    await aunt.wait_for("已收到第 1 张照片")
    await aunt.press("照片发完了")
    shown = aunt.emulator.transcript(aunt.chat)["reply_keyboard"]
    assert shown is not None and shown["keyboard"][0][0].get("request_location") is True
    await aunt.send_location(*HOME)
    await aunt.wait_for("位置已记录")
    await aunt.send(DESCRIPTION)
    await aunt.press("显示我的称呼")
    await aunt.press("确认提交")
    submitted = await aunt.wait_for("已提交，编号")
    found = TICKET.search(submitted["text"])
    assert found is not None
    return found.group()


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_photo_report_resolved_and_confirmed_is_verified_with_points(
    sandbox_for: StartSandbox, channel: str
) -> None:
    async with sandbox_for(channel) as box:
        emulator = box.emulator
        aunt, worker = SimResident(emulator, AUNT), SimResident(emulator, WORKER)
        await worker.send("/start")  # the bot may write to 老张 in private only once he has written to it
        before = (await box.app.services.points.overview(AUNT)).balance  # the demo may give starter points
        original = jpeg_with_gps()  # a real JPEG with GPS, camera make and date in its EXIF, like a phone's
        assert Image.open(io.BytesIO(original)).getexif()

        ticket = await report_with_photo_and_location(aunt, original)

        # The staff group gets the report with its (cleaned) photo and the buttons to handle it.
        post = await worker.wait_for(f"新问题 {ticket}", chat_id=STAFF_GROUP)
        assert "报告人：王阿姨" in post["caption"] and DESCRIPTION in post["caption"]
        assert "定位 31.23040, 121.47370" in post["caption"]
        assert buttons(post) == ["✅ 受理并指派", "❌ 不予受理"]
        posted = await served_photo(box, post)
        assert_no_metadata(posted)
        assert Image.open(io.BytesIO(posted)).size == (64, 48)

        # 老张 accepts it in the staff group and assigns it to himself.
        await worker.press("受理并指派", chat_id=STAFF_GROUP)
        await worker.press("老张", chat_id=STAFF_GROUP)
        await worker.wait_for(f"{ticket} 已受理", chat_id=STAFF_GROUP)
        told = await aunt.wait_for("已受理，由责任人 老张 负责")
        assert "获得文明积分 5 分" in told["text"]
        task = await worker.wait_for(f"您有新的待办：{ticket}")
        assert buttons(task) == ["🛠 开始处理", "📷 整改完成"]
        assert_no_metadata(await served_photo(box, task))

        # He resolves it in private: after-photo, then a note.
        await worker.press("整改完成")
        await worker.wait_for("请发送一张整改后的现场照片")
        await worker.send_photo(jpeg_with_gps(colour=(20, 160, 40)))
        await worker.wait_for("请简要说明整改情况")
        await worker.send(NOTE)
        await worker.wait_for(f"{ticket} 已标记为整改完成")

        # 回头看: the resident sees the after-photo and the note, and confirms.
        check = await aunt.wait_for("问题解决了吗")
        assert f"说明：{NOTE}" in check["caption"] and buttons(check) == ["👍 已解决", "👎 还没解决"]
        assert_no_metadata(await served_photo(box, check))
        await aunt.press("已解决")
        verified = await aunt.wait_for(f"问题 {ticket} 已销号")
        assert "获得文明积分 2 分" in verified["text"]
        await worker.wait_for(f"问题 {ticket}（乱扔垃圾/垃圾满溢）已确认整改到位并销号")

        services = box.app.services
        (report,) = (await services.reports.mine(AUNT)).reported
        assert report.ticket == ticket and report.status is Status.VERIFIED and report.closed_at is not None
        _, history = await services.reports.detail(AUNT, report.id)
        assert [e.action for e in history] == ["submit", "accept", "resolve", "verify"]
        overview = await services.points.overview(AUNT)
        assert overview.balance == before + 7
        assert sorted((e.reason, e.amount, e.ref) for e in overview.recent if e.ref == ticket) == [
            (Reason.REPORT_ACCEPTED, 5, ticket),
            (Reason.REPORT_VERIFIED, 2, ticket),
        ]
        assert await services.points.check() == []
        assert emulator.flood_violations() == []
