"""The 积分台账 and 兑换记录 exports: points awarded, taken back and redeemed through the real services of the whole
App (the sandbox's demo community), then ``sicheng export points`` / ``redemptions`` read with openpyxl — lines,
balances, totals, the period, another community left out, residents masked — and the dashboard's downloads against
the command line's files, cell for cell."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.domain.audit import AuditQuery
from bot.domain.roles import Role
from tests.support.dashboard import GRID_WORKER, ORGANISER, RESIDENT, VOLUNTEER, DashboardWorld, dashboard_world

SERVICE_POINT = 1000007  # 李师傅理发, service point in demo
EAST_RESIDENT, EAST_ORGANISER = 2000001, 2000002
PERIOD = ("--from", "2026-11-28", "--to", "2026-12-31")
QUERY = "community=demo&from=2026-11-28&to=2026-12-31"
Sheets = dict[str, list[list[Any]]]


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path, db_url: str) -> AsyncIterator[DashboardWorld]:
    """On SQLite and on PostgreSQL (the ledger queries are new SQL)."""
    async with dashboard_world(tmp_path, sqlite_template, database=db_url) as built:
        yield built


async def reward_id(world: DashboardWorld, slug: str) -> int:
    async with world.app.uow() as uow:
        community = await uow.communities.get_by_code("demo")
        assert community is not None
        reward = await uow.rewards.get_by_slug(community.id, slug)
    assert reward is not None
    return reward.id


async def east(world: DashboardWorld) -> None:
    """Another community whose resident earns and redeems in the same days."""
    s = world.app.services
    community = await s.communities.add("east", "东区社区", [("1", "东1号楼")])
    for telegram_id, name in ((EAST_RESIDENT, "赵大爷"), (EAST_ORGANISER, "钱主任")):
        await s.residents.give_consent(telegram_id, name, "zh_Hans")
        await s.residents.join(telegram_id, community.id, community.buildings[0].id)
    await s.access.grant(EAST_ORGANISER, Role.ORGANISER, "east", actor=None)
    await s.points.grant(EAST_ORGANISER, EAST_RESIDENT, 77, "东区奖励", "east-1")
    reward = await s.rewards.add(EAST_ORGANISER, "东区理发", "East haircut", 33, 5)
    await s.redemptions.redeem(EAST_RESIDENT, reward.id)


async def activity(world: DashboardWorld) -> None:
    """The demo community's residents start with 60 points each (the sandbox's seed, 26 Nov, before the period).

    26 Nov: 小陈 redeems and cancels (outside the period). 28 Nov: 王阿姨 is granted 40, her report accepted (+5),
    redeems a haircut (verified by 李师傅理发) and has 5 taken back; 小陈 redeems a repair and cancels, then daily
    necessities that expire on 13 Dec, when 王阿姨 redeems daily necessities (not collected). 5 Jan: 王阿姨 +1 (after
    the period).
    """
    s, clock = world.app.services, world.clock
    early = await s.redemptions.redeem(VOLUNTEER, await reward_id(world, "daily-necessities"))
    await s.redemptions.cancel(VOLUNTEER, early.redemption.id)
    clock.advance(days=2)  # 2026-11-28 10:00 in Shanghai
    await east(world)
    await s.points.grant(ORGANISER, RESIDENT, 40, "清理楼道杂物", "g-1")
    report = await world.report()
    await s.report_desk.accept(ORGANISER, report.id, await world.resident_id(GRID_WORKER))
    haircut = await s.redemptions.redeem(RESIDENT, await reward_id(world, "haircut"))
    clock.advance(minutes=30)
    await s.redemptions.verify(SERVICE_POINT, haircut.redemption.code)
    await s.points.reverse(ORGANISER, RESIDENT, 5, "重复发放", "r-1")
    repair = await s.redemptions.redeem(VOLUNTEER, await reward_id(world, "appliance-repair"))
    await s.redemptions.cancel(VOLUNTEER, repair.redemption.id)
    await s.redemptions.redeem(VOLUNTEER, await reward_id(world, "daily-necessities"))
    clock.advance(days=15)
    assert await s.redemptions.expire_redemptions() == 2  # 小陈's and 赵大爷's
    await s.redemptions.redeem(RESIDENT, await reward_id(world, "daily-necessities"))
    clock.now += timedelta(days=23)  # 2027-01-05
    await s.points.grant(ORGANISER, RESIDENT, 1, "新年", "g-2")


async def export(world: DashboardWorld, tmp_path: Path, kind: str, *extra: str, suffix: str = "xlsx") -> Path:
    """``sicheng export <kind> --community demo`` on the world's database, as an operator runs it."""
    target = tmp_path / f"cli-{kind}.{suffix}"
    env = {"SICHENG_DATABASE__URL": world.app.settings.database.url,
           "SICHENG_FILES__ROOT": str(world.app.settings.files.root)}  # fmt: skip
    args = ["export", kind, "--community", "demo", *extra, "--out", str(target)]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 0, result.output
    return target


def sheets(source: Path | bytes) -> Sheets:
    book = load_workbook(io.BytesIO(source) if isinstance(source, bytes) else source)
    return {sheet.title: [[c.value for c in row] for row in sheet.iter_rows()] for sheet in book.worksheets}


def as_dicts(rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


async def test_export_points_lists_the_periods_entries_with_balances_and_totals(
    world: DashboardWorld, tmp_path: Path
) -> None:
    await activity(world)

    book = sheets(await export(world, tmp_path, "points", *PERIOD))

    assert list(book) == ["积分明细", "按居民汇总", "按事由汇总"]
    entries = as_dicts(book["积分明细"])
    assert [(e["居民"], e["事由"], e["积分变动"], e["变动后余额"]) for e in entries] == [
        ("王** / 1000***", "社区奖励", 40, 100),  # after the seed's 60, before the period
        ("王** / 1000***", "随手拍被受理", 5, 105),
        ("王** / 1000***", "兑换奖励", -30, 75),
        ("王** / 1000***", "积分扣回", -5, 70),
        ("小** / 1000***", "兑换奖励", -50, 25),  # 小陈 had 75: the seed's 60 and 15 for volunteering
        ("小** / 1000***", "兑换退回", 50, 75),
        ("小** / 1000***", "兑换奖励", -20, 55),
        ("小** / 1000***", "兑换退回", 20, 75),
        ("王** / 1000***", "兑换奖励", -20, 50),
    ]
    grant, accepted, haircut = entries[0], entries[1], entries[2]
    assert grant["时间"] == "2026-11-28 10:00" and grant["楼栋"] == "2号楼" and grant["备注"] == "清理楼道杂物"
    assert grant["到期时间"] == "2027-11-28 10:00" and haircut["到期时间"] is None
    assert accepted["关联编号"].startswith("R-2026-")
    assert haircut["关联编号"].startswith("redemption:") and haircut["关联编号"].endswith("-****")
    assert entries[-1]["时间"] == "2026-12-13 10:30"
    everything = repr(book)
    assert "王阿姨" not in everything and "1000002" not in everything and "赵大爷" not in everything
    assert "东区奖励" not in everything and "新年" not in everything

    assert book["按居民汇总"] == [
        ["居民", "楼栋", "笔数", "增加", "减少", "净变动", "期末余额"],
        ["小** / 1000***", "3号楼", 4, 70, -70, 0, 75],
        ["王** / 1000***", "2号楼", 5, 45, -55, -10, 50],
        ["合计", None, 9, 115, -125, -10, None],
    ]
    assert book["按事由汇总"] == [
        ["事由", "笔数", "居民人数", "积分合计"],
        ["随手拍被受理", 1, 1, 5],
        ["社区奖励", 1, 1, 40],
        ["兑换奖励", 4, 2, -120],
        ["兑换退回", 2, 1, 70],
        ["积分扣回", 1, 1, -5],
        ["合计", 9, 2, -10],
    ]


async def test_export_redemptions_lists_each_with_its_status_service_point_and_totals(
    world: DashboardWorld, tmp_path: Path
) -> None:
    await activity(world)

    book = sheets(await export(world, tmp_path, "redemptions", *PERIOD))

    assert list(book) == ["兑换记录", "按奖励汇总", "按服务点汇总"]
    rows = as_dicts(book["兑换记录"])
    assert [(r["居民"], r["奖励"], r["所需积分"], r["状态"]) for r in rows] == [
        ("王** / 1000***", "理发", 30, "已领取"),
        ("小** / 1000***", "小家电维修", 50, "已取消"),
        ("小** / 1000***", "生活用品", 20, "已过期"),
        ("王** / 1000***", "生活用品", 20, "待领取"),
    ]
    haircut, repair, lapsed, waiting = rows
    assert haircut["兑换时间"] == "2026-11-28 10:00" and haircut["核销时间"] == "2026-11-28 10:30"
    assert haircut["核销服务点"] == "李师傅理发" and haircut["取消或过期时间"] is None
    assert haircut["兑换码（部分）"].endswith("-****") and len(haircut["兑换码（部分）"]) == 9
    # Valid through the whole of its last day, 2026-12-27: it lapses at the next midnight.
    assert waiting["领取截止"] == "2026-12-28 00:00" and waiting["核销时间"] is None
    assert repair["取消或过期时间"] == "2026-11-28 10:30" and repair["核销服务点"] is None
    assert lapsed["取消或过期时间"] == "2026-12-13 10:30"
    assert "东区理发" not in repr(book) and "王阿姨" not in repr(book)

    assert book["按奖励汇总"] == [
        ["奖励", "兑换次数", "待领取", "已领取", "已取消", "已过期", "实际消耗积分（不含退回）"],
        ["生活用品", 2, 1, 0, 0, 1, 20],
        ["小家电维修", 1, 0, 0, 1, 0, 0],
        ["理发", 1, 0, 1, 0, 0, 30],
        ["合计", 4, 1, 1, 1, 1, 50],
    ]
    assert book["按服务点汇总"] == [
        ["核销服务点", "已领取", "实际消耗积分（不含退回）"],
        ["李师傅理发", 1, 30],
        ["合计", 1, 30],
    ]


async def test_export_points_as_csv_in_english_holds_the_lines(world: DashboardWorld, tmp_path: Path) -> None:
    await activity(world)

    path = await export(world, tmp_path, "points", *PERIOD, "--lang", "en", suffix="csv")

    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads the BOM as UTF-8
    with path.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0][:5] == ["Time", "Resident", "Building", "Points", "Reason"]
    assert lines[1][3:5] == ["40", "Community award"] and lines[1][6] == "清理楼道杂物" and len(lines) == 10


async def test_the_dashboards_points_and_redemptions_downloads_equal_the_command_lines(
    world: DashboardWorld, tmp_path: Path
) -> None:
    await activity(world)
    client = await world.client(ORGANISER)

    page = await (await client.get("/dashboard/exports")).text()
    assert 'data-kind="points"' in page and 'data-kind="redemptions"' in page and "积分台账" in page
    for kind in ("points", "redemptions"):
        response = await client.get(f"/dashboard/exports/{kind}.xlsx?{QUERY}")
        assert response.status == 200, await response.text()
        assert response.headers["Content-Disposition"].startswith(f'attachment; filename="{kind}-demo-')
        downloaded = sheets(await response.read())
        assert downloaded == sheets(await export(world, tmp_path, kind, *PERIOD))
        assert len(downloaded[next(iter(downloaded))]) > 1

    async with world.app.uow() as uow:
        audited, _ = await uow.audit.search(AuditQuery(None, action="dashboard.export."), 0, 10)
    assert {(a.action, a.actor_telegram_id, a.details["rows"]) for a in audited} == {
        ("dashboard.export.points", ORGANISER, 9),
        ("dashboard.export.redemptions", ORGANISER, 4),
    }


async def test_a_grid_worker_or_another_communitys_organiser_cannot_download_them(world: DashboardWorld) -> None:
    await east(world)
    worker = await world.client(GRID_WORKER)
    stranger = await world.client(EAST_ORGANISER)
    for kind in ("points", "redemptions"):
        assert (await worker.get(f"/dashboard/exports/{kind}.xlsx?community=demo")).status == 403
        assert (await stranger.get(f"/dashboard/exports/{kind}.xlsx?community=demo")).status == 403
        assert (await stranger.get(f"/dashboard/exports/{kind}.xlsx?community=east")).status == 200
