"""Photos from residents: download (Bot API getFile), check, strip metadata, store.

Ports: ``FileDownloader`` (the channel implements it, see ``bot.channels.files``) and ``FileStore`` (a local
folder by default; S3 later). Metadata — EXIF with GPS, camera serials, XMP — is removed by re-encoding the pixels
only, so nothing a phone wrote about where and how the photo was taken is ever stored or shown.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import datetime
from pathlib import Path
from typing import Protocol

from PIL import Image, UnidentifiedImageError

from bot.domain.media import MAX_PHOTO_BYTES, ImageKind, PhotoRefused, check_photo
from bot.services.ports import Clock

_PIL_FORMAT = {ImageKind.JPEG: "JPEG", ImageKind.PNG: "PNG", ImageKind.WEBP: "WEBP"}
# Big enough for any phone camera; Pillow refuses larger images (decompression bombs) before decoding.
Image.MAX_IMAGE_PIXELS = 60_000_000


class FileDownloader(Protocol):
    async def download(self, file_id: str) -> bytes: ...


class FileStore(Protocol):
    async def put(self, data: bytes, suffix: str, folder: str) -> str: ...

    async def get(self, key: str) -> bytes: ...

    def locate(self, key: str) -> str: ...


class LocalFileStore:
    """Files under one folder, keyed ``<folder>/<yyyy-mm>/<random>.<ext>``; ``locate`` gives an absolute path."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    async def put(self, data: bytes, suffix: str, folder: str) -> str:
        """Write a new file; returns its key."""
        key = f"{folder}/{uuid.uuid4().hex}{suffix}"
        await asyncio.to_thread(self._write, self.root / key, data)
        return key

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    def locate(self, key: str) -> str:
        """An absolute path the channels upload (they treat paths starting with "/" as local files)."""
        return str(self._path(key))

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):  # a key never leaves the store, whatever it contains
            raise ValueError(f"bad file key {key!r}")
        return path

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class UnboundDownloader:
    """Placeholder until a channel provides the real downloader (the bot is built before the channel)."""

    async def download(self, file_id: str) -> bytes:
        raise RuntimeError("no file downloader: the channel did not call PhotoIntake.use()")


def strip_metadata(data: bytes, limit: int = MAX_PHOTO_BYTES) -> tuple[bytes, ImageKind]:
    """Checked, re-encoded image bytes with no metadata at all (EXIF, GPS, XMP, ICC comments)."""
    kind = check_photo(data, limit)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            clean = _pixels_only(image, kind)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise PhotoRefused(str(error), reason="not_image", limit_mb=limit // (1024 * 1024)) from error
    out = io.BytesIO()
    clean.save(out, _PIL_FORMAT[kind], **({"quality": 90} if kind is ImageKind.JPEG else {}))
    return out.getvalue(), kind


def _pixels_only(image: Image.Image, kind: ImageKind) -> Image.Image:
    """A new image holding the pixels only; the camera's orientation is applied first so nothing turns sideways."""
    oriented = _upright(image)
    mode = "RGB" if kind is ImageKind.JPEG and oriented.mode not in ("RGB", "L") else oriented.mode
    source = oriented.convert(mode) if mode != oriented.mode else oriented
    clean = Image.new(source.mode, source.size)
    clean.paste(source)
    return clean


def _upright(image: Image.Image) -> Image.Image:
    from PIL import ImageOps

    return ImageOps.exif_transpose(image) or image


class PhotoIntake:
    """Download → check size and type → strip metadata → store; returns the file-store key."""

    def __init__(self, store: FileStore, clock: Clock, downloader: FileDownloader | None = None) -> None:
        self.store = store
        self._clock = clock
        self._downloader: FileDownloader = downloader or UnboundDownloader()

    def use(self, downloader: FileDownloader) -> None:
        """Called by the channel once its bot exists."""
        self._downloader = downloader

    async def take(self, file_id: str, folder: str = "reports") -> str:
        """Store a photo a person sent (by its Telegram file id); raises PhotoRefused with a reason."""
        data = await self._downloader.download(file_id)
        clean, kind = await asyncio.to_thread(strip_metadata, data)
        return await self.store.put(clean, kind.suffix, f"{folder}/{_month(self._clock())}")

    def locate(self, key: str) -> str:
        return self.store.locate(key)


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")
