"""Certificate PDFs as files to send: drawn once per certificate and language, redrawn when the folder was wiped,
never served from an older drawing when the record changed."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pypdf import PdfReader

from bot.certificate_files import CertificateFiles
from bot.domain.volunteers import Certificate, ServiceLine

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)


def _certificate(name: str = "王小明") -> Certificate:
    line = ServiceLine(1, "垃圾分类宣传", "sanitary", START, START + timedelta(minutes=150), 150, 5)
    return Certificate("ZYFW-2026-000123-K7QX", 7, name, "幸福里社区", "居委会", START, START + timedelta(days=1), 150,
                       ("垃圾分类宣传",), START, lines=(line,))  # fmt: skip


def _text(path: str) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(Path(path).read_bytes())).pages)


def test_certificate_file_is_a_pdf_of_the_certificate_in_its_language(tmp_path: Path) -> None:
    files = CertificateFiles(tmp_path / "certs")
    chinese, english = files(_certificate(), "zh_Hans", SHANGHAI), files(_certificate(), "en", SHANGHAI)
    assert chinese != english
    assert Path(chinese).name.startswith("ZYFW-2026-000123-K7QX-zh_Hans-") and chinese.endswith(".pdf")
    assert "王小明" in _text(chinese) and "志愿服务记录证明" in _text(chinese)
    assert "2.5" in _text(english) and "志愿服务记录证明" not in _text(english)


def test_certificate_file_is_reused_and_redrawn_when_missing(tmp_path: Path) -> None:
    files = CertificateFiles(tmp_path / "certs")
    first = files(_certificate(), "zh_Hans", SHANGHAI)
    Path(first).write_bytes(b"%PDF-1.4 kept")  # drawn already: not drawn again
    assert files(_certificate(), "zh_Hans", SHANGHAI) == first
    assert Path(first).read_bytes() == b"%PDF-1.4 kept"
    Path(first).unlink()  # the temporary folder was wiped
    again = files(_certificate(), "zh_Hans", SHANGHAI)
    assert again == first and "王小明" in _text(again)


def test_certificate_file_after_name_removed_replaces_older_drawing(tmp_path: Path) -> None:
    files = CertificateFiles(tmp_path / "certs")
    before = files(_certificate(), "zh_Hans", SHANGHAI)
    after = files(replace(_certificate(), name="已注销用户"), "zh_Hans", SHANGHAI)
    assert after != before and not Path(before).exists()
    assert "王小明" not in _text(after)
    assert [p.name for p in (tmp_path / "certs").iterdir()] == [Path(after).name]  # no partial files left


def test_certificate_file_uses_given_labels(tmp_path: Path) -> None:
    files = CertificateFiles(tmp_path / "certs", lambda locale, key: f"[{key.rsplit('.', 1)[-1]}]" if
                             key != "volunteer_cert.date_format" else "{d:%Y/%m/%d}")  # fmt: skip
    text = _text(files(_certificate(), "en", SHANGHAI))
    assert "[title]" in text and "2026/03/01" in text
