"""The organisers' dashboard in headless Chromium, on the whole sandbox stack (emulator over HTTP + the bot on the
aiogram channel + the page + the dashboard): an organiser asks the bot for a link in the sandbox's chat page, opens
it, reads the overview and its charts; a used or expired link is refused; a form without its CSRF token is refused.

With ``SICHENG_SCREENSHOTS=<folder>`` the overview is also photographed at a phone's and a desktop's width, in both
languages, on a lively month of data (``docs/dashboard-overview.png`` comes from there).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config import DashboardSettings, FilesSettings, SandboxSettings, Settings, TelegramSettings
from bot.sandbox.app import Sandbox, start_sandbox
from tests.e2e.conftest import CHROMIUM_ARGS
from tests.support.dashboard import GRID_WORKER, ORGANISER, lively
from tests.support.reports import Clock
from tests.support.sandbox_user import SimResident

TIMEOUT_MS = 30_000  # the stack answers in well under a second; this only bounds a failure on a busy machine
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = os.environ.get("SICHENG_SCREENSHOTS", "")
TRACKS = ["全国文明城市", "国家卫生城市", "国家园林城市", "国家食品安全示范城市"]


@dataclass
class Stack:
    box: Sandbox
    clock: Clock


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        sandbox=SandboxSettings(database=f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}"),
        telegram=TelegramSettings(chat_per_second=50.0),
        files=FilesSettings(root=tmp_path / "media"),
        dashboard=DashboardSettings(),  # no URL: the sandbox gives its own address
    )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    async with start_sandbox(settings_for(tmp_path), port=0, fresh=True, clock=clock) as box:
        yield Stack(box, clock)


async def ask_for_link(box: Sandbox, telegram_id: int) -> str:
    """Send /dashboard as the person and read the link from the button of the bot's reply."""
    person = SimResident(box.emulator, telegram_id)
    await person.send("/dashboard")
    reply = await person.wait_for("社区工作台")
    [[button]] = reply["inline_keyboard"]
    assert button["text"] == "🖥 打开工作台"
    return str(button["url"])


def meet(box: Sandbox, residents: int) -> None:
    """The people ``lively`` registers, on the Telegram side too (they started the bot), so the bot's notices to them
    are delivered like anyone's."""
    bot = box.emulator.bot().id
    for n in range(residents):
        user = 2_000_001 + n
        box.emulator.create_user(f"居民{n + 1}", language_code="zh-hans", user_id=user)
        box.emulator.started.add((user, bot))


async def launch(playwright: Any, chromium: str) -> Any:
    return await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)


async def chart_values(page: Any, selector: str) -> list[tuple[str, float]]:
    """(label, value) of every bar drawn in the chart (read from its data attributes, not its pixels)."""
    bars = page.locator(f"{selector} rect.bar")
    return [
        (str(await bar.get_attribute("data-label")), float(str(await bar.get_attribute("data-value"))))
        for bar in await bars.all()
    ]


@pytest.mark.browser
async def test_organiser_gets_a_link_in_the_chat_and_reads_the_overview(chromium: str, stack: Stack) -> None:
    from playwright.async_api import async_playwright, expect

    box = stack.box
    meet(box, 8)
    await lively(box.app, stack.clock, residents=8, reports=8, days=10)
    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium)
        try:
            context = await browser.new_context(viewport=DESKTOP, locale="zh-CN")
            chat = await context.new_page()
            errors: list[str] = []
            chat.on("pageerror", lambda error: errors.append(str(error)))
            await chat.goto(box.url + "/")
            await chat.wait_for_selector("body[data-ready]")
            await chat.get_by_label("我是").select_option(str(ORGANISER))
            await chat.get_by_label("消息", exact=True).fill("/dashboard")
            await chat.get_by_label("消息", exact=True).press("Enter")
            messages = chat.locator("#messages")
            await expect(messages.locator(".msg.in .bubble").last).to_contain_text("社区工作台")
            # The link is on a button; the page asks before opening a link, then opens it in a new tab.
            await messages.get_by_role("button", name=re.compile("打开工作台")).last.click()
            async with context.expect_page() as opened:
                await chat.locator("#alert-dialog").get_by_role("button", name=re.compile("OK|打开|确定")).click()
            page = await opened.value
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.wait_for_url(box.url + "/dashboard/")  # the token has left the address bar
            await expect(page.locator("h1")).to_have_text("示范社区 · 总览")

            # The awareness chart shows the service's figures, with the 85% goal drawn.
            since = box.app.services.report_stats.since_days(30)
            report = await box.app.services.quiz.stats.for_community("demo", since, None)
            drawn = await chart_values(page, "#awareness svg")
            assert [label for label, _ in drawn] == TRACKS
            assert drawn == [(name, pytest.approx(report.total.share(key))) for name, key in
                             zip(TRACKS, ("civilised", "sanitary", "garden", "food_safety"), strict=True)]  # fmt: skip
            assert await page.locator('#awareness svg line[data-goal="0.85"]').count() == 1
            # The time series has a column per day for reports made and handled; they add up to the period's figures.
            figures = await box.app.services.report_stats.figures("demo", since, None)
            opened_dots = page.locator('#reports svg g[data-series="opened"] rect')
            assert await opened_dots.count() == 30
            made = [int(str(await dot.get_attribute("data-value"))) for dot in await opened_dots.all()]
            assert sum(made) == figures.total > 0
            # Buildings with nobody registered say so instead of drawing a 0% bar.
            empty = page.locator('#participation svg text.empty[data-label="6号楼"]')
            await expect(empty).to_have_text("无登记居民")

            # Another period through the form: the last 7 days.
            await page.get_by_label("期间").select_option("week")
            await page.get_by_role("button", name="查看").click()
            await expect(page.locator("p.period")).to_contain_text("共 7 天")
            assert await page.locator('#reports svg g[data-series="opened"] rect').count() == 7

            # Buildings page: the ranking as /rank shows it.
            await page.get_by_role("link", name="文明楼栋").click()
            await expect(page.locator("h1")).to_have_text("示范社区 · 文明楼栋")
            ranks = await box.app.services.points.building_ranking(1, "month")
            drawn_ranks = await chart_values(page, "#ranking svg")
            assert drawn_ranks == [(s.name, s.points) for s in ranks]
            assert errors == []
        finally:
            await browser.close()


@pytest.mark.browser
async def test_used_or_expired_link_is_refused_and_a_form_without_csrf_too(chromium: str, stack: Stack) -> None:
    from playwright.async_api import async_playwright, expect

    box = stack.box
    expect.set_options(timeout=TIMEOUT_MS)
    link = await ask_for_link(box, GRID_WORKER)
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium)
        try:
            mine = await browser.new_context(viewport=PHONE, locale="zh-CN")
            page = await mine.new_page()
            await page.goto(link)
            await expect(page.locator("h1")).to_have_text("示范社区 · 总览")
            cookie = next(c for c in await mine.cookies() if c["name"] == "sicheng_dash")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
            assert await page.evaluate("document.cookie") == ""  # out of reach of scripts

            # The same link a second time (forwarded, or opened again): refused, saying why and what to do.
            other = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
            response = await other.goto(link)
            assert response is not None and response.status == 403
            await expect(other.locator(".notice.bad")).to_have_text("这个登录链接已经用过了，每个链接只能打开一次。")
            await expect(other.locator("main")).to_contain_text("在机器人里发送 /dashboard")

            # A fresh link left for eleven minutes: expired.
            late = await ask_for_link(box, GRID_WORKER)
            stack.clock.advance(minutes=11)
            response = await other.goto(late)
            assert response is not None and response.status == 403
            await expect(other.locator(".notice.bad")).to_have_text("这个登录链接已过期。")

            # A form sent without its CSRF token (as a forged one from another site would be): refused.
            await page.evaluate("document.querySelector('form.logout input[name=csrf]').remove()")
            async with page.expect_response(re.compile(r"/dashboard/logout$")) as posted:
                await page.get_by_role("button", name="退出").click()
            assert (await posted.value).status == 403
            await page.goto(box.url + "/dashboard/")
            await expect(page.locator("h1")).to_have_text("示范社区 · 总览")  # still logged in
            await page.get_by_role("button", name="退出").click()
            await expect(page.locator(".notice.ok")).to_have_text("已退出工作台。")
            response = await page.goto(box.url + "/dashboard/")
            assert response is not None and response.status == 401
        finally:
            await browser.close()


@pytest.mark.browser
async def test_link_opened_from_another_site_still_logs_in(chromium: str, stack: Stack) -> None:
    """Telegram Web is another site: a link tapped there must log in even though the cookie is SameSite=Strict."""
    from playwright.async_api import async_playwright, expect

    box = stack.box
    expect.set_options(timeout=TIMEOUT_MS)
    link = await ask_for_link(box, ORGANISER)
    elsewhere = link.replace("127.0.0.1", "localhost", 1).split("/dashboard/")[0]  # another site, same server
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium)
        try:
            page = await (await browser.new_context(viewport=DESKTOP, locale="zh-CN")).new_page()
            await page.goto(elsewhere + "/sandbox/api/personas")
            await page.evaluate(
                "href => { const a = document.createElement('a'); a.href = href; a.textContent = 'open';"
                " document.body.appendChild(a); }",
                link,
            )
            await page.get_by_role("link", name="open").click()
            await expect(page.locator("h1")).to_have_text("示范社区 · 总览")
        finally:
            await browser.close()


@pytest.mark.browser
@pytest.mark.skipif(not SCREENSHOTS, reason="set SICHENG_SCREENSHOTS=<folder> to photograph the dashboard")
async def test_screenshots_of_the_overview(chromium: str, stack: Stack) -> None:
    """``dashboard-overview.png`` (desktop) and ``dashboard-overview-phone.png`` (390 px) in Chinese, as docs/ shows
    them; the same and the buildings page in English as ``dashboard-<page>-<locale>-<width>.png`` to look at."""
    import asyncio

    from playwright.async_api import async_playwright, expect

    box = stack.box
    meet(box, 30)
    await lively(box.app, stack.clock)
    folder = Path(SCREENSHOTS)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium)
        try:
            for locale in ("zh_Hans", "en"):
                await box.app.services.residents.set_locale(ORGANISER, locale)
                for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                    context = await browser.new_context(
                        viewport=viewport, locale="zh-CN" if locale == "zh_Hans" else "en"
                    )
                    page = await context.new_page()
                    await page.goto(await box.app.services.dashboard.issue(ORGANISER))
                    await expect(page.locator("h1")).to_contain_text("示范社区", timeout=TIMEOUT_MS)
                    main = "dashboard-overview" + ("" if width == "desktop" else "-phone")
                    name = main if locale == "zh_Hans" else f"dashboard-overview-{locale}-{width}"
                    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
                    await page.goto(box.url + "/dashboard/buildings")
                    await page.screenshot(
                        path=str(folder / f"dashboard-buildings-{locale}-{width}.png"), full_page=True
                    )
                    await context.close()
        finally:
            await browser.close()


# ---------------------------------------------------------------------------------------------- the report ledger
AUNT = 1000002  # 王阿姨, a registered resident of building 2


async def located_report(box: Sandbox, category: str, text: str, where: tuple[float, float], seed: int) -> Any:
    """A report by 王阿姨 with a photo and a location, as the bot stores one (the photo without metadata)."""
    from bot.domain.geo import GeoPoint
    from bot.domain.reports import Draft
    from tests.support.dashboard import picture, store_photo

    photo = await store_photo(box.app, picture((170, 120 + seed * 10 % 80, 90), seed))
    draft = Draft(category, text, (photo,), location=GeoPoint(*where))
    return (await box.app.services.reports.submit(AUNT, draft)).report


@pytest.mark.browser
async def test_organiser_filters_the_ledger_accepts_a_report_and_the_reporter_is_told(
    chromium: str, stack: Stack
) -> None:
    from playwright.async_api import async_playwright, expect

    from bot.domain.reports import Draft

    box = stack.box
    expect.set_options(timeout=TIMEOUT_MS)
    link = await ask_for_link(box, ORGANISER)  # the bot answers: it is running, its start-up clean-up is over
    litter = await located_report(box, "litter", "2号楼门口垃圾桶满了，垃圾散落一地", (31.2304, 121.4737), 1)
    stack.clock.advance(minutes=5)
    pests = Draft("pests", "地下车库晚上老鼠很多", skip_reason="hidden", address="地下车库")
    await box.app.services.reports.submit(AUNT, pests)
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium)
        try:
            context = await browser.new_context(viewport=PHONE, locale="zh-CN")
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(link)
            await page.get_by_role("link", name="问题台账").click()
            items = page.locator("li.ledger-item")
            await expect(items).to_have_count(2)

            # Only new litter reports: the category and the state chosen in the filters.
            await page.locator("details.ledger-filters summary").click()
            await page.get_by_label("状态").select_option(label="待受理")
            await page.get_by_label("类别").select_option(label="乱扔垃圾/垃圾满溢")
            await page.locator("form.ledger-filter-form button[type=submit]").click()
            await expect(items).to_have_count(1)
            assert await items.first.get_attribute("data-ticket") == litter.ticket
            thumb = items.first.locator("img.ledger-thumb")
            await expect(thumb).to_have_js_property("complete", True)
            assert await thumb.evaluate("img => img.naturalWidth") > 0  # served to the logged-in organiser

            # Its page: accept it and assign it to 老张.
            await items.first.locator("a").click()
            await expect(page.locator("article.report")).to_have_attribute("data-status", "submitted")
            await page.get_by_label("指派给").select_option(label="老张")
            await page.get_by_role("button", name="受理并指派").click()
            await expect(page.locator("#flash")).to_have_text(
                f"{litter.ticket} 已受理，指派给 老张。报告人和责任人会收到机器人的通知。"
            )
            await expect(page.locator("article.report")).to_have_attribute("data-status", "accepted")
            await expect(page.locator(".timeline-line").last).to_have_attribute("data-action", "accept")

            # 王阿姨's chat in the sandbox shows the bot's notice, sent through the outbox as from a button in the bot.
            chat = await (await browser.new_context(viewport=DESKTOP, locale="zh-CN")).new_page()
            await chat.goto(box.url + "/")
            await chat.wait_for_selector("body[data-ready]")
            await chat.get_by_label("我是").select_option(str(AUNT))
            notice = chat.locator("#messages .msg.in .bubble", has_text=litter.ticket).last
            await expect(notice).to_contain_text("已受理")
            await expect(notice).to_contain_text("老张")
            worker = SimResident(box.emulator, GRID_WORKER)
            await worker.wait_for(litter.ticket)  # and 老张 has the task in his chat
            assert errors == []
        finally:
            await browser.close()


@pytest.mark.browser
async def test_grid_worker_gets_404_on_another_communitys_report(chromium: str, stack: Stack) -> None:
    from playwright.async_api import async_playwright, expect

    from bot.domain.reports import Draft, Status

    box = stack.box
    services = box.app.services
    expect.set_options(timeout=TIMEOUT_MS)
    link = await ask_for_link(box, GRID_WORKER)  # the bot answers: it is running, its start-up clean-up is over
    east = await services.communities.add("east", "东区社区", [("1", "东1号楼")])
    await services.residents.give_consent(2_100_001, "赵大爷", "zh_Hans")
    await services.residents.join(2_100_001, east.id, east.buildings[0].id)
    elsewhere = (await services.reports.submit(2_100_001, Draft("pests", "地下室发现很多老鼠", skip_reason="other",
                                                                building_id=east.buildings[0].id))).report  # fmt: skip
    unassigned = await located_report(box, "litter", "3号楼后面的垃圾没人清运", (31.2306, 121.4739), 2)
    mine = await located_report(box, "litter", "5号楼门口垃圾散落一地", (31.2301, 121.4733), 3)
    worker = await services.residents.profile(GRID_WORKER)
    assert worker is not None
    await services.report_desk.accept(ORGANISER, mine.id, worker.id)
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium)
        try:
            page = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
            await page.goto(link)
            own = await page.goto(f"{box.url}/dashboard/reports/{mine.id}")
            assert own is not None and own.status == 200
            csrf = await page.locator("form.action-resolve input[name=csrf]").get_attribute("value")
            for report in (elsewhere, unassigned):
                response = await page.goto(f"{box.url}/dashboard/reports/{report.id}")
                assert response is not None and response.status == 404
                await expect(page.locator("h1")).to_have_text("找不到这个问题")
                photo = await page.request.get(f"{box.url}/dashboard/photos/{report.id}/b0")
                assert photo.status == 404
                # A step on it, with the session's own token: the same answer, and nothing changes.
                step = await page.request.post(
                    f"{box.url}/dashboard/reports/{report.id}/reject",
                    form={"csrf": str(csrf), "reason": "invalid"},
                    max_redirects=0,
                )
                assert step.status == 404
            for report in (elsewhere, unassigned):
                _, history = await services.reports.detail(AUNT if report is unassigned else 2_100_001, report.id)
                assert [e.action for e in history] == ["submit"]
            assert (await services.reports.mine(AUNT)).reported[-1].status is Status.SUBMITTED
        finally:
            await browser.close()


@pytest.mark.browser
@pytest.mark.skipif(not SCREENSHOTS, reason="set SICHENG_SCREENSHOTS=<folder> to photograph the dashboard")
async def test_screenshots_of_a_report(chromium: str, stack: Stack) -> None:
    """``dashboard-report.png`` (desktop) and ``dashboard-report-phone.png`` in Chinese, as docs/ shows them: a
    report fixed and waiting for the organiser's re-visit, with its photos, history and position among the
    community's reports; the ledger list and the English pages as ``dashboard-ledger-<locale>-<width>.png`` and
    ``dashboard-report-en-<width>.png`` to look at."""
    import asyncio

    from playwright.async_api import async_playwright, expect

    from tests.support.dashboard import picture, store_photo

    box = stack.box
    services = box.app.services
    await ask_for_link(box, ORGANISER)  # the bot answers: it is running, its start-up clean-up of files is over
    await lively(box.app, stack.clock, residents=12, reports=16, days=14)
    around = [(31.2309, 121.4731), (31.2301, 121.4742), (31.2312, 121.4745), (31.2298, 121.4729)]
    for n, where in enumerate(around):
        await located_report(box, "parking", "电动车停在单元门口充电，飞线很危险", where, 10 + n)
    report = await located_report(box, "litter", "2号楼门口垃圾桶满了，垃圾散落一地，味道很大", (31.2304, 121.4737), 20)
    worker = await services.residents.profile(GRID_WORKER)
    assert worker is not None
    stack.clock.advance(minutes=40)
    await services.report_desk.accept(ORGANISER, report.id, worker.id)
    stack.clock.advance(hours=5)
    after = await store_photo(box.app, picture((110, 160, 110), 99))
    await services.report_desk.resolve(GRID_WORKER, report.id, after, "已清运垃圾，并对垃圾桶周边进行了消杀")
    folder = Path(SCREENSHOTS)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium)
        try:
            for locale in ("zh_Hans", "en"):
                await services.residents.set_locale(ORGANISER, locale)
                for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                    context = await browser.new_context(
                        viewport=viewport, locale="zh-CN" if locale == "zh_Hans" else "en"
                    )
                    page = await context.new_page()
                    await page.goto(await services.dashboard.issue(ORGANISER))
                    await page.goto(f"{box.url}/dashboard/reports/{report.id}")
                    await expect(page.locator("svg.position-chart circle")).to_have_count(len(around) + 1)
                    main = "dashboard-report" + ("" if width == "desktop" else "-phone")
                    name = main if locale == "zh_Hans" else f"dashboard-report-{locale}-{width}"
                    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
                    await page.goto(f"{box.url}/dashboard/reports?state=open")
                    for thumb in await page.locator("img.ledger-thumb").all():  # lazy: load them all first
                        await thumb.scroll_into_view_if_needed()
                        await expect(thumb).to_have_js_property("complete", True)
                    await page.screenshot(path=str(folder / f"dashboard-ledger-{locale}-{width}.png"), full_page=True)
                    await context.close()
        finally:
            await browser.close()


@pytest.mark.browser
async def test_survey_chart_and_stats_surveys_agree_in_the_browser(chromium: str, stack: Stack) -> None:
    """One computation behind both: the organiser asks for /stats surveys in the sandbox's chat page and opens the
    dashboard's survey page; the index, the satisfied share, the respondents and every scale question's bar match."""
    from playwright.async_api import async_playwright, expect

    from tests.integration.test_surveys import answer_all
    from tests.support.campaigns import populate

    box = stack.box
    app = box.app
    people = list(range(2_100_001, 2_100_008))
    await populate(app, people, stack.clock(), community="demo", building="1")
    for telegram_id in people:  # they started the bot: the invitations reach them
        box.emulator.create_user(f"居民{telegram_id}", language_code="zh-hans", user_id=telegram_id)
        box.emulator.started.add((telegram_id, box.emulator.bot().id))
    community = await app.services.communities.by_code("demo")
    assert community is not None
    survey = await app.services.surveys.create(
        ORGANISER, app.services.surveys.from_library("twice_yearly", community.id)
    )
    for n, telegram_id in enumerate(people):
        await app.services.surveys.answer(telegram_id, survey.id, "env", 1 + n % 5)  # not like the others
        await answer_all(app, telegram_id, survey.id, score=1 + (n * 3) % 5, answered=1)
        await app.services.surveys.submit(telegram_id, survey.id)

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await launch(playwright, chromium)
        try:
            page = await browser.new_page(viewport=DESKTOP, locale="zh-CN")
            page.set_default_timeout(TIMEOUT_MS)
            await page.goto(f"{box.url}/#{ORGANISER}")
            await page.wait_for_selector("body[data-ready]")
            await page.get_by_label("消息", exact=True).fill(f"/stats surveys {survey.id}")
            await page.get_by_label("消息", exact=True).press("Enter")
            answer = page.locator("#messages .msg.in .bubble").last
            await expect(answer).to_contain_text("满意度指数")
            stats = await answer.inner_text()

            await page.goto(await app.services.dashboard.issue(ORGANISER))
            await page.goto(f"{box.url}/dashboard/surveys?c=demo&s={survey.id}")
            results = page.locator("#results")
            await expect(results).to_be_visible()
            respondents = await results.get_attribute("data-respondents")
            index = float(str(await results.get_attribute("data-index")))
            satisfied = str(await results.get_attribute("data-satisfied")).rstrip("%")
            bars = dict(await chart_values(page, "#results"))
        finally:
            await browser.close()

    assert respondents == str(len(people)) and f"提交人数：{len(people)}" in stats
    shown = re.search(r"满意度指数：([\d.]+)（满分 100）· 满意率：([\d.]+)%", stats)
    assert shown is not None, stats
    assert float(shown.group(1)) == index and float(shown.group(2)) == float(satisfied)
    # Each scale question: its bar on the page and the index under its heading in the message.
    matched = 0
    for label, value in bars.items():
        heading = stats.find(f"{label}（")
        if heading < 0:
            continue  # a building's bar or the index over time
        under = re.search(r"指数 ([\d.]+) · 满意率", stats[heading:])
        assert under is not None and float(under.group(1)) == value, label
        matched += 1
    assert matched == 5 and len(set(bars.values())) > 1
    building = re.search(r"1号楼：7 人 · 指数 ([\d.]+)", stats)
    assert building is not None and float(building.group(1)) == bars["1号楼"]
