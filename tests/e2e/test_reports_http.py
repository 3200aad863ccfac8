from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import FilesSettings, Settings
from bot.sandbox.demo import STAFF_GROUP
from tests.e2e.conftest import StartSandbox
from tests.support.reports import jpeg_with_gps
from tests.support.sandbox_user import SimResident


@pytest.fixture
def sandbox_settings(sandbox_settings: Settings, tmp_path: Path) -> Settings:
    return sandbox_settings.model_copy(update={"files": FilesSettings(root=tmp_path / "media")})


async def test_explore(sandbox_for: StartSandbox) -> None:
    async with sandbox_for("aiogram") as box:
        emu = box.emulator
        aunt = SimResident(emu, 1000002)
        zhang = SimResident(emu, 1000005)
        await zhang.send("/start")
        await aunt.send("/report")
        for r in aunt.transcript(): print(r)
        await aunt.press("乱扔垃圾")
        await aunt.send_photo(jpeg_with_gps())
        await aunt.press("照片发完了")
        await aunt.send_location(31.2304, 121.4737)
        await aunt.send("2号楼门口垃圾桶满了，垃圾散落一地")
        await aunt.press("显示我的称呼")
        await aunt.press("确认提交")
        print("---- aunt"); [print(r) for r in aunt.transcript()]
        staff = SimResident(emu, 1000005, STAFF_GROUP)
        print("---- staff"); [print(r) for r in staff.transcript()]
        print(emu.transcript(STAFF_GROUP)["messages"][-1])
        await staff.press("受理并指派")
        await staff.press("老张")
        print("---- staff"); [print(r) for r in staff.transcript()]
        print("---- zhang"); [print(r) for r in zhang.transcript()]
        await zhang.press("整改完成")
        await zhang.send_photo(jpeg_with_gps(colour=(20, 160, 40)))
        await zhang.send("已清运垃圾并对周边进行了消杀")
        print("---- zhang"); [print(r) for r in zhang.transcript()]
        await aunt.press("已解决")
        print("---- aunt"); [print(r) for r in aunt.transcript()]
        print(await box.app.services.points.overview(1000002))
        print(await box.app.services.points.check())
