"""Helpers for report tests: a fake Bot API file downloader, images with GPS metadata, a fake clock."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

# Somewhere in Shanghai: the kind of thing a phone writes into a photo's EXIF.
GPS_LAT, GPS_LON = (31.0, 14.0, 2.5), (121.0, 28.0, 44.1)


def jpeg_with_gps(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    """A real JPEG carrying EXIF with a GPS IFD, a camera make and a date, like a phone photo."""
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0132] = "2026:11:20 08:30:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", GPS_LAT, "E", GPS_LON
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png(size: tuple[int, int] = (32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (10, 120, 30, 255)).save(out, "PNG")
    return out.getvalue()


@dataclass
class FakeDownloader:
    """Plays Telegram's getFile: file ids map to bytes; an unknown id is an error, as with the Bot API."""

    files: dict[str, bytes] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def add(self, file_id: str, data: bytes) -> str:
        self.files[file_id] = data
        return file_id

    async def download(self, file_id: str) -> bytes:
        self.calls.append(file_id)
        return self.files[file_id]


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 2, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class ReportWorld:
    """The report services wired like ``bot.app`` on one database, with a community ``demo`` and staff."""

    engine: Any
    sessions: Any
    clock: Clock
    files: FakeDownloader
    services: Any
    parts: Any
    transactions: Any

    async def resident(self, telegram_id: int, name: str = "居民") -> None:
        community = await self.services.communities.by_code("demo")
        await self.services.residents.give_consent(telegram_id, name, "zh_Hans")
        await self.services.residents.join(telegram_id, community.id, community.buildings[0].id)

    async def aclose(self) -> None:
        await self.engine.dispose()


async def report_world(url: str, media: Path, *, pool_size: int = 20) -> ReportWorld:
    """Services on ``url`` with a fake clock and downloader; organiser 9000 and grid worker 9001 in ``demo``."""
    from types import SimpleNamespace

    from bot.config import FilesSettings, Settings
    from bot.domain.roles import Role
    from bot.report_setup import build_reports
    from bot.services.access import AccessService
    from bot.services.communities import CommunityService
    from bot.services.points import PointsService
    from bot.services.residents import ResidentService
    from content.points import load_policy
    from storage.db import make_engine, make_sessionmaker
    from storage.uow import Transactions, uow_factory

    engine = make_engine(url, pool_size=pool_size)
    sessions = make_sessionmaker(engine)
    uow, clock, files = uow_factory(sessions), Clock(), FakeDownloader()
    points = PointsService(uow, clock, load_policy())
    transactions = Transactions(sessions, serialise=engine.dialect.name == "sqlite")
    parts = build_reports(Settings(files=FilesSettings(root=media)), uow, clock, points, transactions, files)
    services = SimpleNamespace(
        residents=ResidentService(uow, clock), communities=CommunityService(uow), access=AccessService(uow, clock),
        points=points, reports=parts.service, desk=parts.desk, stats=parts.stats, jobs=parts.jobs,
    )  # fmt: skip
    world = ReportWorld(engine, sessions, clock, files, services, parts, transactions)
    await services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    for telegram_id, name, role in ((9000, "刘书记", Role.ORGANISER), (9001, "张网格", Role.GRID_WORKER)):
        await world.resident(telegram_id, name)
        await services.access.grant(telegram_id, role, "demo", None)
    return world


def copy_db(template: Path, target: Path) -> Path:
    """A fresh copy of the migrated SQLite template (tests are isolated and fast)."""
    target.write_bytes(template.read_bytes())
    return target


def read(path: str | Path) -> bytes:
    """Bytes of a stored file (sync on purpose: tiny files, test code)."""
    return Path(path).read_bytes()
