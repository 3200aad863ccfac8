"""Operators at the command line for volunteers: ``sicheng export volunteers``, ``sicheng volunteers certificate |
check | settings`` and ``sicheng stats volunteers`` (typer's CliRunner on a migrated SQLite file, data made through
the services on a fake clock)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from bot.app import App, build_app
from bot.cli import app as cli
from bot.config import DatabaseSettings, Settings
from bot.domain.geo import GeoPoint
from bot.domain.roles import Role
from bot.domain.volunteers import ShiftDraft
from storage.models import AuditLogRow
from storage.uow import SqlUnitOfWork
from tests.conftest import sqlite_copy
from tests.support.points import FakeClock

T = TypeVar("T")
SHANGHAI = ZoneInfo("Asia/Shanghai")
ORGANISER, XIAOMING, XIAOHONG, ZHANGSAN = 9000, 1001, 1002, 1003
NAMES = {ORGANISER: "王老师", XIAOMING: "王小明", XIAOHONG: "李小红", ZHANGSAN: "张三"}
OTHERS = list(range(2000, 2046))  # 50 registered residents in all: 3 volunteers are 6%
PLACE = GeoPoint(31.2304, 121.4737)


@dataclass(frozen=True)
class Ledger:
    """What the database holds: two past shifts, one approved, one no-show and one waiting for approval."""

    first_day: str  # the day of the first shift (Shanghai), YYYY-MM-DD
    last_day: str  # the day of the second


def on_app(url: str, work: Callable[[App], Awaitable[T]], clock: Callable[[], datetime] | None = None) -> T:
    """Run ``work`` against the test database with an app of its own (outside the CLI's event loop)."""

    async def main() -> T:
        settings = Settings(database=DatabaseSettings(url=url))
        app = await (build_app(settings, clock=clock) if clock else build_app(settings))
        try:
            return await work(app)
        finally:
            await app.aclose()

    return asyncio.run(main())


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


async def _residents(app: App, clock: FakeClock) -> None:
    community = await app.services.communities.by_code("demo")
    assert community is not None
    async with app.transactions.scope() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        for telegram_id in [*NAMES, *OTHERS]:
            building = community.building("2" if telegram_id in (XIAOHONG, ZHANGSAN) else "1")
            assert building is not None
            resident = await uow.residents.add(telegram_id, "zh_Hans", clock())
            await uow.residents.update(
                resident.id, consent_at=clock(), consent_version="t", community_id=community.id,
                building_id=building.id, display_name=NAMES.get(telegram_id, f"居民{telegram_id}"),
            )  # fmt: skip
        await uow.commit()


@pytest.fixture
def ledger(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    url = sqlite_copy(sqlite_template, tmp_path / "cli.db")
    monkeypatch.setenv("SICHENG_DATABASE__URL", url)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=4))

    async def fill(app: App) -> Ledger:
        await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
        await _residents(app, clock)
        await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
        desk, volunteers = app.services.volunteer_desk, app.services.volunteers
        for telegram_id in (XIAOMING, XIAOHONG, ZHANGSAN):
            await volunteers.register(telegram_id, "", "")
        sorting = await desk.create_activity(
            ORGANISER, title="垃圾分类督导", description="桶边督导", place="3号楼垃圾房", contact="王老师 13800000000",
            track="sanitary", latitude=PLACE.latitude, longitude=PLACE.longitude,
        )  # fmt: skip
        traffic = await desk.create_activity(
            ORGANISER, title="文明交通劝导", description="路口劝导", place="东门路口", contact="王老师 13800000000",
            track="civilised", latitude=PLACE.latitude, longitude=PLACE.longitude,
        )  # fmt: skip
        start = clock() + timedelta(days=2)
        (first,) = await desk.add_shifts(ORGANISER, sorting.id, ShiftDraft(start, start + timedelta(hours=2), 5, 10))
        later = start + timedelta(days=1)
        (second,) = await desk.add_shifts(ORGANISER, traffic.id, ShiftDraft(later, later + timedelta(hours=1), 5, 6))
        await volunteers.book(XIAOMING, first.id)
        missed = await volunteers.book(XIAOHONG, first.id)
        await volunteers.book(ZHANGSAN, second.id)
        clock.now = start - timedelta(minutes=10)
        assert (await volunteers.check_in(XIAOMING, first.id, where=PLACE)).problem is None
        clock.now = start + timedelta(minutes=30)
        await desk.no_show(ORGANISER, missed.booking.id)
        clock.now = start + timedelta(hours=3)
        assert await desk.approve_all(ORGANISER, first.id) == (1, 120)  # two hours, 20 points
        clock.now = later - timedelta(minutes=5)
        assert (await volunteers.check_in(ZHANGSAN, second.id, where=PLACE)).problem is None  # waits for approval
        return Ledger(f"{start.astimezone(SHANGHAI):%Y-%m-%d}", f"{later.astimezone(SHANGHAI):%Y-%m-%d}")

    return on_app(url, fill, clock)


def _audit(action: str) -> list[tuple[int | None, dict[str, Any]]]:
    import os

    async def work(app: App) -> list[tuple[int | None, dict[str, Any]]]:
        async with app.uow() as uow:
            assert isinstance(uow, SqlUnitOfWork)
            found = await uow.session.scalars(
                select(AuditLogRow).where(AuditLogRow.action == action).order_by(AuditLogRow.id)
            )
            return [(r.actor_telegram_id, dict(r.details)) for r in found.all()]

    return on_app(os.environ["SICHENG_DATABASE__URL"], work)


def _pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(path.read_bytes())).pages)


# ---- export volunteers -------------------------------------------------------------------------------------------


def test_export_volunteers_xlsx_has_every_line_and_totals_per_volunteer(ledger: Ledger, tmp_path: Path) -> None:
    target = tmp_path / "hours.xlsx"
    result = invoke("export", "volunteers", "--community", "demo", "--from", ledger.first_day, "--to",
                    ledger.last_day, "--format", "xlsx", "--output", str(target))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 line(s)" in result.output
    book = load_workbook(target)
    assert book.sheetnames == ["服务明细", "按志愿者汇总", "按活动汇总"]
    lines = [[c.value for c in row] for row in book["服务明细"].iter_rows()]
    header = lines[0]
    found = {(line[0], line[header.index("状态")]): dict(zip(header, line, strict=True)) for line in lines[1:]}
    assert set(found) == {("王小明", "已认定"), ("李小红", "缺席"), ("张三", "待认定")}
    approved = found[("王小明", "已认定")]
    assert approved["认定时长（小时）"] == 2.0 and approved["积分"] == 20 and approved["创建类别"] == "国家卫生城市"
    assert approved["楼栋"] == "1号楼" and approved["活动"] == "垃圾分类督导"
    assert found[("张三", "待认定")]["认定时长（小时）"] == 1.0  # proposed, not yet counted in the totals
    totals = [[c.value for c in row] for row in book["按志愿者汇总"].iter_rows()]
    assert totals[-1][0] == "合计" and totals[-1][2:] == [1, 2.0, 20, 1, 1]
    assert _audit("volunteer.export") == [
        (None, {"community": "demo", "from": ledger.first_day, "to": ledger.last_day, "rows": 3})
    ]


def test_export_volunteers_csv_in_english_and_a_period_without_shifts_is_empty(ledger: Ledger, tmp_path: Path) -> None:
    target = tmp_path / "hours.csv"
    result = invoke("export", "volunteers", "--community", "demo", "--format", "csv", "--locale", "en",
                    "--output", str(target))  # fmt: skip
    assert result.exit_code == 0, result.output
    with target.open(encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "Volunteer" and len(rows) == 4
    assert {row[0] for row in rows[1:]} == {"王小明", "李小红", "张三"}
    empty = tmp_path / "none.csv"
    assert invoke("export", "volunteers", "--community", "demo", "--from", "2020-01-01", "--to", "2020-01-31",
                  "--format", "csv", "--output", str(empty)).exit_code == 0  # fmt: skip
    with empty.open(encoding="utf-8-sig") as handle:
        assert len(list(csv.reader(handle))) == 1  # the header only


def test_export_volunteers_unknown_community_or_format_fails_clearly(ledger: Ledger, tmp_path: Path) -> None:
    result = invoke("export", "volunteers", "--community", "nope", "--output", str(tmp_path / "x.xlsx"))
    assert result.exit_code == 1 and "no community with code 'nope'" in result.output
    assert invoke("export", "volunteers", "--community", "demo", "--format", "pdf").exit_code == 1
    assert not (tmp_path / "x.xlsx").exists()


# ---- certificates ------------------------------------------------------------------------------------------------


def test_certificate_writes_pdf_with_name_and_hours_and_check_finds_it(ledger: Ledger, tmp_path: Path) -> None:
    target = tmp_path / "cert.pdf"
    result = invoke("volunteers", "certificate", str(XIAOMING), "--from", ledger.first_day, "--to", ledger.last_day,
                    "--output", str(target))  # fmt: skip
    assert result.exit_code == 0, result.output
    number = result.output.split()[1].rstrip(":")
    assert number.startswith("ZYFW-") and "王小明, 2.0 hours" in result.output
    text = _pdf_text(target)
    assert "王小明" in text and "2.0" in text and "垃圾分类督导" in text and number in text
    assert _audit("volunteer.certificate") == [(None, {"number": number})]

    checked = invoke("volunteers", "check", number.lower())
    assert checked.exit_code == 0, checked.output
    assert f"certificate {number}: valid" in checked.output and "王小明" in checked.output
    assert f"{ledger.first_day} – {ledger.last_day}, 2.0 hours" in checked.output
    assert "示范社区" in checked.output


def test_certificate_in_english_and_for_someone_without_hours(ledger: Ledger, tmp_path: Path) -> None:
    target = tmp_path / "cert-en.pdf"
    result = invoke("volunteers", "certificate", str(XIAOMING), "--locale", "en", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert "Certificate of Volunteer Service Record" in _pdf_text(target)
    refused = invoke("volunteers", "certificate", str(XIAOHONG), "--output", str(tmp_path / "none.pdf"))
    assert refused.exit_code == 1 and "no approved volunteer hours" in refused.output
    unknown = invoke("volunteers", "certificate", "424242", "--output", str(tmp_path / "none.pdf"))
    assert unknown.exit_code == 1 and "no registered resident with Telegram id 424242" in unknown.output
    assert not (tmp_path / "none.pdf").exists()


def test_check_unknown_certificate_number_fails(ledger: Ledger) -> None:
    result = invoke("volunteers", "check", "ZYFW-2026-999999-XXXX")
    assert result.exit_code == 1 and "no certificate with number" in result.output


# ---- stats and settings ------------------------------------------------------------------------------------------


def test_stats_volunteers_prints_participation_against_goal_and_hours(ledger: Ledger) -> None:
    result = invoke("stats", "volunteers", "--community", "demo", "--days", "30")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "示范社区 (demo), last 30 days" in out
    assert "participation: 3 volunteer(s) of 50 registered resident(s) = 6.0% (goal 5%: met)" in out
    assert "shifts: 2 · bookings: 3 · no-shows: 1 (33%)" in out
    assert re.search(r"国家卫生城市\s+2\.0\n", out) and re.search(r"1号楼\s+2\.0\n", out)
    long_ago = invoke("stats", "volunteers", "--community", "demo", "--days", "1")
    assert "shifts: 0 · bookings: 0" in long_ago.output and "approved hours per track: none" in long_ago.output


def test_settings_change_approval_and_stars_is_audited_and_shown(ledger: Ledger) -> None:
    shown = invoke("volunteers", "settings", "--community", "demo")
    assert shown.exit_code == 0, shown.output
    assert "approved at once" in shown.output and "1★ 100 h, 2★ 300 h" in shown.output
    changed = invoke("volunteers", "settings", "--community", "demo", "--approval", "--stars", "10,50,100")
    assert changed.exit_code == 0, changed.output
    assert "approved by an organiser first" in changed.output and "3★ 100 h" in changed.output
    assert "4★" not in changed.output
    assert _audit("volunteer.settings") == [(None, {"community": "demo", "approval": True, "stars": [10, 50, 100]})]

    async def standing(app: App) -> Any:
        return await app.services.volunteer_desk.settings(ORGANISER)

    import os

    approval, stars = on_app(os.environ["SICHENG_DATABASE__URL"], standing)
    assert approval is True and stars.thresholds == (10, 50, 100)  # what organisers and volunteers now get
    assert invoke("volunteers", "settings", "--community", "demo", "--approval").exit_code == 0
    assert len(_audit("volunteer.settings")) == 1  # nothing changed: nothing written


def test_settings_refuses_falling_stars_and_unknown_community(ledger: Ledger) -> None:
    falling = invoke("volunteers", "settings", "--community", "demo", "--stars", "300,100")
    assert falling.exit_code == 1 and "rising" in falling.output
    too_many = invoke("volunteers", "settings", "--community", "demo", "--stars", "1,2,3,4,5,6")
    assert too_many.exit_code == 1 and "at most 5" in too_many.output
    unknown = invoke("volunteers", "settings", "--community", "nope", "--no-approval")
    assert unknown.exit_code == 1 and "no community with code 'nope'" in unknown.output
    assert _audit("volunteer.settings") == []
