"""Photo intake: EXIF and GPS stripped from a real JPEG, type by content, size limit, keys stay in the store;
content-addressed storage and prefetch ahead of the handler."""

from __future__ import annotations

import hashlib
import io
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import patch

import pytest
from PIL import Image

from bot.domain.media import PhotoRefused
from bot.services.files import PREFETCH_TTL, LocalFileStore, PhotoIntake, strip_metadata
from tests.support.reports import GPS_LAT, FakeDownloader, jpeg_with_gps, png, read


def intake(tmp_path: Path, downloader: FakeDownloader) -> PhotoIntake:
    return PhotoIntake(LocalFileStore(tmp_path / "media"), lambda: datetime(2026, 11, 26, tzinfo=UTC), downloader)


async def test_gps_and_exif_are_gone_from_the_stored_jpeg(tmp_path: Path) -> None:
    original = jpeg_with_gps()
    before = Image.open(io.BytesIO(original)).getexif()
    assert before.get_ifd(0x8825)[2] == GPS_LAT and before[0x010F] == "PhoneMaker"  # the test photo has them

    photos = intake(tmp_path, FakeDownloader({"f1": original}))
    key = await photos.take("f1")
    assert key.startswith("reports/2026-11/") and key.endswith(".jpg")
    data = read(photos.locate(key))
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (64, 48)
    assert not image.getexif() and not image.getexif().get_ifd(0x8825)
    assert b"Exif" not in data and b"PhoneMaker" not in data and "exif" not in image.info
    assert image.getpixel((10, 10)) == pytest.approx((200, 60, 40), abs=8)  # same picture, metadata only gone


async def test_png_text_chunks_are_dropped_and_type_kept(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    meta = PngImagePlugin.PngInfo()
    meta.add_text("Comment", "拍摄于 3号楼 GPS 31.23,121.47")
    out = io.BytesIO()
    Image.open(io.BytesIO(png())).save(out, "PNG", pnginfo=meta)
    clean, kind = strip_metadata(out.getvalue())
    assert kind.value == "png" and "Comment" not in Image.open(io.BytesIO(clean)).info


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.7\n1 0 obj", "not_image"),
        (b"GIF89a\x01\x00\x01\x00", "not_image"),
        (b"\xff\xd8\xff\xe0 a truncated jpeg", "not_image"),  # right magic, broken content
        (b"\xff\xd8\xff" + bytes(10 * 1024 * 1024), "too_large"),
    ],
)
async def test_non_images_and_oversized_files_are_refused(tmp_path: Path, data: bytes, reason: str) -> None:
    photos = intake(tmp_path, FakeDownloader({"x": data}))
    with pytest.raises(PhotoRefused) as refused:
        await photos.take("x")
    assert refused.value.context["reason"] == reason and refused.value.template == "reports/errors/photo"
    assert not (tmp_path / "media").exists()  # nothing stored


async def test_a_file_key_cannot_leave_the_store(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "media")
    key = await store.put(b"x", ".jpg", "reports")
    assert await store.get(key) == b"x"
    with pytest.raises(ValueError, match="bad file key"):
        store.locate("../../etc/passwd")


async def test_store_same_bytes_twice_gives_one_file_and_one_key(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "media")
    first = await store.put(b"same bytes", ".jpg", "reports/2026-11")
    second = await store.put(b"same bytes", ".jpg", "reports/2026-11")
    other = await store.put(b"other bytes", ".jpg", "reports/2026-11")
    digest = hashlib.sha256(b"same bytes").hexdigest()
    assert first == second == f"reports/2026-11/{digest[:2]}/{digest}.jpg" and other != first
    files = sorted(p for p in (tmp_path / "media").rglob("*") if p.is_file())
    assert len(files) == 2 and not any(p.name.endswith(".tmp") for p in files)  # no temporary file left behind
    assert await store.get(first) == b"same bytes"


async def test_take_same_photo_twice_stores_it_once(tmp_path: Path) -> None:
    files = FakeDownloader({"a": jpeg_with_gps(), "b": jpeg_with_gps()})  # the same photo under two file ids
    photos = intake(tmp_path, files)
    assert await photos.take("a") == await photos.take("b")
    assert len([p for p in (tmp_path / "media").rglob("*") if p.is_file()]) == 1


async def test_store_existing_file_again_does_not_rewrite_it_but_makes_it_young(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "media")
    key = await store.put(b"photo", ".jpg", "reports")
    path = store.locate(key)
    os.utime(path, (1_000_000, 1_000_000))
    inode = os.stat(path).st_ino
    assert await store.put(b"photo", ".jpg", "reports") == key
    assert os.stat(path).st_ino == inode and os.stat(path).st_mtime > 1_000_000  # same file, touched


async def test_prefetch_then_take_downloads_once(tmp_path: Path) -> None:
    files = FakeDownloader({"f1": jpeg_with_gps()})
    photos = intake(tmp_path, files)
    await photos.prefetch("f1")
    key = await photos.take("f1")
    assert files.calls == ["f1"] and read(photos.locate(key))
    assert await photos.take("f1") == key and files.calls == ["f1"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"%PDF-1.7\n1 0 obj", "not_image"), (b"\xff\xd8\xff" + bytes(10 * 1024 * 1024), "too_large")],
)
async def test_prefetch_refused_file_makes_take_raise_the_same_refusal(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    files = FakeDownloader({"x": data})
    photos = intake(tmp_path, files)
    await photos.prefetch("x")  # does not raise
    for _ in range(2):
        with pytest.raises(PhotoRefused) as refused:
            await photos.take("x")
        assert refused.value.context["reason"] == reason and refused.value.template == "reports/errors/photo"
    assert files.calls == ["x"] and not (tmp_path / "media").exists()


async def test_prefetch_failing_download_is_swallowed_and_take_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = FakeDownloader({})  # an unknown file id: the download fails
    photos = intake(tmp_path, files)
    with caplog.at_level(logging.INFO, logger="bot.services.files"):
        await photos.prefetch("gone")
    assert any(r.levelno == logging.INFO and "gone" in r.getMessage() for r in caplog.records)
    files.add("gone", png())  # the handler tries again: a passing failure is not remembered
    assert (await photos.take("gone")).endswith(".png") and files.calls == ["gone", "gone"]


async def test_prefetch_remembers_a_bounded_recent_set(tmp_path: Path) -> None:
    clock = [datetime(2026, 11, 26, tzinfo=UTC)]
    files = FakeDownloader({f"f{n}": png((8 + n, 8)) for n in range(4)})
    photos = PhotoIntake(LocalFileStore(tmp_path / "media"), lambda: clock[0], files)
    with patch("bot.services.files.PREFETCH_SIZE", 2):
        for n in range(3):
            await photos.prefetch(f"f{n}")
        await photos.take("f2")
        await photos.take("f0")  # pushed out by f1 and f2: downloaded again
        assert files.calls == ["f0", "f1", "f2", "f0"]
        await photos.prefetch("f3")
        clock[0] += PREFETCH_TTL + timedelta(seconds=1)
        await photos.take("f3")  # remembered too long ago: downloaded again
    assert files.calls == ["f0", "f1", "f2", "f0", "f3", "f3"]


def test_image_declaring_too_many_pixels_is_refused_before_decoding() -> None:
    """A small PNG that declares 10,900 × 10,900 pixels (≈ 119 MP) would take over a gigabyte to decode."""
    import struct
    import zlib

    from bot.domain.media import PhotoRefused
    from bot.services.files import strip_metadata

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 10_900, 10_900, 8, 0, 0, 0, 0)  # 8-bit greyscale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    with pytest.raises(PhotoRefused) as refused:
        strip_metadata(png)
    assert refused.value.context["reason"] == "too_many_pixels" and refused.value.context["megapixels"] == 40
