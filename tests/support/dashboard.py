"""Helpers for dashboard tests: the whole App on SQLite with the sandbox's demo data, the dashboard mounted at
``/dashboard`` in an aiohttp test server, and clients logged in the way a person logs in — through a real one-time
link issued for their telegram id (``DashboardAccess.issue``, what ``/dashboard`` in the bot does).

Use it from a test module like this::

    @pytest.fixture
    async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[DashboardWorld]:
        async with dashboard_world(tmp_path, sqlite_template) as built:
            yield built

    async def test_...(world: DashboardWorld) -> None:
        client = await world.client(ORGANISER)          # logged in, cookie set
        page = await client.get("/dashboard/reports")
        form = {"csrf": await world.csrf(client), ...}   # the session's CSRF token, read from a page

Page modules add their routes to the dashboard sub-application with paths relative to ``/dashboard``
(``app.router.add_get("/reports", ...)`` answers ``/dashboard/reports``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App, build_app
from bot.config import DashboardSettings, DatabaseSettings, FilesSettings, Settings
from bot.conversation.state import MemoryStateStore
from bot.domain.reports import Draft, Report
from tests.conftest import sqlite_copy
from tests.support.quiz import play
from tests.support.reports import Clock, FakeDownloader, jpeg_with_gps
from tests.support.transcript import FakeChat

# The sandbox's demo personas (bot/sandbox/demo.py), all in the community "demo".
COMMUNITY = "demo"
NEW_RESIDENT = 1000001  # 小李: not registered
RESIDENT = 1000002  # 王阿姨, building 2
VOLUNTEER = 1000004  # 小陈, building 3
GRID_WORKER = 1000005  # 老张, grid worker in demo
ORGANISER = 1000006  # 刘主任, organiser in demo
BASE_URL = "http://dashboard.test"  # the public URL links are issued for (never contacted)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class DashboardWorld:
    app: App
    clock: Clock
    files: FakeDownloader
    web: web.Application  # the root app; the dashboard is mounted at /dashboard
    server: TestServer
    clients: list[TestClient[Any, Any]] = field(default_factory=list)

    async def link(self, telegram_id: int) -> str:
        """A fresh login link for the person, as path and query (``/dashboard/login?token=...``). Raises
        ``Forbidden`` for someone who is neither a grid worker nor an organiser."""
        url = await self.app.services.dashboard.issue(telegram_id)
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}"

    async def anonymous(self) -> TestClient[Any, Any]:
        """A browser with no session (its own cookie jar)."""
        client: TestClient[Any, Any] = TestClient(self.server)
        self.clients.append(client)
        return client

    async def client(self, telegram_id: int) -> TestClient[Any, Any]:
        """A browser logged in as the person: opened their link, was sent on to ``/dashboard/``, holds the cookie."""
        client = await self.anonymous()
        response = await client.get(await self.link(telegram_id), allow_redirects=False)
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == "/dashboard/"
        assert "sicheng_dash" in response.cookies
        return client

    async def csrf(self, client: TestClient[Any, Any], page: str = "/dashboard/") -> str:
        """The session's CSRF token, as a page's forms carry it (the logout form is on every page)."""
        response = await client.get(page)
        found = _CSRF.search(await response.text())
        assert found, f"no CSRF field on {page}"
        return found.group(1)

    def chat(self, telegram_id: int, language_code: str = "zh-hans") -> FakeChat:
        """The person's private chat with the bot (the real core), e.g. to send /dashboard."""
        return FakeChat(self.app.core, user_id=telegram_id, language_code=language_code)

    async def report(
        self,
        telegram_id: int = RESIDENT,
        *,
        category: str = "litter",
        building: str | None = "2",
        description: str = "楼道里堆满了纸箱，挡住了消防通道",
        photo: bool = True,
    ) -> Report:
        """A report submitted by a registered resident (a real JPEG with GPS metadata when ``photo``; without one the
        category must allow it, e.g. ``pests``). ``building`` None: the place is an address instead."""
        community = await self.app.services.communities.by_code(COMMUNITY)
        assert community is not None
        found = community.building(building) if building else None
        photos: tuple[str, ...] = ()
        if photo:
            file_id = self.files.add(f"photo-{len(self.files.files)}", jpeg_with_gps())
            photos = (await self.app.services.reports.add_photo(file_id, 0),)
        draft = Draft(
            category,
            description,
            photos,
            skip_reason=None if photo else "other",
            building_id=found.id if found else None,
            address=None if found else "小区东门",
        )
        return (await self.app.services.reports.submit(telegram_id, draft)).report

    async def resident_id(self, telegram_id: int) -> int:
        profile = await self.app.services.residents.profile(telegram_id)
        assert profile is not None
        return int(profile.id)


@asynccontextmanager
async def dashboard_world(
    tmp_path: Path, sqlite_template: Path, *, url: str = BASE_URL, database: str | None = None
) -> AsyncIterator[DashboardWorld]:
    """The App on ``database`` (a migrated, empty one; default: a private copy of the migrated SQLite template),
    seeded like the sandbox, the dashboard served by a test server; everything is closed on exit."""
    from bot.dashboard.app import build_dashboard
    from bot.sandbox.demo import seed_database

    database = database or sqlite_copy(sqlite_template, tmp_path / "dashboard.db")
    settings = Settings(
        database=DatabaseSettings(url=database),
        files=FilesSettings(root=tmp_path / "media"),
        dashboard=DashboardSettings(url=url),
    )
    clock, files = Clock(), FakeDownloader()
    app = await build_app(
        settings, clock=clock, bot_username="sicheng_bot", state_store=MemoryStateStore(), downloader=files
    )
    try:
        await seed_database(app)
        root = web.Application()
        root.add_subapp("/dashboard", build_dashboard(app))
        server = TestServer(root)
        await server.start_server()
        world = DashboardWorld(app, clock, files, root, server)
        try:
            yield world
        finally:
            for client in world.clients:
                await client.close()
            await server.close()
    finally:
        await app.aclose()


# ---- a lively community: a month of residents answering, reporting and staff handling ----------------------------

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
CATEGORIES = ("litter", "sorting", "parking", "blocked", "facilities", "greenery", "graffiti", "pests")
DESCRIPTIONS = {
    "litter": "垃圾桶旁边堆了好几袋垃圾，没人清运",
    "sorting": "厨余垃圾桶里混了很多塑料袋",
    "parking": "电动车停在消防通道上，挡住了出口",
    "blocked": "楼道里堆满了纸箱和旧家具",
    "facilities": "小区健身器材的螺丝松了，有安全隐患",
    "greenery": "绿化带里的黄土裸露，刮风时尘土很大",
    "graffiti": "单元门口墙上被贴满了小广告",
    "pests": "垃圾房附近晚上老鼠很多",
}


def picture(colour: tuple[int, int, int], seed: int) -> bytes:
    """A small photo-like JPEG (a coloured scene with a few shapes), with GPS metadata as a phone writes it."""
    import io
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (320, 240), colour)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.randrange(0, 280), rng.randrange(0, 200)
        shade = tuple(max(0, min(255, c + rng.randrange(-70, 70))) for c in colour)
        draw.rectangle((x, y, x + rng.randrange(20, 90), y + rng.randrange(15, 60)), fill=shade)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (31.0, 14.0, 2.5), "E", (121.0, 28.0, 44.1)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=80)
    return out.getvalue()


async def store_photo(app: App, data: bytes) -> str:
    """Keep a photo the way the bot keeps one a resident sent (metadata stripped); its file-store key."""
    from bot.services.files import PHOTO_FOLDER, strip_metadata

    clean, kind = strip_metadata(data)
    return await app.services.reports.photos.store.put(clean, kind.suffix, PHOTO_FOLDER)


async def lively(app: App, clock: Any, *, residents: int = 30, reports: int = 40, days: int = 30) -> list[int]:
    """A month in the demo community: ``residents`` more people registered across buildings 1, 2, 3 and 5 (6 stays
    empty), some of them learning tracks in the quiz, ``reports`` reports over ``days`` days handled the way staff
    handle them (accepted and assigned to 老张, fixed in hours or days, most confirmed, a few not accepted, one
    reopened, the latest still open, some of those overdue). ``clock`` (with a settable ``now``) is moved back and
    forth and left where it was. Returns the new residents' telegram ids."""
    import random
    from datetime import timedelta

    from bot.domain.reports import RejectReason

    rng = random.Random(14)
    end = clock.now
    community = await app.services.communities.by_code(COMMUNITY)
    assert community is not None
    homes = [b for b in community.buildings if b.code in ("1", "2", "3", "5")]
    people = [2_000_001 + i for i in range(residents)]
    clock.now = end - timedelta(days=days + 5)
    for i, person in enumerate(people):
        name = SURNAMES[i % len(SURNAMES)] + ("阿姨" if i % 3 == 0 else "先生" if i % 3 == 1 else "老师")
        await app.services.residents.give_consent(person, name, "zh_Hans")
        await app.services.residents.join(person, community.id, homes[i % len(homes)].id)
    # Quiz: most take part at some point of the month; a good share learn one or two tracks well.
    for person in people:
        if rng.random() < 0.25:
            continue
        clock.now = end - timedelta(days=rng.uniform(0.5, days - 1))
        tracks = rng.sample(["civilised", "sanitary", "garden", "food_safety"], k=rng.choice((1, 1, 2)))
        for track in tracks:
            good = rng.random() < 0.6
            await play(
                app.services.quiz,
                person,
                track,
                [rng.random() < (0.92 if good else 0.55) for _ in range(10 if good else 5)],
            )
    # Reports and their handling.
    worker = await app.services.residents.profile(GRID_WORKER)
    assert worker is not None
    colours = [(150, 140, 120), (90, 120, 80), (120, 120, 140), (170, 150, 110)]
    for n in range(reports):
        age = days * (1 - (n + rng.random()) / reports)  # spread over the period, oldest first
        clock.now = end - timedelta(days=age)
        category = rng.choice(CATEGORIES)
        reporter = rng.choice(people[: max(1, len(people) * 2 // 3)])
        before = await store_photo(app, picture(colours[n % len(colours)], n))
        profile = await app.services.residents.profile(reporter)
        assert profile is not None
        draft = Draft(category, DESCRIPTIONS[category], (before,), building_id=profile.building_id)
        report = (await app.services.reports.submit(reporter, draft)).report
        if age < 1.2 and n % 2 == 0:
            continue  # just in: waiting to be accepted
        if n % 13 == 5:
            clock.now += timedelta(hours=rng.uniform(1, 6))
            await app.services.report_desk.reject(ORGANISER, report.id, RejectReason.NOT_OURS)
            continue
        clock.now += timedelta(hours=rng.uniform(0.5, 8))
        await app.services.report_desk.accept(ORGANISER, report.id, worker.id)
        fix_hours = rng.choice((6, 10, 20, 30, 40, 55, 80)) * rng.uniform(0.7, 1.2)
        if clock.now + timedelta(hours=fix_hours) > end:
            continue  # still being handled (overdue once its deadline has passed)
        clock.now += timedelta(hours=fix_hours)
        after = await store_photo(app, picture((110, 160, 110), 1000 + n))
        await app.services.report_desk.resolve(GRID_WORKER, report.id, after, "已清理完毕，并提醒了相关住户")
        clock.now += timedelta(hours=rng.uniform(2, 20))
        if clock.now > end:
            continue
        if n % 9 == 3:
            await app.services.report_desk.reopen(reporter, report.id)
            continue
        await app.services.report_desk.verify(reporter, report.id)
    clock.now = end
    return people
