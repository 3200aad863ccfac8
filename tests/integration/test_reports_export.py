"""The 问题台账 export: opens with openpyxl, right rows, masked reporter, Chinese intact; CSV too; figures."""

from __future__ import annotations

import csv
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

import content
from bot.domain.geo import GeoPoint
from bot.domain.reports import Draft, RejectReason
from bot.export import figure_lines, period, table, write_csv, write_xlsx
from bot.rendering import Renderer
from tests.support.reports import copy_db, jpeg_with_gps, read, report_world

TRACKS = {"sanitary": "国家卫生城市", "civilised": "全国文明城市"}


async def test_ledger_export_xlsx_and_csv(tmp_path: Path, sqlite_template: Path) -> None:
    db = copy_db(sqlite_template, tmp_path / "x.db")
    world = await report_world(f"sqlite+aiosqlite:///{db}", tmp_path / "media")
    try:
        s = world.services
        await world.resident(13812345678, "王小明")
        key = await s.reports.add_photo(world.files.add("p", jpeg_with_gps()), 0)
        first = await s.reports.submit(13812345678, Draft("litter", "垃圾桶满了，垃圾散落", (key,), building_id=1))
        world.clock.advance(hours=1)
        second = await s.reports.submit(13812345678, Draft("parking", "电动车堵住消防通道", (key,),
                                                          location=GeoPoint(31.2304, 121.4737)))  # fmt: skip
        await s.desk.accept(9001, first.report.id, (await _worker_id(world)))
        world.clock.advance(hours=5)
        after = await s.reports.add_photo("p", 0)
        await s.desk.resolve(9001, first.report.id, after, "已清运垃圾")
        await s.desk.verify(13812345678, first.report.id)
        await s.desk.reject(9000, second.report.id, RejectReason.NOT_OURS)

        since, until = period("2026-11-26", "2026-11-26", ZoneInfo("Asia/Shanghai"))
        rows = await s.stats.ledger("demo", since, until)
        renderer = Renderer(content.TEMPLATES)
        lines = table(rows, lambda k: renderer.label("zh_Hans", k), TRACKS)
        book = load_workbook(write_xlsx(tmp_path / "ledger.xlsx", lines, "问题台账"))
        sheet = book["问题台账"]
        values = [[c.value for c in row] for row in sheet.iter_rows()]
        assert values[0][:6] == ["编号", "社区", "类别", "创建方向", "位置", "问题描述"]
        assert [v[0] for v in values[1:]] == ["R-2026-000001", "R-2026-000002"]
        head = dict(zip(values[0], values[1], strict=True))
        assert head["类别"] == "乱扔垃圾/垃圾满溢" and head["创建方向"] == "国家卫生城市" and head["位置"] == "1号楼"
        assert head["报告人"] == "王** / 1381*******" and head["责任人"] == "张网格"
        assert head["状态"] == "已销号" and head["提交时间"] == "2026-11-26 10:00"
        assert head["整改完成时间"] == "2026-11-26 16:00" and head["整改时限"] == "2026-11-27 10:00"
        assert head["现场照片"].endswith(".jpg") and read(head["整改后照片"]).startswith(b"\xff\xd8")
        other = dict(zip(values[0], values[2], strict=True))
        assert other["处理结果"] == "非社区职责" and other["位置"] == "31.23040,121.47370"

        with write_csv(tmp_path / "ledger.csv", lines).open(encoding="utf-8-sig") as handle:
            assert list(csv.reader(handle))[1][2] == "乱扔垃圾/垃圾满溢"

        found = await s.stats.figures("demo", since, until)
        assert found.by_type == {"open": 0, "fixed": 0, "closed": 2} and found.resolve_median_h == 6
        assert "on time: 100%; reopened: 0%" in figure_lines("demo", found, {})
    finally:
        await world.aclose()


async def _worker_id(world) -> int:  # type: ignore[no-untyped-def]
    resident = await world.services.residents.profile(9001)
    return int(resident.id)
