"""QR images of redemption codes, written as PNG by qrcode's pure-Python writer (no Pillow needed)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class QrImages:
    """Makes ``<folder>/<code>.png`` on demand; an image derives from its code, so the folder may be wiped."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, code: str) -> str | None:
        """Path of the QR image for ``code``; None when it cannot be made (the code alone still works)."""
        path = self.folder / f"{code}.png"
        if path.exists():
            return str(path)
        try:
            import qrcode
            from qrcode.image.pure import PyPNGImage

            self.folder.mkdir(parents=True, exist_ok=True)
            image = qrcode.make(code, image_factory=PyPNGImage, box_size=8, border=2)
            with path.open("wb") as out:
                image.save(out)
        except (ImportError, OSError):
            log.warning("QR image for a redemption code could not be written", exc_info=True)
            return None
        return str(path)
