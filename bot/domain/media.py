"""Photo intake rules: size and type, judged by the bytes themselves, never by a file name."""

from __future__ import annotations

from enum import StrEnum

from bot.domain.errors import DomainError

MAX_PHOTO_BYTES = 10 * 1024 * 1024  # Telegram's own photo upload limit
# A few kilobytes of PNG can declare 100+ megapixels, which take gigabytes to decode: refuse from the header.
MAX_MEGAPIXELS = 40


class ImageKind(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"

    @property
    def suffix(self) -> str:
        return ".jpg" if self is ImageKind.JPEG else f".{self.value}"


class PhotoRefused(DomainError):
    """The file is not a photo we accept.

    ``reason`` is ``too_large``, ``not_image``, ``too_many`` or ``too_many_pixels``.
    """

    template = "reports/errors/photo"


def sniff(data: bytes) -> ImageKind | None:
    """The image type from its magic bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return ImageKind.JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageKind.PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageKind.WEBP
    return None


def check_photo(data: bytes, limit: int = MAX_PHOTO_BYTES) -> ImageKind:
    """Accept JPEG, PNG and WebP up to ``limit`` bytes; refuse anything else with a reason."""
    if len(data) > limit:
        raise PhotoRefused("photo too large", reason="too_large", limit_mb=limit // (1024 * 1024))
    kind = sniff(data)
    if kind is None:
        raise PhotoRefused("not an image", reason="not_image", limit_mb=limit // (1024 * 1024))
    return kind
