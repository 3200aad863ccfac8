"""The web dashboard's door and its overview: one-time login links from the bot, the session cookie, logout, roles
read again on every request, CSRF, a person's communities — and that the overview shows the very figures
``sicheng stats`` prints for the same data."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.domain.errors import Forbidden
from bot.domain.roles import Role
from storage.models import AuditLogRow
from tests.conftest import in_thread
from tests.support.dashboard import (
    COMMUNITY,
    GRID_WORKER,
    ORGANISER,
    RESIDENT,
    DashboardWorld,
    dashboard_world,
    lively,
)


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[DashboardWorld]:
    async with dashboard_world(tmp_path, sqlite_template) as built:
        yield built


async def audit(world: DashboardWorld, action: str) -> list[tuple[int | None, bool, dict[str, Any]]]:
    async with world.app.engine.connect() as connection:
        rows = await connection.execute(
            select(AuditLogRow.actor_telegram_id, AuditLogRow.allowed, AuditLogRow.details)
            .where(AuditLogRow.action == action)
            .order_by(AuditLogRow.id)
        )
        return [(actor, allowed, details) for actor, allowed, details in rows.all()]


async def test_dashboard_command_gives_a_link_that_opens_the_dashboard_once(world: DashboardWorld) -> None:
    chat = world.chat(ORGANISER)
    replies = await chat.send("/dashboard")
    assert "10 分钟内有效" in replies[-1] and "只能打开一次" in replies[-1]
    [[(label, url)]] = [[(text, data) for text, data in row] for row in chat.last().buttons]
    assert label == "🖥 打开工作台"
    assert url is not None and url.startswith("http://dashboard.test/dashboard/login?token=")
    assert "token=" not in replies[-1]  # on the button only: a link in the text would be fetched for a preview
    parts = urlsplit(url)
    link = f"{parts.path}?{parts.query}"

    browser = await world.anonymous()
    opened = await browser.get(link, allow_redirects=False)
    assert opened.status == 303 and opened.headers["Location"] == "/dashboard/"  # the token leaves the address bar
    cookie = opened.headers["Set-Cookie"]
    assert cookie.startswith("sicheng_dash=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # the test's public URL is plain http
    page = await browser.get("/dashboard/")
    assert page.status == 200
    assert "示范社区 · 总览" in await page.text()

    again = await (await world.anonymous()).get(link, allow_redirects=False)
    assert again.status == 403
    text = await again.text()
    assert "已经用过了" in text and "/dashboard" in text
    assert [allowed for _, allowed, _ in await audit(world, "dashboard_login")] == [True, False]
    assert [(actor, allowed) for actor, allowed, _ in await audit(world, "dashboard_link")] == [(ORGANISER, True)]


async def test_link_tapped_on_another_site_logs_in_through_a_page_of_the_site(world: DashboardWorld) -> None:
    """Telegram Web is another site: the browser would not send the new SameSite=Strict cookie along a redirect from
    there, so the login answers with a page that moves on by itself (tests/e2e shows it working in Chromium)."""
    browser = await world.anonymous()
    opened = await browser.get(await world.link(ORGANISER), headers={"Sec-Fetch-Site": "cross-site"})
    assert opened.status == 200 and "sicheng_dash" in opened.cookies
    assert '<meta http-equiv="refresh" content="0; url=/dashboard/">' in await opened.text()
    assert (await browser.get("/dashboard/")).status == 200


async def test_expired_or_unknown_link_is_refused_with_a_page_saying_why(world: DashboardWorld) -> None:
    link = await world.link(GRID_WORKER)
    world.clock.advance(minutes=11)
    browser = await world.anonymous()
    expired = await browser.get(link, allow_redirects=False)
    assert expired.status == 403 and "已过期" in await expired.text()
    assert "Set-Cookie" not in expired.headers
    unknown = await browser.get("/dashboard/login?token=made-up", allow_redirects=False)
    assert unknown.status == 403 and "无效" in await unknown.text()
    english = await browser.get("/dashboard/login?token=x", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "This login link is not valid." in await english.text()
    assert (await browser.get("/dashboard/")).status == 401


async def test_session_cookie_is_secure_behind_https_and_the_session_ends_after_its_hours(
    world: DashboardWorld,
) -> None:
    world.app.services.dashboard.url = "https://jiedao.example.cn"
    link = await world.link(ORGANISER)
    assert link.startswith("/dashboard/login?token=")
    browser = await world.anonymous()
    opened = await browser.get(link, allow_redirects=False)
    cookie = opened.headers["Set-Cookie"]
    assert "Secure" in cookie
    # The test server speaks plain http, where a browser keeps a Secure cookie to itself: send it by hand.
    sent = {"Cookie": cookie.split(";")[0]}
    assert (await browser.get("/dashboard/buildings", headers=sent)).status == 200
    world.clock.advance(hours=8, minutes=1)
    later = await browser.get("/dashboard/buildings", headers=sent)
    assert later.status == 401 and "登录工作台" in await later.text()


async def test_logout_needs_the_csrf_token_and_ends_the_session(world: DashboardWorld) -> None:
    browser = await world.client(ORGANISER)
    assert (await browser.post("/dashboard/logout", data={})).status == 403
    assert (await browser.post("/dashboard/logout", data={"csrf": "guessed"})).status == 403
    assert (await browser.get("/dashboard/")).status == 200  # still logged in
    token = await world.csrf(browser)
    out = await browser.post("/dashboard/logout", data={"csrf": token})
    assert out.status == 200 and "已退出工作台" in await out.text()
    assert (await browser.get("/dashboard/")).status == 401
    assert [actor for actor, _, _ in await audit(world, "dashboard_logout")] == [ORGANISER]


async def test_revoked_role_ends_the_session_at_the_next_request(world: DashboardWorld) -> None:
    browser = await world.client(GRID_WORKER)
    assert (await browser.get("/dashboard/")).status == 200
    await world.app.services.access.revoke(GRID_WORKER, Role.GRID_WORKER, COMMUNITY, actor=ORGANISER)
    page = await browser.get("/dashboard/")
    assert page.status == 401 and "登录工作台" in await page.text()
    assert (await browser.post("/dashboard/logout", data={"csrf": "x"})).status == 403
    [(actor, allowed, details)] = await audit(world, "dashboard_session_ended")
    assert (actor, allowed, details["why"]) == (GRID_WORKER, True, "role")
    await world.app.services.access.grant(GRID_WORKER, Role.GRID_WORKER, COMMUNITY, actor=ORGANISER)
    assert (await browser.get("/dashboard/")).status == 401  # an ended session stays ended


async def test_resident_gets_no_link_and_the_refusal_is_audited(world: DashboardWorld) -> None:
    chat = world.chat(RESIDENT)
    replies = await chat.send("/dashboard")
    assert "token" not in "".join(replies) and not chat.last().buttons
    assert "只有社区工作人员可以使用" in replies[-1]
    with pytest.raises(Forbidden):
        await world.link(RESIDENT)
    refusals = [(actor, allowed) for actor, allowed, _ in await audit(world, "dashboard")]
    assert refusals == [(RESIDENT, False)]


async def test_grid_worker_sees_only_their_communities(world: DashboardWorld) -> None:
    await world.app.services.communities.add("hexi", "河西社区", [("1", "河西1号楼")])
    browser = await world.client(GRID_WORKER)
    mine = await browser.get("/dashboard/")
    text = await mine.text()
    assert mine.status == 200 and "示范社区 · 总览" in text and "河西社区" not in text
    for path in ("/dashboard/?c=hexi", "/dashboard/buildings?c=hexi", "/dashboard/?c=nowhere"):
        refused = await browser.get(path)
        assert refused.status == 404, path
        assert "河西" not in await refused.text()


async def test_street_staff_see_their_communities_side_by_side(world: DashboardWorld) -> None:
    await world.app.services.communities.add("hexi", "河西社区", [("1", "河西1号楼")])
    await world.app.services.access.grant(ORGANISER, Role.ORGANISER, None, actor=None)  # a street-level role
    browser = await world.client(ORGANISER)
    text = await (await browser.get("/dashboard/")).text()
    assert "各社区并排比较" in text
    assert re.search(r"<th scope=\"col\"><a [^>]*>示范社区</a></th><th scope=\"col\"><a [^>]*>河西社区</a>", text)
    labels = re.findall(r'data-label="([^"]+)" data-value', text)
    assert labels == ["示范社区", "河西社区"]
    assert '<text x="100" y="' in text or "无登记居民" in text  # 河西 has nobody registered: said, not drawn as 0%


def cli(url: str, *args: str) -> str:
    from bot.cli import app

    result = CliRunner().invoke(app, list(args), env={"SICHENG_DATABASE__URL": url, "SICHENG_LOG_LEVEL": "WARNING"})
    assert result.exit_code == 0, result.output
    return result.output


def cells(html: str, section: str) -> str:
    """The text of one section of the page, tags dropped."""
    found = re.search(rf'<section class="card" id="{section}">(.*?)</section>', html, re.S)
    assert found, section
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


async def test_overview_shows_the_figures_sicheng_stats_prints(world: DashboardWorld) -> None:
    await lively(world.app, world.clock, residents=10, reports=14, days=20)
    today = world.clock.now.date()
    first = today - timedelta(days=19)
    url = world.app.settings.database.url
    period = ("--from", str(first), "--to", str(today))
    reports = in_thread(cli, url, "stats", "reports", "--community", COMMUNITY, *period)
    awareness = in_thread(cli, url, "stats", "awareness", "--community", COMMUNITY)
    volunteers = in_thread(cli, url, "stats", "volunteers", "--community", COMMUNITY, "--days", "0")

    browser = await world.client(ORGANISER)
    query = f"period=custom&from={first}&to={today}"
    html = await (await browser.get(f"/dashboard/?{query}")).text()
    figures = cells(html, "reports")
    total = int(re.search(r"demo: (\d+) reports", reports).group(1))  # type: ignore[union-attr]
    assert total >= 10
    assert f"新上报 {total} " in figures
    by_type = dict(re.findall(r"(open|fixed|closed) (\d+)", reports.splitlines()[1]))
    assert f"已办结 {int(by_type['fixed']) + int(by_type['closed'])} " in figures
    median, p90 = re.search(r"submitted→resolved hours: median ([\d.]+), p90 ([\d.]+)", reports).groups()  # type: ignore[union-attr]
    assert f"处理时长中位数 {float(median) / 24:.1f} 天" in figures
    assert f"90% 的问题在此天数内解决 {float(p90) / 24:.1f} 天" in figures
    on_time, reopened = re.search(r"on time: (\S+); reopened: (\S+)", reports).groups()  # type: ignore[union-attr]
    assert f"按期解决率 {on_time} " in figures and f"返工率 {reopened} " in figures

    # Awareness: the CLI's community row (knowing a track counts every answer so far).
    row = next(line.split() for line in awareness.splitlines() if line.startswith("(community)"))
    registered, shares = int(row[1]), row[2:6]
    assert registered >= 10
    shown = cells(html, "awareness")
    names = ["全国文明城市", "国家卫生城市", "国家园林城市", "国家食品安全示范城市"]
    for name, share in zip(names, shares, strict=True):
        assert f"{name} {share} " in shown
    bars = r'<rect class="bar"[^>]*data-label="([^"]+)" data-value="([^"]+)"'
    chart = re.findall(bars, html.split('id="awareness"')[1])
    assert [label for label, _ in chart[:4]] == names
    assert [f"{round(100 * float(v))}%" for _, v in chart[:4]] == shares
    assert 'data-goal="0.85"' in html
    participation = cells(html, "participation")
    assert f"答题参与率 {row[6]} " in participation  # every answer fell within both periods

    match = re.search(r"participation: (\d+) volunteer\(s\) of \d+ registered resident\(s\) = ([\d.]+)%", volunteers)
    assert match
    since_ever = await (await browser.get(f"/dashboard/?period=custom&from=2000-01-01&to={today}")).text()
    vols = cells(since_ever, "volunteers")  # the CLI's --days 0: all the service on record
    assert f"志愿者 {match.group(1)} " in vols
    hours = sum(float(h) for h in re.findall(r"^\s+\S+\s+([\d.]+)$", volunteers.split("per building")[0], re.M))
    assert f"服务时长 {hours:.1f} 小时" in vols

    columns = html.split('data-chart="columns"')[1].split("</svg>")[0]
    series = dict(re.findall(r'data-series="(\w+)">(.*?)</g>', columns))
    made = [int(v) for v in re.findall(r'data-value="(\d+)"', series["opened"])]
    assert len(made) == 20 and sum(made) == total  # a column a day of the 20


async def test_buildings_page_shows_the_ranking_the_bot_shows(world: DashboardWorld) -> None:
    people = await lively(world.app, world.clock, residents=8, reports=8, days=10)
    ranks = await world.app.services.points.rankings(people[0], "month")
    browser = await world.client(GRID_WORKER)
    html = await (await browser.get("/dashboard/buildings")).text()
    ranking = html.split('id="ranking"')[1].split("</section>")[0]
    drawn = re.findall(r'data-label="([^"]+)" data-value="(\d+)"', ranking)
    assert drawn == [(s.name, str(s.points)) for s in ranks.buildings]
    assert drawn, "the lively month earns the buildings points"
    table = html.split('id="table"')[1]
    assert '<th scope="row">6号楼</th>' in table and "无登记居民" in table  # nobody there: said, not 0%
