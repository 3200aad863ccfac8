"""The 问题台账 as a spreadsheet (xlsx or csv, Chinese intact) and report figures for the command line."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet

from bot.domain.report_figures import Figures
from bot.services.report_stats import LedgerRow

COLUMNS = (
    "ticket", "community", "category", "track", "place", "description", "reporter", "assignee", "status", "result",
    "submitted_at", "accepted_at", "deadline", "resolved_at", "closed_at", "reopened", "photos", "after_photo",
)  # fmt: skip
WIDTHS = {"description": 40, "place": 28, "photos": 60, "after_photo": 60, "category": 22}
Label = Callable[[str], str]
Cell = str | int


def period(start: str | None, end: str | None, tz: tzinfo) -> tuple[datetime | None, datetime | None]:
    """``--from``/``--to`` as local dates (inclusive) → [since, until) in UTC."""
    since = datetime.combine(date.fromisoformat(start), time(), tz) if start else None
    until = datetime.combine(date.fromisoformat(end) + timedelta(days=1), time(), tz) if end else None
    return since, until


def table(rows: Sequence[LedgerRow], label: Label, tracks: dict[str, str]) -> list[list[Cell]]:
    """Header (localised labels) and one line per report."""
    header: list[Cell] = [label(f"reports.export.{c}") for c in COLUMNS]
    return [header, *(_cells(r, label, tracks) for r in rows)]


def _cells(row: LedgerRow, label: Label, tracks: dict[str, str]) -> list[Cell]:
    values: list[Cell] = []
    for column in COLUMNS:
        value = getattr(row, column)
        if column in ("status", "result"):
            value = label(f"reports.status.{value}")
        elif column == "track":
            value = tracks.get(value or "", "—")
        elif isinstance(value, datetime):
            value = value.strftime("%Y-%m-%d %H:%M")
        elif isinstance(value, tuple):
            value = "\n".join(value)
        values.append("" if value is None else value)
    return values


def write_xlsx(path: Path, lines: list[list[Cell]], title: str) -> Path:
    """An Excel workbook with a bold, frozen header row."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    fill_sheet(sheet, title, COLUMNS, WIDTHS, lines)
    book.save(path)
    return path


def write_book(
    path: Path,
    sheets: Sequence[tuple[str, Sequence[str], Sequence[Sequence[str | int | float]]]],
    widths: Mapping[str, int],
) -> Path:
    """An Excel workbook of several ledger sheets, each ``(title, columns, lines)`` filled by ``fill_sheet``."""
    book = Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, columns, lines in sheets:
        fill_sheet(book.create_sheet(), title, columns, widths, lines)
    book.save(path)
    return path


def local_time(moment: datetime | None, tz: tzinfo) -> str:
    """A moment as local ``YYYY-MM-DD HH:MM`` in a sheet ("" when there is none)."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment is not None else ""


def fill_sheet(
    sheet: Worksheet,
    title: str,
    columns: Sequence[str],
    widths: Mapping[str, int],
    lines: Sequence[Sequence[str | int | float]],
) -> None:
    """One sheet of a ledger: the header row bold and frozen, column widths by name, text wrapped, hours (floats)
    with one decimal."""
    sheet.title = title[:31]
    for line in lines:
        sheet.append(list(line))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = widths.get(column, 16)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if isinstance(cell.value, float):
                cell.number_format = "0.0"
    sheet.freeze_panes = "A2"


def write_csv(path: Path, lines: Sequence[Sequence[str | int | float]]) -> Path:
    """CSV in UTF-8 with a byte-order mark, so Excel opens the Chinese text correctly."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(lines)
    return path


def figure_lines(name: str, found: Figures, categories: dict[str, str]) -> list[str]:
    """Report figures as plain lines for ``sicheng stats reports``."""
    return [
        f"{name}: {found.total} reports",
        "by type: " + ", ".join(f"{k} {v}" for k, v in found.by_type.items()),
        "by status: " + (", ".join(f"{k} {v}" for k, v in found.by_status.items()) or "—"),
        "by category: " + (", ".join(f"{categories.get(k, k)} {v}" for k, v in found.by_category.items()) or "—"),
        f"submitted→resolved hours: median {_num(found.resolve_median_h)}, p90 {_num(found.resolve_p90_h)}",
        f"submitted→verified hours: median {_num(found.verify_median_h)}, p90 {_num(found.verify_p90_h)}",
        f"on time: {_pct(found.on_time_share)}; reopened: {_pct(found.reopened_share)}",
    ]


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{round(100 * value)}%"
