"""志愿服务记录证明 PDFs as files the bot can send: drawn on demand into one folder, redrawn when missing.

A file derives from the registered certificate (and the language and time zone it is drawn in), so the folder may
be wiped at any time, like the QR images of ``bot.qr``. Its name carries the certificate number, the locale and a
digest of what is printed: a certificate whose record changed (a volunteer's name removed when they delete their
data) is never served from an older drawing, and the older file of that number and locale is removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path

from bot.certificates import render_certificate
from bot.domain.volunteers import Certificate

log = logging.getLogger(__name__)

Labels = Callable[[str, str], str]  # (locale, full key) → text, as Renderer.label


class CertificateFiles:
    """``files(cert, locale, tz)`` → the path of ``<folder>/<number>-<locale>-<digest>.pdf``."""

    def __init__(self, folder: Path, labels: Labels | None = None) -> None:
        self.folder = folder
        self._labels = labels  # None: the bundled label files

    def __call__(self, cert: Certificate, locale: str, tz: tzinfo) -> str:
        stem = f"{_safe(cert.number)}-{_safe(locale)}"
        path = self.folder / f"{stem}-{_digest(cert, locale, tz)}.pdf"
        if path.exists():
            return str(path)
        labels = self._labels
        pdf = render_certificate(
            cert, locale=locale, tz=tz, labels=(lambda key: labels(locale, key)) if labels else None
        )
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # names of volunteers: for the bot's user only
        # Written under a temporary name and moved into place: a reader never sees half a file, and two drawings
        # of the same certificate at once both end in the same complete file.
        handle, partial = tempfile.mkstemp(dir=self.folder, prefix=f".{stem}-", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(pdf)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        for older in self.folder.glob(f"{stem}-*.pdf"):
            if older != path:
                older.unlink(missing_ok=True)
        return str(path)


def _digest(cert: Certificate, locale: str, tz: tzinfo) -> str:
    """What the PDF shows (every field of the certificate) in which language and zone."""
    return hashlib.sha256(f"{cert!r}|{locale}|{tz}".encode()).hexdigest()[:12]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:60] or "_"
