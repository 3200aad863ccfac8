"""The 志愿服务记录证明 PDF: what a reader finds on it (text extracted back from the PDF), in both languages."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

import content
from bot.certificates import render_certificate
from bot.domain.volunteers import Certificate, ServiceLine
from bot.rendering import Renderer

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "ZYFW-2026-000123-K7QX"
START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def _line(day: int, activity: str, minutes: int = 150) -> ServiceLine:
    starts = START + timedelta(days=day)
    return ServiceLine(day, activity, "sanitary", starts, starts + timedelta(minutes=minutes), minutes, 5)


def _certificate(lines: tuple[ServiceLine, ...] | None = None, **changes: object) -> Certificate:
    if lines is None:  # five shifts of 2.5 hours: 12.5 hours
        lines = tuple(
            _line(day, title) for day, title in enumerate(["垃圾分类宣传", "文明交通劝导"] * 2 + ["垃圾分类宣传"])
        )
    values: dict[str, object] = {
        "number": NUMBER,
        "resident_id": 7,
        "name": "王小明",
        "community": "幸福里社区",
        "contact": "居委会 021-12345678",
        "period_from": START,
        "period_to": START + timedelta(days=30),
        "minutes": sum(line.minutes for line in lines),
        "services": tuple(dict.fromkeys(line.activity for line in lines)),
        "issued_at": datetime(2026, 4, 2, 2, 0, tzinfo=UTC),
        "lines": lines,
    }
    values.update(changes)
    return Certificate(**values)  # type: ignore[arg-type]


def _labels(locale: str) -> Callable[[str], str]:
    renderer = Renderer(content.TEMPLATES)
    return lambda key: renderer.label(locale, key)


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _text(pdf: bytes) -> str:
    return "\n".join(_pages(pdf))


def test_render_chinese_certificate_shows_name_hours_number_and_community() -> None:
    cert = _certificate()
    assert cert.minutes == 750

    text = _text(render_certificate(cert, locale="zh_Hans", tz=SHANGHAI, labels=_labels("zh_Hans")))

    assert "志愿服务记录证明" in text
    assert "王小明" in text
    assert "12.5 小时" in text
    assert NUMBER in text
    assert "幸福里社区" in text
    assert "居委会 021-12345678" in text
    assert "垃圾分类宣传、文明交通劝导" in text
    assert "/checkcert" in text


def test_render_english_certificate_shows_chinese_name_and_english_wording() -> None:
    text = _text(render_certificate(_certificate(), locale="en", tz=SHANGHAI, labels=_labels("en")))

    assert "Certificate of Volunteer Service Record" in text
    assert "王小明" in text
    assert "12.5 hours" in text
    assert "垃圾分类宣传, 文明交通劝导" in text
    assert NUMBER in text
    assert "幸福里社区" in text
    assert "/checkcert" in text
    assert "志愿服务记录证明" not in text


def test_render_without_labels_uses_the_bundled_wording_of_the_locale() -> None:
    cert = _certificate()

    assert render_certificate(cert, locale="en", tz=SHANGHAI) == render_certificate(
        cert, locale="en", tz=SHANGHAI, labels=_labels("en")
    )
    assert "志愿服务记录证明" in _text(render_certificate(cert, locale="zh_Hans", tz=SHANGHAI))


def test_render_same_certificate_twice_gives_identical_bytes() -> None:
    first = render_certificate(_certificate(), locale="zh_Hans", tz=SHANGHAI)
    again = render_certificate(_certificate(), locale="zh_Hans", tz=SHANGHAI)
    other = render_certificate(_certificate(name="李华"), locale="zh_Hans", tz=SHANGHAI)

    assert first == again
    assert first != other


def test_render_dates_are_local_dates_of_the_zone() -> None:
    late = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 01:30 on 2 March in Shanghai
    line = ServiceLine(1, "夜间巡查", None, late, late + timedelta(hours=2), 120)
    cert = _certificate(
        (line,),
        period_from=late,
        period_to=datetime(2026, 3, 31, 16, 0, tzinfo=UTC),  # midnight opening 1 April: the period ends 31 March
        issued_at=datetime(2026, 3, 31, 20, 0, tzinfo=UTC),  # 04:00 on 1 April
    )

    text = _text(render_certificate(cert, locale="zh_Hans", tz=SHANGHAI))

    assert "2026年3月2日 至 2026年3月31日" in text
    assert "2026-03-02 01:30–03:30" in text
    assert "2026年4月1日" in text
    assert "2.0 小时" in text


def test_render_english_dates_spell_the_month() -> None:
    text = _text(render_certificate(_certificate(), locale="en", tz=SHANGHAI))

    assert "March 1, 2026 to March 31, 2026" in text
    assert "April 2, 2026" in text


def test_render_sixty_lines_spreads_over_pages_and_keeps_every_activity() -> None:
    lines = tuple(_line(day, f"垃圾分类宣传第{day:02d}场") for day in range(1, 61))
    cert = _certificate(lines)

    pdf = render_certificate(cert, locale="zh_Hans", tz=SHANGHAI)
    pages = _pages(pdf)
    text = "\n".join(pages)

    assert len(pages) >= 2
    assert all(f"{NUMBER}" in page and f"{number} / {len(pages)}" in page for number, page in enumerate(pages, 1))
    assert all(f"垃圾分类宣传第{day:02d}场" in text for day in range(1, 61))
    assert sum("服务日期" in page for page in pages) == len(pages)  # the table header repeats on each page
    assert "150.0" in text  # the total: 60 × 2.5 hours


def test_render_long_activity_title_wraps_without_losing_characters() -> None:
    title = "社区环境卫生整治暨垃圾分类桶边督导与文明养犬宣传" * 2 + "活动"
    cert = _certificate((_line(1, title),))

    for locale in ("zh_Hans", "en"):
        text = "".join(_text(render_certificate(cert, locale=locale, tz=SHANGHAI)).split())
        assert title in text


@pytest.mark.parametrize("name", ["<b>王&小明</b>", "O'Brien & 王"])
def test_render_name_with_markup_characters_shows_them_as_typed(name: str) -> None:
    text = _text(render_certificate(_certificate(name=name), locale="zh_Hans", tz=SHANGHAI))

    assert name in text


def test_render_without_service_lines_still_issues_one_page() -> None:
    cert = _certificate((), minutes=0, services=())

    pages = _pages(render_certificate(cert, locale="zh_Hans", tz=SHANGHAI))

    assert len(pages) == 1
    assert "（无明细）" in pages[0]
    assert "0.0 小时" in pages[0]
