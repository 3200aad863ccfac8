"""Report photos on the dashboard: served only to a logged-in staff member who may see the report, as stored (the
intake already re-encoded every photo without EXIF/GPS, see ``bot.services.files``) or as a thumbnail scaled here;
and an after-photo uploaded with a resolution, cleaned and stored the same way as one sent to the bot.

A photo's address names the report and the photo's place on it (``/dashboard/photos/42/b0`` is the first
before-photo, ``a`` the after-photo, ``h3`` the photo on the fourth history line), never a file-store key, so
access is decided by the report: someone who may not see report 42 gets the same 404 as for a missing one.
"""

from __future__ import annotations

import asyncio
import io
from collections import OrderedDict
from datetime import datetime

from aiohttp import web
from PIL import Image

from bot.dashboard.auth import PREFIX
from bot.dashboard.kit import app_of, staff
from bot.domain.errors import NotFound
from bot.domain.report_ledger import reach_of
from bot.services.files import PHOTO_FOLDER, strip_metadata
from bot.services.report_stats import ReportFile

THUMB_PX = 320  # the longer side of a thumbnail
THUMBS_KEPT = 256  # thumbnails kept in memory (a few MB): the ledger list asks for the same ones again and again
_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
_thumbs: OrderedDict[str, bytes] = OrderedDict()


def photo_url(report_id: int, slot: str, *, thumb: bool = False) -> str:
    return f"{PREFIX}/photos/{report_id}/{slot}" + ("?size=thumb" if thumb else "")


def key_of(found: ReportFile, slot: str) -> str | None:
    """The file-store key of a photo slot of the report (``b<n>``, ``a``, ``h<n>``), or None."""
    report = found.report
    if slot == "a":
        return report.after_photo
    index = slot[1:]
    if not index.isdigit() or len(index) > 4:
        return None
    n = int(index)
    if slot.startswith("b") and n < len(report.photos):
        return report.photos[n]
    if slot.startswith("h") and n < len(found.timeline):
        return found.timeline[n].event.photo
    return None


async def photo(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    app = app_of(request)
    report_id = request.match_info["report"]
    if not report_id.isdigit() or len(report_id) > 18:
        raise web.HTTPNotFound()
    try:
        found = await app.services.report_stats.report_file(reach_of(person.resident_id, person.grants), int(report_id))
    except NotFound:
        raise web.HTTPNotFound() from None
    key = key_of(found, request.match_info["slot"])
    if key is None:
        raise web.HTTPNotFound()
    store = app.services.reports.photos.store
    try:
        data = await store.get(key)
    except (FileNotFoundError, ValueError):  # swept, or deleted with its reporter's data
        raise web.HTTPNotFound() from None
    kind = _TYPES.get(key[key.rfind(".") :].lower(), "application/octet-stream")
    if request.query.get("size") == "thumb":
        data, kind = await _thumbnail(key, data), "image/jpeg"
    response = web.Response(body=data, content_type=kind)
    # Only this person's browser may keep it, briefly: access is checked again on the next request.
    response.headers["Cache-Control"] = "private, max-age=600"
    return response


async def _thumbnail(key: str, data: bytes) -> bytes:
    cached = _thumbs.get(key)
    if cached is not None:
        _thumbs.move_to_end(key)
        return cached
    small = await asyncio.to_thread(_scale, data)
    _thumbs[key] = small
    while len(_thumbs) > THUMBS_KEPT:
        _thumbs.popitem(last=False)
    return small


def _scale(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((THUMB_PX, THUMB_PX))
        flat = image.convert("RGB") if image.mode != "RGB" else image
        out = io.BytesIO()
        flat.save(out, "JPEG", quality=80)  # a new image: nothing but pixels
    return out.getvalue()


async def keep_upload(request: web.Request, data: bytes, now: datetime) -> str:
    """Store an after-photo uploaded on the dashboard like one sent to the bot: checked (type, size, pixels),
    re-encoded without metadata, content-addressed; returns its key. Raises ``PhotoRefused``."""
    clean, kind = await asyncio.to_thread(strip_metadata, data)
    store = app_of(request).services.reports.photos.store
    return await store.put(clean, kind.suffix, f"{PHOTO_FOLDER}/{now.strftime('%Y-%m')}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/photos/{report}/{slot}", photo)
