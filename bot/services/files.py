"""Photos from residents: download (Bot API getFile), check, strip metadata, store.

Ports: ``FileDownloader`` (the channel implements it, see ``bot.channels.files``) and ``FileStore`` (a local
folder by default; S3 later). Metadata — EXIF with GPS, camera serials, XMP — is removed by re-encoding the pixels
only, so nothing a phone wrote about where and how the photo was taken is ever stored or shown.

Storage is content-addressed, so storing the same photo again (a handler run again after a crash) gives the same key
and no second file. ``PhotoIntake.prefetch`` downloads before the update's transaction opens; ``take`` inside it then
uses the remembered result. Files nobody refers to are removed later by ``ReportService.sweep_orphan_photos``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from PIL import Image, UnidentifiedImageError

from bot.domain.media import MAX_MEGAPIXELS, MAX_PHOTO_BYTES, ImageKind, PhotoRefused, check_photo
from bot.services.ports import Clock

log = logging.getLogger(__name__)

# Where report photos (before, after, "not fixed") are kept: ``<PHOTO_FOLDER>/<yyyy-mm>/...``; the sweep covers it.
PHOTO_FOLDER = "reports"
# Prefetched results kept for ``take``: bounded, and short-lived next to the sweep's grace (days), so a remembered key
# always names a file that was stored (or found and touched) less than this long ago.
PREFETCH_SIZE = 1000
PREFETCH_TTL = timedelta(hours=1)

_PIL_FORMAT = {ImageKind.JPEG: "JPEG", ImageKind.PNG: "PNG", ImageKind.WEBP: "WEBP"}
DECODING_AT_ONCE = 2
# Big enough for any phone camera; Pillow refuses larger images (decompression bombs) before decoding.
Image.MAX_IMAGE_PIXELS = 60_000_000


class FileDownloader(Protocol):
    async def download(self, file_id: str) -> bytes: ...


class FileStore(Protocol):
    async def put(self, data: bytes, suffix: str, folder: str) -> str: ...

    async def get(self, key: str) -> bytes: ...

    def locate(self, key: str) -> str: ...

    async def remove_unused(self, folder: str, before: datetime, keep: Collection[str]) -> int: ...

    async def remove(self, keys: Collection[str]) -> int: ...

    async def remove_temporaries(self) -> int: ...


class LocalFileStore:
    """Files under one folder, keyed ``<folder>/<sha256[:2]>/<sha256>.<ext>`` by content; ``locate`` gives an
    absolute path.

    A file is written once (temporary file, then ``os.replace``), so a reader never sees half a photo and the same
    bytes stored twice are one file under one key. Storing existing bytes again refreshes the file's time, which is
    what ``remove_unused`` judges age by; a lock makes "refresh" and "check age, delete" exclusive, so a file being
    stored again is never deleted under it (one process per store, as one process serves a token).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()
        self._mine = uuid.uuid4().hex[:12]  # in the names of this store's temporary files

    async def put(self, data: bytes, suffix: str, folder: str) -> str:
        """Store ``data`` (once); returns its key, the same for the same bytes in the same folder."""
        digest = hashlib.sha256(data).hexdigest()
        key = f"{folder}/{digest[:2]}/{digest}{suffix}"
        await asyncio.to_thread(self._write, self._path(key), data)
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

    async def remove_unused(self, folder: str, before: datetime, keep: Collection[str]) -> int:
        """Delete files under ``folder`` last stored before ``before`` whose key is not in ``keep``; how many."""
        return await asyncio.to_thread(self._remove_unused, self._path(folder), before.timestamp(), set(keep))

    async def remove(self, keys: Collection[str]) -> int:
        """Delete these files now, whatever their age (a person's photos on /deleteme); how many were there."""
        return await asyncio.to_thread(self._remove, [self._path(k) for k in keys])

    async def remove_temporaries(self) -> int:
        """Half-written files a killed process left behind (at start-up; this store's own writes under way, e.g. a
        photo uploaded on the dashboard in that moment, are left alone)."""
        return await asyncio.to_thread(self._remove_temporaries)

    def _remove(self, paths: list[Path]) -> int:
        removed = 0
        for path in paths:
            with self._lock:
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
            removed += 1
        return removed

    def _remove_temporaries(self) -> int:
        if not self.root.is_dir():
            return 0
        removed = 0
        for path in self.root.rglob(".*.tmp"):
            if f".{self._mine}-" in path.name:
                continue
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def _write(self, path: Path, data: bytes) -> None:
        with self._lock:
            try:
                os.utime(path)  # already stored: the same bytes, only made young again for the sweep
                return
            except FileNotFoundError:
                pass
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{self._mine}-{uuid.uuid4().hex}.tmp")
        try:
            with open(temporary, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)  # atomic: a concurrent writer of the same bytes replaces like with like
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def _remove_unused(self, top: Path, before: float, keep: set[str]) -> int:
        if not top.is_dir():
            return 0
        removed = 0
        for path in sorted(top.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if key in keep:
                continue
            with self._lock:
                try:
                    if not path.is_file() or path.stat().st_mtime >= before:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
            removed += 1
        return removed


class UnboundDownloader:
    """Placeholder until a channel provides the real downloader (the bot is built before the channel)."""

    async def download(self, file_id: str) -> bytes:
        raise RuntimeError("no file downloader: the channel did not call PhotoIntake.use()")


def strip_metadata(data: bytes, limit: int = MAX_PHOTO_BYTES) -> tuple[bytes, ImageKind]:
    """Checked, re-encoded image bytes with no metadata at all (EXIF, GPS, XMP, ICC comments)."""
    kind = check_photo(data, limit)
    try:
        with warnings.catch_warnings():  # Pillow warns of a "decompression bomb": we refuse it ourselves below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
        with opened as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > MAX_MEGAPIXELS * 1_000_000:
                raise PhotoRefused("too many pixels", reason="too_many_pixels", megapixels=MAX_MEGAPIXELS)
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


_Outcome = str | PhotoRefused  # a stored key, or why the file was refused


class PhotoIntake:
    """Download → check size and type → strip metadata → store; returns the file-store key.

    ``prefetch`` does the slow part before the update's transaction and remembers the outcome per file id (the last
    ``PREFETCH_SIZE`` for ``PREFETCH_TTL``); ``take`` in the handler then uses it instead of downloading again.
    """

    def __init__(self, store: FileStore, clock: Clock, downloader: FileDownloader | None = None) -> None:
        self._decoding = asyncio.Semaphore(DECODING_AT_ONCE)
        self.store = store
        self._clock = clock
        self._downloader: FileDownloader = downloader or UnboundDownloader()
        self._remembered: OrderedDict[tuple[str, str], tuple[datetime, _Outcome]] = OrderedDict()

    def use(self, downloader: FileDownloader) -> None:
        """Called by the channel once its bot exists."""
        self._downloader = downloader

    async def prefetch(self, file_id: str, folder: str = PHOTO_FOLDER) -> None:
        """Download, check and store a photo ahead of its handler; never raises.

        A refusal is remembered and raised again by ``take``; any other failure (network, Bot API) is only logged,
        so that ``take`` tries again and the handler reports it as usual.
        """
        if self._recall(file_id, folder) is not None:
            return
        try:
            outcome: _Outcome = await self._store(file_id, folder)
        except PhotoRefused as refused:
            log.info("prefetch: file %s refused (%s)", file_id, refused.context.get("reason"))
            outcome = refused
        except Exception as error:  # the handler's take() meets it again and reports it
            log.info("prefetch: file %s failed, left to the handler: %r", file_id, error)
            return
        self._remember(file_id, folder, outcome)

    async def take(self, file_id: str, folder: str = PHOTO_FOLDER) -> str:
        """Store a photo a person sent (by its Telegram file id); raises PhotoRefused with a reason.

        Uses what ``prefetch`` remembered for this file id when there is something; downloads otherwise.
        """
        outcome = self._recall(file_id, folder)
        if outcome is None:
            try:
                outcome = await self._store(file_id, folder)
            except PhotoRefused as refused:
                outcome = refused
            self._remember(file_id, folder, outcome)
        if isinstance(outcome, PhotoRefused):
            raise PhotoRefused(str(outcome), **outcome.context)  # a fresh one: the remembered one is raised again
        return outcome

    def locate(self, key: str) -> str:
        return self.store.locate(key)

    async def remove_unused(self, before: datetime, keep: Collection[str], folder: str = PHOTO_FOLDER) -> int:
        """Delete stored photos under ``folder`` older than ``before`` whose keys are not in ``keep``; how many."""
        return await self.store.remove_unused(folder, before, keep)

    async def remove(self, keys: Collection[str]) -> int:
        """Delete these stored photos now (a person's photos when they delete their data); how many were there.

        What ``prefetch`` remembered is forgotten as well, so the same photo sent again is stored again.
        """
        gone = set(keys)
        for remembered in [k for k, (_, outcome) in self._remembered.items() if outcome in gone]:
            del self._remembered[remembered]
        return await self.store.remove(gone)

    async def _store(self, file_id: str, folder: str) -> str:
        data = await self._downloader.download(file_id)
        async with self._decoding:  # decoding is memory-heavy: a burst of photos is taken a couple at a time
            clean, kind = await asyncio.to_thread(strip_metadata, data)
        return await self.store.put(clean, kind.suffix, f"{folder}/{_month(self._clock())}")

    def _recall(self, file_id: str, folder: str) -> _Outcome | None:
        entry = self._remembered.get((file_id, folder))
        if entry is None:
            return None
        at, outcome = entry
        if self._clock() - at > PREFETCH_TTL:
            del self._remembered[(file_id, folder)]
            return None
        self._remembered.move_to_end((file_id, folder))
        return outcome

    def _remember(self, file_id: str, folder: str, outcome: _Outcome) -> None:
        self._remembered[(file_id, folder)] = (self._clock(), outcome)
        self._remembered.move_to_end((file_id, folder))
        while len(self._remembered) > PREFETCH_SIZE:
            self._remembered.popitem(last=False)


def _month(moment: datetime) -> str:
    return moment.strftime("%Y-%m")
