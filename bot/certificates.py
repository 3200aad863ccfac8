"""The 志愿服务记录证明 as an A4 PDF (content per 《志愿服务记录与证明出具办法（试行）》).

Text that may hold Chinese is set in ``STSong-Light``, one of the standard Adobe-GB1 CID fonts every PDF viewer
provides, so no font file is embedded and none is needed on the machine. Wording comes from the label files
(``volunteer_cert.*``); the PDF is rendered with ``invariant`` set, so the same certificate gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, datetime, time, tzinfo
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from bot.domain.volunteers import Certificate, ServiceLine, hours

Label = Callable[[str], str]

CJK_FONT = "STSong-Light"
LATIN_FONT = "Helvetica"
MARGIN = 2 * cm
WIDTH = A4[0] - 2 * MARGIN
KEY_WIDTH = 4.2 * cm
DATE_WIDTH = 4.6 * cm
HOURS_WIDTH = 2.8 * cm
RULE = colors.HexColor("#999999")
SHADE = colors.HexColor("#F0F0F0")


def render_certificate(cert: Certificate, *, locale: str, tz: tzinfo, labels: Label | None = None) -> bytes:
    """The certificate as PDF bytes: one A4 page, more when the service lines do not fit (the table's header row
    repeats, and every page's footer carries the certificate number and "page / pages").

    ``labels`` maps a full key (``volunteer_cert.title``) to text; by default the bundled labels of ``locale``.
    Dates are local dates in ``tz``; a ``period_to`` at local midnight ends the day before (an exclusive bound)."""
    _register_fonts()
    label = labels or _bundled_labels(locale)
    para = _Styles()

    def text(key: str) -> str:
        return label(f"volunteer_cert.{key}")

    def day(moment: date) -> str:
        return text("date_format").format(d=moment)

    first = cert.period_from.astimezone(tz).date()
    last = _last_day(cert.period_to, tz, first)
    services = cert.services or tuple(dict.fromkeys(line.activity for line in cert.lines))
    separator = text("separator")
    separator += " " if separator.isascii() else ""  # "," is followed by a space, "、" is not
    total = f"{hours(cert.minutes):.1f} {text('hours_unit')}"

    fields = [
        ("name", cert.name),
        ("period", f"{day(first)} {text('period_to')} {day(last)}"),
        ("total", total),
        ("services", separator.join(services) or "—"),
        ("organisation", cert.community),
        ("contact", cert.contact or "—"),
        ("number", cert.number),
        ("issued", day(cert.issued_at.astimezone(tz).date())),
    ]
    story: list[Any] = [
        para(text("title"), "title"),
        para(text("intro")),
        Spacer(1, 0.3 * cm),
        _grid(
            [[para(text(key), "field"), para(value, "field")] for key, value in fields], [KEY_WIDTH, WIDTH - KEY_WIDTH]
        ),
        Spacer(1, 0.6 * cm),
        para(text("lines"), "heading"),
        _lines_table(cert, tz, text, para),
        Spacer(1, 0.6 * cm),
        para(text("closing")),
        Spacer(1, 0.8 * cm),
        para(text("seal"), "signature"),
        para(cert.community, "signature"),
        para(day(cert.issued_at.astimezone(tz).date()), "signature"),
        Spacer(1, 0.8 * cm),
        para(text("verify"), "note"),
    ]

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"{text('title')} {cert.number}",
        author=cert.community,
        subject=cert.name,
        creator="Sicheng",
        invariant=1,
    )
    document.build(story, canvasmaker=_numbered_canvas(cert.number))
    return buffer.getvalue()


def _lines_table(cert: Certificate, tz: tzinfo, text: Label, para: _Styles) -> Table:
    header = [para(text(key), "cell") for key in ("line_date", "line_activity", "line_hours")]
    rows = [
        [para(_when(line, tz), "cell"), para(line.activity, "cell"), para(f"{hours(line.minutes):.1f}", "number")]
        for line in sorted(cert.lines, key=lambda line: (line.starts_at, line.activity))
    ]
    if not rows:
        rows = [[para("—", "cell"), para(text("no_lines"), "cell"), para("—", "number")]]
    footer = [para(text("line_total"), "cell"), para("", "cell"), para(f"{hours(cert.minutes):.1f}", "number")]
    widths = [DATE_WIDTH, WIDTH - DATE_WIDTH - HOURS_WIDTH, HOURS_WIDTH]
    table = _grid([header, *rows, footer], widths, repeat=1)
    table.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), SHADE), ("BACKGROUND", (0, -1), (-1, -1), SHADE)]))
    return table


def _grid(rows: list[list[Paragraph]], widths: list[float], repeat: int = 0) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=repeat)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return table


def _when(line: ServiceLine, tz: tzinfo) -> str:
    start, end = line.starts_at.astimezone(tz), line.ends_at.astimezone(tz)
    until = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{start:%Y-%m-%d %H:%M}–{until}"


def _last_day(period_to: datetime, tz: tzinfo, first: date) -> date:
    local = period_to.astimezone(tz)
    if local.time() == time() and local.date() > first:
        return date.fromordinal(local.date().toordinal() - 1)
    return local.date()


class _Styles:
    """Paragraph styles by kind; each paragraph is set in Helvetica when its text is plain Latin and in
    STSong-Light (wrapping between any two characters) when it holds anything else, such as Chinese."""

    def __init__(self) -> None:
        base = ParagraphStyle("body", fontName=LATIN_FONT, fontSize=11, leading=16)
        cell = ParagraphStyle("cell", base, fontSize=9.5, leading=13)
        self._kinds = {
            "body": base,
            "title": ParagraphStyle("title", base, fontSize=20, leading=28, alignment=TA_CENTER, spaceAfter=14),
            "heading": ParagraphStyle("heading", base, fontSize=12, spaceAfter=6),
            "signature": ParagraphStyle("signature", base, alignment=TA_RIGHT),
            "note": ParagraphStyle("note", base, fontSize=9, leading=13, textColor=colors.HexColor("#555555")),
            "field": ParagraphStyle("field", base, fontSize=10.5, leading=15),
            "cell": cell,
            "number": ParagraphStyle("number", cell, alignment=TA_RIGHT),
        }
        self._cjk: dict[str, ParagraphStyle] = {}

    def __call__(self, text: str, kind: str = "body") -> Paragraph:
        style = self._kinds[kind]
        if not _latin(text):
            if kind not in self._cjk:
                self._cjk[kind] = ParagraphStyle(f"{kind}-cjk", style, fontName=CJK_FONT, wordWrap="CJK")
            style = self._cjk[kind]
        return Paragraph(escape(text), style)


def _latin(text: str) -> bool:
    """Whether Helvetica (WinAnsi) can show every character of ``text``."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _numbered_canvas(number: str) -> type[Canvas]:
    """A canvas that writes "number · page / pages" at the foot of every page once it knows how many there are."""

    class NumberedCanvas(Canvas):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            count = len(self._pages)
            for page in self._pages:
                self.__dict__.update(page)
                self.setFont(LATIN_FONT if _latin(number) else CJK_FONT, 8)
                self.setFillColor(colors.HexColor("#555555"))
                self.drawString(MARGIN, MARGIN / 2, number)
                self.drawRightString(A4[0] - MARGIN, MARGIN / 2, f"{self._pageNumber} / {count}")
                super().showPage()
            super().save()

    return NumberedCanvas


@cache
def _register_fonts() -> None:
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))


def _bundled_labels(locale: str) -> Label:
    renderer = _bundled_renderer()
    return lambda key: renderer.label(locale, key)


@cache
def _bundled_renderer() -> Any:
    import content
    from bot.rendering import Renderer

    return Renderer(content.TEMPLATES)
