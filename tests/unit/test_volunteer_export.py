"""The 志愿服务时长台账: the xlsx read back with openpyxl (lines, totals per volunteer and per activity), the csv."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

import content
from bot.rendering import Renderer
from bot.volunteer_export import HoursRow, write_volunteer_export

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 7, 1, 0, tzinfo=UTC)  # Saturday 09:00 in Shanghai
TRACKS = {"sanitary": "国家卫生城市", "civilised": "全国文明城市"}
SORTING, TRAFFIC = "垃圾分类桶边督导", "文明交通劝导"


def _labels(locale: str) -> Callable[[str], str]:
    renderer = Renderer(content.TEMPLATES)
    return lambda key: renderer.label(locale, key)


def _row(name: str, activity: str, day: int, status: str, minutes: int | None, points: int, **more: Any) -> HoursRow:
    starts = START + timedelta(days=day)
    served = status != "no_show"
    values: dict[str, Any] = {
        "volunteer": name,
        "building": "3号楼" if name == "王小明" else "5号楼",
        "activity": activity,
        "track": "sanitary" if activity == SORTING else "civilised",
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=3),
        "checked_in_at": starts - timedelta(minutes=5) if served else None,
        "checked_out_at": starts + timedelta(minutes=150) if served else None,
        "minutes": minutes,
        "points": points,
        "status": status,
        "resident_id": 1 if name == "王小明" else 2,
    }
    values.update(more)
    return HoursRow(**values)


ROWS = [
    _row("王小明", SORTING, 0, "approved", 150, 5),
    _row("王小明", SORTING, 7, "approved", 90, 3, correction="提前离开，按实际服务时间认定"),
    _row("王小明", TRAFFIC, 1, "pending", 120, 0),
    _row("李华", TRAFFIC, 0, "approved", 120, 4),
    _row("李华", SORTING, 7, "no_show", None, 0),
]


def _sheets(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    book = load_workbook(path)
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


def test_export_xlsx_has_lines_and_totals_sheets_in_chinese(tmp_path: Path) -> None:
    path = write_volunteer_export(
        tmp_path / "hours.xlsx", ROWS, fmt="xlsx", label=_labels("zh_Hans"), tz=SHANGHAI, tracks=TRACKS
    )

    sheets = _sheets(path)

    assert list(sheets) == ["服务明细", "按志愿者汇总", "按活动汇总"]
    header, *lines = sheets["服务明细"]
    assert header[:3] == ("志愿者", "楼栋", "活动") and "认定时长（小时）" in header
    assert len(lines) == 5
    first = dict(zip(header, lines[0], strict=True))
    assert first["志愿者"] == "王小明" and first["楼栋"] == "3号楼"
    assert first["班次开始"] == "2026-03-07 09:00" and first["签到时间"] == "2026-03-07 08:55"
    assert first["认定时长（小时）"] == 2.5 and first["状态"] == "已认定"
    assert first["创建类别"] == "国家卫生城市"
    corrected = next(dict(zip(header, line, strict=True)) for line in lines if line[11])
    assert corrected["时长调整原因"] == "提前离开，按实际服务时间认定" and corrected["认定时长（小时）"] == 1.5
    absent = next(dict(zip(header, line, strict=True)) for line in lines if line[10] == "缺席")
    assert absent["志愿者"] == "李华" and absent["签到时间"] in ("", None)


def test_export_xlsx_totals_per_volunteer_count_approved_hours_only(tmp_path: Path) -> None:
    path = write_volunteer_export(tmp_path / "hours.xlsx", ROWS, fmt="xlsx", label=_labels("zh_Hans"), tz=SHANGHAI)

    header, *lines = _sheets(path)["按志愿者汇总"]

    assert header == ("志愿者", "楼栋", "已认定班次", "认定时长（小时）", "积分", "待认定", "缺席")
    assert lines == [
        ("王小明", "3号楼", 2, 4.0, 8, 1, 0),
        ("李华", "5号楼", 1, 2.0, 4, 0, 1),
        ("合计", None, 3, 6.0, 12, 1, 1),
    ]


def test_export_xlsx_totals_per_activity_count_volunteers_and_hours(tmp_path: Path) -> None:
    path = write_volunteer_export(
        tmp_path / "hours.xlsx", ROWS, fmt="xlsx", label=_labels("zh_Hans"), tz=SHANGHAI, tracks=TRACKS
    )

    header, *lines = _sheets(path)["按活动汇总"]

    assert header == ("活动", "创建类别", "志愿者人数", "已认定班次", "认定时长（小时）", "积分", "待认定", "缺席")
    assert lines == [
        (SORTING, "国家卫生城市", 1, 2, 4.0, 8, 0, 1),
        (TRAFFIC, "全国文明城市", 1, 1, 2.0, 4, 1, 0),
        ("合计", None, 2, 3, 6.0, 12, 1, 1),
    ]


def test_export_xlsx_keeps_two_volunteers_of_the_same_name_apart(tmp_path: Path) -> None:
    rows = [
        _row("王芳", SORTING, 0, "approved", 60, 2, resident_id=11, building="1号楼"),
        _row("王芳", SORTING, 1, "approved", 120, 4, resident_id=12, building="1号楼"),
    ]

    path = write_volunteer_export(tmp_path / "hours.xlsx", rows, fmt="xlsx", label=_labels("zh_Hans"), tz=SHANGHAI)
    sheets = _sheets(path)

    assert sheets["按志愿者汇总"][1:] == [
        ("王芳", "1号楼", 1, 2.0, 4, 0, 0),
        ("王芳", "1号楼", 1, 1.0, 2, 0, 0),
        ("合计", None, 2, 3.0, 6, 0, 0),
    ]
    assert sheets["按活动汇总"][1][2] == 2  # two volunteers served the activity


def test_export_xlsx_in_english_uses_english_headers(tmp_path: Path) -> None:
    path = write_volunteer_export(tmp_path / "hours.xlsx", ROWS, fmt="xlsx", label=_labels("en"), tz=SHANGHAI)

    sheets = _sheets(path)

    assert list(sheets) == ["Shifts", "By volunteer", "By activity"]
    assert sheets["Shifts"][0][0] == "Volunteer"
    assert sheets["By volunteer"][1][:4] == ("王小明", "3号楼", 2, 4.0)
    assert {line[10] for line in sheets["Shifts"][1:]} == {"Approved", "Pending", "No-show"}


def test_export_csv_holds_the_lines_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = write_volunteer_export(
        tmp_path / "hours.csv", ROWS, fmt="csv", label=_labels("zh_Hans"), tz=SHANGHAI, tracks=TRACKS
    )

    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, *lines = list(csv.reader(handle))
    assert header[0] == "志愿者" and len(lines) == 5
    approved = [dict(zip(header, line, strict=True)) for line in lines if line[10] == "已认定"]
    per_volunteer: dict[str, float] = {}
    for line in approved:
        per_volunteer[line["志愿者"]] = per_volunteer.get(line["志愿者"], 0) + float(line["认定时长（小时）"])
    assert per_volunteer == {"王小明": 4.0, "李华": 2.0}
    assert any(line[11] == "提前离开，按实际服务时间认定" for line in lines)


def test_export_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ods"):
        write_volunteer_export(tmp_path / "x.ods", ROWS, fmt="ods", label=_labels("en"), tz=SHANGHAI)  # type: ignore[arg-type]
