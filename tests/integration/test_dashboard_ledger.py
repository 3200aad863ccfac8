"""The 问题台账 on the web dashboard, through a logged-in aiohttp client: filters, a report's page, each step through
the same desk as the bot (its notices in the outbox), what a grid worker may not see, refused steps that change
nothing, the after-photo upload, the audit log and the xlsx downloads against the command line's export."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from openpyxl import load_workbook
from PIL import Image
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.domain.geo import GeoPoint
from bot.domain.reports import Draft, RejectReason, Report, Status
from bot.sandbox.demo import STAFF_GROUP
from tests.support.dashboard import GRID_WORKER, ORGANISER, RESIDENT, DashboardWorld, dashboard_world
from tests.support.outbox import outbox_rows
from tests.support.reports import jpeg_with_gps

ITEM = re.compile(r'class="ledger-item[^"]*" data-ticket="([^"]+)"')
FLASH = re.compile(r'id="flash">([^<]+)<')
ERROR = re.compile(r'id="error">([^<]+)<')


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path, db_url: str) -> AsyncIterator[DashboardWorld]:
    """On SQLite and on PostgreSQL (the ledger queries are new SQL)."""
    async with dashboard_world(tmp_path, sqlite_template, database=db_url) as built:
        yield built


async def listed(client: Any, query: str = "") -> list[str]:
    response = await client.get(f"/dashboard/reports{query}")
    assert response.status == 200, await response.text()
    return ITEM.findall(await response.text())


async def status_of(world: DashboardWorld, report: Report) -> Status:
    async with world.app.uow() as uow:
        found = await uow.reports.get(report.id)
    assert found is not None
    return found.status


async def post(world: DashboardWorld, client: Any, path: str, **fields: str) -> Any:
    form = {"csrf": await world.csrf(client, "/dashboard/reports"), **fields}
    return await client.post(path, data=form, allow_redirects=False)


async def other_community_report(world: DashboardWorld) -> Report:
    """A report in another community ("east"), by a resident there."""
    services = world.app.services
    east = await services.communities.add("east", "东区社区", [("1", "东1号楼")])
    await services.residents.give_consent(2000001, "赵大爷", "zh_Hans")
    await services.residents.join(2000001, east.id, east.buildings[0].id)
    draft = Draft("pests", "地下室发现老鼠，晚上很多", skip_reason="other", building_id=east.buildings[0].id)
    return (await services.reports.submit(2000001, draft)).report


async def test_filters_return_the_matching_reports(world: DashboardWorld) -> None:
    litter = await world.report(description="2号楼门口垃圾桶满了")
    world.clock.advance(days=2)
    pests = await world.report(category="pests", building=None, photo=False, description="地下室有很多老鼠出没")
    world.clock.advance(hours=1)
    third = await world.report(building="1", description="1号楼楼道里堆满了杂物")
    worker = await world.resident_id(GRID_WORKER)
    await world.app.services.report_desk.accept(ORGANISER, litter.id, worker)  # its deadline (24 h) has passed
    client = await world.client(ORGANISER)

    assert await listed(client) == [third.ticket, pests.ticket, litter.ticket]  # newest first
    assert await listed(client, "?state=submitted") == [third.ticket, pests.ticket]
    assert await listed(client, "?state=open&category=pests") == [pests.ticket]
    community = await world.app.services.communities.by_code("demo")
    assert community is not None
    one = community.building("1")
    assert one is not None
    assert await listed(client, f"?building={one.id}") == [third.ticket]
    assert await listed(client, "?overdue=1") == [litter.ticket]
    assert await listed(client, f"?assignee={worker}") == [litter.ticket]
    assert await listed(client, "?assignee=none") == [third.ticket, pests.ticket]
    assert await listed(client, "?from=2026-11-26&to=2026-11-27") == [litter.ticket]
    assert await listed(client, "?to=2026-11-26&from=2026-11-28") == [third.ticket, pests.ticket, litter.ticket]
    sanitary = await listed(client, "?track=sanitary")
    assert pests.ticket in sanitary and litter.ticket in sanitary

    response = await client.get("/dashboard/reports?state=nonsense&building=99999&from=yesterday")
    page = await response.text()
    assert response.status == 200 and len(ITEM.findall(page)) == 3  # nonsense is ignored and said so
    assert "以下筛选条件无效，已忽略：状态 / 楼栋 / 提交日期自" in page


async def test_pages_list_twenty_reports_each(world: DashboardWorld) -> None:
    made = []
    for n in range(23):
        made.append(await world.report(photo=False, category="pests", description=f"第{n}号楼道发现老鼠"))
        world.clock.advance(minutes=1)
    client = await world.client(ORGANISER)
    first = await listed(client)
    second = await listed(client, "?page=2")
    assert first == [r.ticket for r in reversed(made)][:20]
    assert second == [r.ticket for r in reversed(made)][20:]
    assert await listed(client, "?page=999999999999999999999") == second  # past the end: the last page


async def test_accept_and_assign_on_the_page_tells_the_reporter_and_the_assignee(world: DashboardWorld) -> None:
    report = await world.report()
    worker = await world.resident_id(GRID_WORKER)
    client = await world.client(ORGANISER)
    page = await (await client.get(f"/dashboard/reports/{report.id}")).text()
    assert f'action="/dashboard/reports/{report.id}/accept"' in page and "老张" in page
    before = {r.id for r in await outbox_rows(world.app)}

    response = await post(world, client, f"/dashboard/reports/{report.id}/accept", assignee=str(worker))

    assert response.status == 303
    assert response.headers["Location"] == f"/dashboard/reports/{report.id}?done=accept"
    shown = await (await client.get(response.headers["Location"])).text()
    assert FLASH.findall(shown) == [f"{report.ticket} 已受理，指派给 老张。报告人和责任人会收到机器人的通知。"]
    assert await status_of(world, report) is Status.ACCEPTED
    new = [r for r in await outbox_rows(world.app) if r.id not in before]
    sent = {(r.chat_id, r.payload["template"]) for r in new}
    assert (RESIDENT, "reports/notify/accepted") in sent  # the reporter, as from the bot's button
    assert (GRID_WORKER, "reports/staff/assigned") in sent  # the assignee, with the buttons for the next step
    assert (STAFF_GROUP, "reports/staff/new") in sent  # the card in the staff group, edited
    told = next(r for r in new if r.chat_id == RESIDENT)
    assert told.payload["context"]["assignee"] == "老张" and told.payload["context"]["points"] == 5
    audit = [line for line in await audit_lines(world) if line["action"] == "report.accept"]
    assert audit and audit[0]["actor"] == ORGANISER and audit[0]["details"]["report"] == report.ticket


async def audit_lines(world: DashboardWorld) -> list[dict[str, Any]]:
    from bot.domain.audit import AuditQuery

    async with world.app.uow() as uow:
        lines, _ = await uow.audit.search(AuditQuery(None), 0, 100)
    return [
        {"action": x.action, "actor": x.actor_telegram_id, "allowed": x.allowed, "details": x.details} for x in lines
    ]


async def test_reject_with_reason_closes_the_report_and_tells_the_reporter(world: DashboardWorld) -> None:
    report = await world.report()
    client = await world.client(ORGANISER)
    before = {r.id for r in await outbox_rows(world.app)}

    response = await post(world, client, f"/dashboard/reports/{report.id}/reject", reason="not_ours")

    assert response.status == 303 and await status_of(world, report) is Status.REJECTED
    new = [r for r in await outbox_rows(world.app) if r.id not in before]
    told = [r for r in new if r.chat_id == RESIDENT]
    assert [r.payload["template"] for r in told] == ["reports/notify/rejected"]
    assert told[0].payload["context"]["reject_reason"] == "not_ours"
    page = await (await client.get(f"/dashboard/reports/{report.id}")).text()
    assert "不属于社区处理范围" in page and 'data-action="reject"' in page


async def test_a_grid_worker_gets_404_on_reports_not_theirs_and_their_photos(world: DashboardWorld) -> None:
    elsewhere = await other_community_report(world)
    unassigned = await world.report()
    mine = await world.report(description="3号楼门口的垃圾没人清理")
    worker = await world.resident_id(GRID_WORKER)
    await world.app.services.report_desk.accept(ORGANISER, mine.id, worker)
    client = await world.client(GRID_WORKER)

    assert await listed(client) == [mine.ticket]
    assert (await client.get(f"/dashboard/reports/{mine.id}")).status == 200
    assert (await client.get(f"/dashboard/photos/{mine.id}/b0")).status == 200
    for report in (elsewhere, unassigned):
        page = await client.get(f"/dashboard/reports/{report.id}")
        assert page.status == 404 and "不在您负责的范围内" in await page.text()
        assert (await client.get(f"/dashboard/photos/{report.id}/b0")).status == 404
    for forged in ("999999", "abc", "-1", "1" * 40):
        assert (await client.get(f"/dashboard/reports/{forged}")).status == 404

    response = await post(world, client, f"/dashboard/reports/{unassigned.id}/reject", reason="invalid")
    assert response.status == 404 and await status_of(world, unassigned) is Status.SUBMITTED
    refused = [x for x in await audit_lines(world) if x["action"] == "dashboard.report.reject"]
    assert refused and refused[0]["actor"] == GRID_WORKER and refused[0]["allowed"] is False
    organiser = await world.client(ORGANISER)  # the organiser of "demo" does not see "east" either
    assert (await organiser.get(f"/dashboard/reports/{elsewhere.id}")).status == 404


async def test_refused_steps_change_nothing_and_say_why(world: DashboardWorld) -> None:
    report = await world.report()
    client = await world.client(ORGANISER)
    base = f"/dashboard/reports/{report.id}"

    wrong_state = await post(world, client, f"{base}/verify")
    assert wrong_state.status == 409
    assert ERROR.findall(await wrong_state.text()) == [
        "这一步现在不能办理：问题当前的状态是“待受理”。页面已显示最新情况。"
    ]
    forged_reason = await post(world, client, f"{base}/reject", reason="x" * 5000)
    assert forged_reason.status == 400 and "请从页面上的选项中选择" in await forged_reason.text()
    forged_person = await post(world, client, f"{base}/accept", assignee="123456789")
    assert forged_person.status == 400 and "不能指派" in await forged_person.text()
    unknown_move = await post(world, client, f"{base}/explode")
    assert unknown_move.status == 404
    no_token = await client.post(f"{base}/reject", data={"reason": "invalid"}, allow_redirects=False)
    assert no_token.status == 403
    huge = await client.post(f"{base}/reject", data={"csrf": "x", "reason": "y" * (3 * 1024 * 1024)})
    assert huge.status == 413 and "提交的内容太大" in await huge.text()
    assert await status_of(world, report) is Status.SUBMITTED

    worker = await world.resident_id(GRID_WORKER)
    await world.app.services.report_desk.accept(ORGANISER, report.id, worker)
    long_note = await post(world, client, f"{base}/resolve", note="修" * 400)
    assert long_note.status == 400
    assert "整改说明需要 5–300 个字，现在是 400 个字。" in await long_note.text()
    far = await post(world, client, f"{base}/deadline", day="2030-01-01")
    assert far.status == 400 and "不能超过 90 天之后" in await far.text()
    assert await status_of(world, report) is Status.ACCEPTED


async def test_resolve_with_an_uploaded_photo_stores_it_without_metadata(world: DashboardWorld) -> None:
    report = await world.report()
    worker = await world.resident_id(GRID_WORKER)
    await world.app.services.report_desk.accept(ORGANISER, report.id, worker)
    client = await world.client(GRID_WORKER)
    form = FormData()
    form.add_field("csrf", await world.csrf(client, "/dashboard/reports"))
    form.add_field("note", "已清运垃圾并消杀")
    form.add_field("photo", jpeg_with_gps(colour=(20, 160, 40)), filename="after.jpg", content_type="image/jpeg")

    response = await client.post(f"/dashboard/reports/{report.id}/resolve", data=form, allow_redirects=False)

    assert response.status == 303, await response.text()
    assert await status_of(world, report) is Status.RESOLVED
    served = await client.get(f"/dashboard/photos/{report.id}/a")
    data = await served.read()
    assert served.status == 200 and served.headers["Content-Type"] == "image/jpeg"
    assert not Image.open(io.BytesIO(data)).getexif() and b"PhoneMaker" not in data
    thumb = await client.get(f"/dashboard/photos/{report.id}/b0?size=thumb")
    assert thumb.status == 200 and not Image.open(io.BytesIO(await thumb.read())).getexif()
    asked = [r for r in await outbox_rows(world.app) if r.chat_id == RESIDENT]
    assert asked[-1].payload["template"] == "reports/notify/resolved"


async def test_resolve_refuses_a_missing_a_fake_or_a_huge_photo(world: DashboardWorld) -> None:
    report = await world.report()
    await world.app.services.report_desk.accept(ORGANISER, report.id, await world.resident_id(GRID_WORKER))
    client = await world.client(GRID_WORKER)
    token = await world.csrf(client, "/dashboard/reports")

    async def resolve(photo: bytes | None) -> tuple[int, list[str]]:
        form = FormData()
        form.add_field("csrf", token)
        form.add_field("note", "已清运垃圾并消杀")
        if photo is not None:
            form.add_field("photo", photo, filename="after.jpg", content_type="image/jpeg")
        response = await client.post(f"/dashboard/reports/{report.id}/resolve", data=form, allow_redirects=False)
        return response.status, ERROR.findall(await response.text())

    assert await resolve(None) == (400, ["请附上一张整改后的现场照片。"])
    assert await resolve(b"%PDF-1.4 not a photo") == (400, ["只能上传 JPEG、PNG 或 WebP 格式的照片。"])
    assert await resolve(b"\xff\xd8\xff" + b"0" * (11 * 1024 * 1024)) == (400, ["照片太大了，不能超过 10 MB。"])
    assert await status_of(world, report) is Status.ACCEPTED


async def test_deadline_reassign_close_and_reopen_go_through_the_desk(world: DashboardWorld) -> None:
    report = await world.report()
    worker = await world.resident_id(GRID_WORKER)
    organiser_id = await world.resident_id(ORGANISER)
    await world.app.services.report_desk.accept(ORGANISER, report.id, worker)
    client = await world.client(ORGANISER)
    base = f"/dashboard/reports/{report.id}"

    assert (await post(world, client, f"{base}/deadline", days="3")).status == 303
    assert (await post(world, client, f"{base}/reassign", assignee=str(organiser_id))).status == 303
    page = await (await client.get(f"{base}?done=reassign")).text()
    assert FLASH.findall(page) == [f"{report.ticket} 已改派给 刘主任，相关人员会收到通知。"]
    world.files.add("after", jpeg_with_gps())
    after = await world.app.services.reports.add_photo("after", 0)
    await world.app.services.report_desk.resolve(ORGANISER, report.id, after, "已经清理干净了")
    assert (await post(world, client, f"{base}/reopen")).status == 303
    assert await status_of(world, report) is Status.ACCEPTED
    page = await (await client.get(base)).text()
    actions = re.findall(r'data-action="(\w+)"', page)
    assert actions == ["submit", "accept", "deadline", "reassign", "resolve", "reopen"]


async def test_the_audit_log_is_for_organisers_and_filters_by_action(world: DashboardWorld) -> None:
    report = await world.report()
    await world.app.services.report_desk.reject(ORGANISER, report.id, RejectReason.INVALID)
    organiser = await world.client(ORGANISER)
    page = await (await organiser.get("/dashboard/audit?action=report.reject")).text()
    assert re.findall(r'data-action="([^"]+)"', page) == ["report.reject"]
    assert "刘主任" in page
    worker = await world.client(GRID_WORKER)
    refused = await worker.get("/dashboard/audit")
    assert refused.status == 403 and "仅限组织者" in await refused.text()


async def test_the_reports_download_equals_the_command_lines_export(world: DashboardWorld, tmp_path: Path) -> None:
    litter = await world.report()
    await world.report(category="pests", building=None, photo=False, description="地下室有很多老鼠出没")
    await world.app.services.report_desk.accept(ORGANISER, litter.id, await world.resident_id(GRID_WORKER))
    client = await world.client(ORGANISER)

    response = await client.get("/dashboard/exports/reports.xlsx?community=demo&from=2026-11-01&to=2026-11-30")
    assert response.status == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="reports-demo-')
    downloaded = tmp_path / "web.xlsx"
    downloaded.write_bytes(await response.read())
    by_cli = tmp_path / "cli.xlsx"
    env = {"SICHENG_DATABASE__URL": world.app.settings.database.url,
           "SICHENG_FILES__ROOT": str(world.app.settings.files.root)}  # fmt: skip
    args = ["export", "reports", "--community", "demo", "--from", "2026-11-01", "--to", "2026-11-30", "--out",
            str(by_cli)]  # fmt: skip
    result = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert result.exit_code == 0, result.output

    web_rows = cells(downloaded)
    assert web_rows == cells(by_cli) and len(web_rows) == 3
    assert web_rows[0][0] == "编号" and web_rows[1][0] == litter.ticket

    hours = await client.get("/dashboard/exports/volunteers.xlsx?community=demo")
    assert hours.status == 200
    assert load_workbook(io.BytesIO(await hours.read())).sheetnames == ["服务明细", "按志愿者汇总", "按活动汇总"]
    worker = await world.client(GRID_WORKER)
    assert (await worker.get("/dashboard/exports/reports.xlsx?community=demo")).status == 403
    assert 'href="/dashboard/exports"' not in await (await worker.get("/dashboard/")).text()  # not offered either
    assert 'href="/dashboard/exports"' in await (await client.get("/dashboard/")).text()
    assert (await client.get("/dashboard/exports/reports.xlsx?community=nope")).status == 403
    assert (await client.get("/dashboard/exports/reports.xlsx?community=demo&from=31-31")).status == 400


def cells(path: Path) -> list[list[Any]]:
    sheet = load_workbook(path).active
    assert sheet is not None
    return [[c.value for c in row] for row in sheet.iter_rows()]


async def test_the_position_chart_places_located_reports_relative_to_each_other(world: DashboardWorld) -> None:
    services = world.app.services
    world.files.add("p1", jpeg_with_gps())
    key = await services.reports.add_photo("p1", 0)
    south = Draft("litter", "小区东门垃圾没有清运", (key,), location=GeoPoint(31.2304, 121.4737))
    first = (await services.reports.submit(RESIDENT, south)).report
    north = Draft("litter", "北门垃圾桶满了没人管", (key,), location=GeoPoint(31.2313, 121.4737))
    second = (await services.reports.submit(RESIDENT, north)).report
    client = await world.client(ORGANISER)

    page = await (await client.get(f"/dashboard/reports/{second.id}")).text()

    dot = re.compile(r'data-ticket="([^"]+)" data-current="\d" data-east-m="([-\d.]+)" data-north-m="([-\d.]+)"')
    dots = {ticket: (float(east), float(north)) for ticket, east, north in dot.findall(page)}
    assert set(dots) == {first.ticket, second.ticket}
    assert dots[second.ticket][1] - dots[first.ticket][1] == pytest.approx(100, abs=2)  # 0.0009° north ≈ 100 m
    assert 'data-current="1"' in page
