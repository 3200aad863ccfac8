"""The survey library (``surveys/<key>.yaml``): surveys an organiser starts from, with their text in every language.

A library survey is copied into the survey when an organiser creates one, so editing the library later does not
change surveys already running.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.domain.residents import LOCALES
from bot.domain.surveys import LONGEST_OPEN, Question, SurveyError, Texts, check_questions

FOLDER = Path(__file__).parent / "surveys"


@dataclass(frozen=True)
class SurveyTemplate:
    key: str
    title: Texts
    questions: tuple[Question, ...]
    anonymous: bool
    days_open: int


def _texts(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != set(LOCALES):
        raise ValueError(f"{where}: needs a text in each of {', '.join(LOCALES)}")
    return {str(k): str(v) for k, v in value.items()}


def load_template(path: Path) -> SurveyTemplate:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    key = path.stem
    questions = []
    for n, q in enumerate(data.get("questions") or (), 1):
        where = f"{key}: question {n}"
        _texts(q.get("text"), where)
        for option in q.get("options") or ():
            _texts(option, f"{where} option")
        try:
            questions.append(Question.from_json(q))
        except (SurveyError, KeyError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
    try:
        checked = check_questions(questions)
    except SurveyError as error:
        raise ValueError(f"{key}: {error}") from None
    days = int(data.get("days_open", 14))
    if not 1 <= days <= LONGEST_OPEN.days:
        raise ValueError(f"{key}: days_open must be 1–{LONGEST_OPEN.days}")
    return SurveyTemplate(key, _texts(data.get("title"), f"{key}: title"), checked, bool(data.get("anonymous")), days)


def load_library(folder: Path = FOLDER) -> dict[str, SurveyTemplate]:
    return {p.stem: load_template(p) for p in sorted(folder.glob("*.yaml"))}


def check_library(root: Path) -> list[str]:
    try:
        load_library(root / "surveys")
    except (ValueError, yaml.YAMLError) as error:
        return [f"surveys/{error}"]
    return []
