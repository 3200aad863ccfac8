"""The orphan photo sweep on SQLite and PostgreSQL: old photos nobody refers to go, referenced and young ones stay."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.geo import GeoPoint
from bot.domain.reports import Draft, Event, Status
from storage.models import DialogStateRow
from storage.uow import SqlUnitOfWork
from tests.support.reports import ReportWorld, jpeg_with_gps, report_world

OLD, YOUNG = timedelta(days=3), timedelta(hours=1)


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[ReportWorld]:
    built = await report_world(db_url, tmp_path / "media")
    yield built
    await built.aclose()


async def photo(world: ReportWorld, n: int, age: timedelta) -> str:
    """A distinct stored photo whose file was last written ``age`` before the world's clock."""
    file_id = world.files.add(f"f{n}", jpeg_with_gps(colour=(n * 20 % 256, 60, 40)))
    key: str = await world.services.reports.photos.take(file_id)
    age_file(world, key, world.clock() - age)
    return key


def age_file(world: ReportWorld, key: str, at: datetime) -> None:
    os.utime(world.services.reports.photos.locate(key), (at.timestamp(), at.timestamp()))


def exists(world: ReportWorld, key: str) -> bool:
    return Path(world.services.reports.photos.locate(key)).is_file()


async def dialog(world: ReportWorld, user_id: int, data: dict[str, object], expires_at: datetime) -> None:
    """A dialog state row as the state store keeps it."""
    async with world.sessions() as session, session.begin():
        session.add(DialogStateRow(user_id=user_id, chat_id=user_id, name="rp.photos", data=data,
                                   expires_at=expires_at))  # fmt: skip


async def test_sweep_deletes_old_unreferenced_photo_and_keeps_referenced_and_young(world: ReportWorld) -> None:
    await world.resident(1)
    in_report = await photo(world, 1, OLD)
    in_draft = await photo(world, 2, OLD)
    in_expired_draft = await photo(world, 3, OLD)
    orphan = await photo(world, 4, OLD)
    young_orphan = await photo(world, 5, YOUNG)
    after_photo = await photo(world, 6, OLD)
    reopen_photo = await photo(world, 7, OLD)

    draft = Draft("other", "楼道里堆满了杂物", (in_report,), location=GeoPoint(31.23, 121.47))
    report = (await world.services.reports.submit(1, draft)).report
    async with SqlUnitOfWork(world.sessions) as uow:
        assert await uow.reports.move(report.id, Status.SUBMITTED, after_photo=after_photo)
        await uow.reports.add_event(report.id, Event(world.clock(), "reopen", Status.ACCEPTED, photo=reopen_photo))
        await uow.commit()
    now = world.clock()
    await dialog(world, 1, {"cat": "other", "photos": ["f2"], "keys": [in_draft]}, now + timedelta(hours=20))
    await dialog(world, 2, {"cat": "other", "photos": ["f3"], "keys": [in_expired_draft]}, now - timedelta(hours=1))

    assert await world.services.reports.sweep_orphan_photos(now) == 2

    kept = [in_report, in_draft, young_orphan, after_photo, reopen_photo]
    assert [exists(world, k) for k in kept] == [True] * len(kept)
    assert not exists(world, orphan) and not exists(world, in_expired_draft)
    assert await world.services.reports.sweep_orphan_photos(now) == 0  # nothing more to do


async def test_sweep_keeps_keys_anywhere_in_dialog_state(world: ReportWorld) -> None:
    """The after-photo and "not fixed" dialogs keep a single key under their own names, not a ``keys`` list."""
    after = await photo(world, 1, OLD)
    nested = await photo(world, 2, OLD)
    now = world.clock()
    await dialog(world, 9001, {"report": 1, "photo": after, "file": "f1"}, now + timedelta(hours=1))
    await dialog(world, 9002, {"deep": [{"keys": [nested]}]}, now + timedelta(hours=1))
    assert await world.services.reports.sweep_orphan_photos(now) == 0
    assert exists(world, after) and exists(world, nested)


async def test_sweep_with_no_photo_folder_deletes_nothing(world: ReportWorld) -> None:
    assert await world.services.reports.sweep_orphan_photos(world.clock()) == 0


async def test_store_again_makes_old_orphan_young_and_sweep_keeps_it(world: ReportWorld) -> None:
    """A photo sent again (or a handler run again) refreshes the file, so a draft about to refer to it keeps it."""
    now = datetime.now(UTC)
    key = await photo(world, 1, timedelta(0))
    age_file(world, key, now - OLD)
    again = world.files.add("f1-again", world.files.files["f1"])  # the same photo sent again
    assert await world.services.reports.photos.take(again) == key  # stored again: same key, young again
    assert await world.services.reports.sweep_orphan_photos(now) == 0 and exists(world, key)
    age_file(world, key, now - OLD)
    assert await world.services.reports.sweep_orphan_photos(now) == 1 and not exists(world, key)


async def test_sweep_removes_old_leftover_temporary_files(world: ReportWorld) -> None:
    key = await photo(world, 1, YOUNG)
    leftover = Path(world.services.reports.photos.locate(key)).with_name(".crashed.jpg.0123.tmp")
    leftover.write_bytes(b"half a photo")
    old = (world.clock() - OLD).timestamp()
    os.utime(leftover, (old, old))
    assert await world.services.reports.sweep_orphan_photos(world.clock()) == 1
    assert not leftover.exists() and exists(world, key)
