"""A satisfaction survey as a spreadsheet: the results per question (counts, shares, the index) and one line per
response. A named survey's respondents are masked (李** · 1381****); an anonymous survey's lines name nobody and
carry no building (a small building's line could point at a neighbour; the results sheet shows buildings of five
respondents or more only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from bot.domain.surveys import Question, QuestionKind, Response, Results, in_locale
from bot.export import write_book, write_csv

Label = Callable[..., str]
Cell = str | int | float
Format = Literal["xlsx", "csv"]
WIDTHS = {"question": 48, "answer": 30, "respondent": 22, "building": 12}


def results_lines(results: Results, locale: str, label: Label) -> list[list[Cell]]:
    header: list[Cell] = [label(f"surveys.export.{c}") for c in ("question", "answer", "count", "share")]
    lines: list[list[Cell]] = [header]
    lines.append([label("surveys.export.respondents"), "", results.respondents, ""])
    lines.append([label("surveys.export.index"), "", _float(results.index), _float(results.satisfied_share)])
    for r in results.questions:
        text = in_locale(r.question.text, locale)
        if r.question.kind is QuestionKind.TEXT:
            lines.append([text, label("surveys.export.written"), r.answered, ""])
            continue
        for t in r.tallies:
            lines.append([text, in_locale(t.label, locale), t.count, _float(t.share)])
        if r.index is not None:
            lines.append([text, label("surveys.export.index"), _float(r.index), _float(r.satisfied_share)])
    for g in results.buildings:
        if g.shown:
            lines.append([label("surveys.export.building"), g.name, g.respondents, _float(g.index)])
    return lines


def response_lines(
    results: Results, responses: Sequence[tuple[Response, str]], locale: str, label: Label
) -> list[list[Cell]]:
    survey = results.survey
    named = not survey.anonymous
    header: list[Cell] = [label("surveys.export.number"), label("surveys.export.day")]
    if named:
        header += [label("surveys.export.respondent"), label("surveys.export.building")]
    header += [f"{n}. {in_locale(q.text, locale)}" for n, q in enumerate(survey.questions, 1)]
    lines: list[list[Cell]] = [header]
    for n, (response, who) in enumerate(responses, 1):
        line: list[Cell] = [n, response.day.isoformat()]
        if named:
            line += [who, response.building or ""]
        line += [_answer(q, response.answers.get(q.key), locale) for q in survey.questions]
        lines.append(line)
    return lines


def write_survey_export(
    path: Path, results: Results, responses: Sequence[tuple[Response, str]], *, fmt: Format, locale: str, label: Label
) -> Path:
    """xlsx: a results sheet and a responses sheet; csv: the responses."""
    answers = response_lines(results, responses, locale, label)
    if fmt == "csv":
        return write_csv(path, answers)
    columns = [str(c) for c in answers[0]]
    summary = results_lines(results, locale, label)
    sheets: list[tuple[str, Sequence[str], Sequence[Sequence[Cell]]]] = [
        (label("surveys.export.results_sheet"), ("question", "answer", "count", "share"), summary),
        (label("surveys.export.responses_sheet"), columns, answers),
    ]
    return write_book(path, sheets, WIDTHS)


def _answer(question: Question, value: Any, locale: str) -> Cell:
    if value is None:
        return ""
    if question.kind is QuestionKind.SCALE:
        return int(value)
    if question.kind is QuestionKind.SINGLE:
        return in_locale(question.options[int(value)], locale)
    if question.kind is QuestionKind.MULTI:
        return "、".join(in_locale(question.options[int(i)], locale) for i in value)
    return str(value)


def _float(value: float | None) -> Cell:
    return "" if value is None else float(value)
