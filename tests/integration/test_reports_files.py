"""Photo intake: EXIF and GPS stripped from a real JPEG, type by content, size limit, keys stay in the store."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from bot.domain.media import PhotoRefused
from bot.services.files import LocalFileStore, PhotoIntake, strip_metadata
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
