"""Satisfaction surveys (满意度测评): questions, answers, one submission per resident, results and the index.

A survey is a list of questions (single choice, multiple choice, a 1–5 scale, short text), each required or
optional, open between two times for an audience (as notices: the community, buildings or a role), anonymous or
named. Residents answer one question at a time; their progress is a :class:`Progress` kept in the database until
they submit, when it becomes one :class:`Response` (and, for an anonymous survey, the response names nobody).

**The satisfaction index** of a survey is the mean of its scale answers mapped 1→0, 2→25, 3→50, 4→75, 5→100
(every scale answer of every scale question counts once), rounded to one decimal; the **satisfied share** is the
share of those scale answers that are 4 or 5 (the plan's goal: ≥ 90%). The index over time is one point per survey
of a community, at the day it closes. Groups (a building) of fewer than :data:`MIN_GROUP` respondents are not
shown. Standard library only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.campaigns import Audience, AudienceKind
from bot.domain.errors import DomainError

SCALE = (1, 2, 3, 4, 5)
SATISFIED = (4, 5)
TEXT_LIMIT = 200  # characters of a short-text answer unless the question says otherwise
TEXT_LIMIT_MAX = 500
OPTIONS_MAX = 8
QUESTIONS_MAX = 20
QUESTION_TEXT_MAX = 300
TITLE_MAX = 64
KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
KEY_MAX = 12
MIN_GROUP = 5  # a group (a building) with fewer respondents is not shown
LONGEST_OPEN = timedelta(days=92)
REMIND_BEFORE = timedelta(hours=48)  # the reminder goes this long before a survey closes
AUDIENCES = (AudienceKind.ALL, AudienceKind.BUILDINGS, AudienceKind.ROLE)


class QuestionKind(StrEnum):
    SINGLE = "single"
    MULTI = "multi"
    SCALE = "scale"
    TEXT = "text"


class SurveyStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its opening time
    OPEN = "open"  # invitations sent, answers taken
    CLOSED = "closed"
    CANCELLED = "cancelled"


class SurveyError(DomainError):
    """A survey that cannot be built, or an answer that cannot be taken; ``code`` names the reason."""

    template = "surveys/problem"

    def __init__(self, code: str, **context: Any) -> None:
        super().__init__(code, code=code, **context)
        self.code = code


Texts = Mapping[str, str]  # locale → text; an organiser's own survey has one language, the library's every one


def in_locale(texts: Texts, locale: str) -> str:
    """The text in the reader's language, else Chinese, else whatever there is."""
    return texts.get(locale) or texts.get("zh_Hans") or next(iter(texts.values()), "")


@dataclass(frozen=True)
class Question:
    key: str
    kind: QuestionKind
    text: Texts
    options: tuple[Texts, ...] = ()
    required: bool = True
    limit: int = TEXT_LIMIT  # characters of a text answer
    exclusive: int | None = None  # a multiple-choice option that excludes the others ("none of these")

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > KEY_MAX or not set(self.key) <= KEY_CHARS:
            raise SurveyError("bad_key", key=self.key)
        if not self.text or any(not t.strip() or len(t) > QUESTION_TEXT_MAX for t in self.text.values()):
            raise SurveyError("bad_question", limit=QUESTION_TEXT_MAX)
        if self.kind in (QuestionKind.SINGLE, QuestionKind.MULTI):
            if not 2 <= len(self.options) <= OPTIONS_MAX:
                raise SurveyError("bad_options", limit=OPTIONS_MAX)
            if any(not o or any(not t.strip() or len(t) > 40 for t in o.values()) for o in self.options):
                raise SurveyError("bad_options", limit=OPTIONS_MAX)
        elif self.options:
            raise SurveyError("bad_options", limit=OPTIONS_MAX)
        if self.exclusive is not None and (
            self.kind is not QuestionKind.MULTI or not 0 <= self.exclusive < len(self.options)
        ):
            raise SurveyError("bad_options", limit=OPTIONS_MAX)
        if not 1 <= self.limit <= TEXT_LIMIT_MAX:
            raise SurveyError("bad_limit", limit=TEXT_LIMIT_MAX)

    def check(self, value: Any) -> Any:
        """The answer as stored (an option's index, indexes, a scale value, a text); SurveyError otherwise."""
        if self.kind is QuestionKind.SCALE:
            if not isinstance(value, int) or isinstance(value, bool) or value not in SCALE:
                raise SurveyError("bad_answer")
            return value
        if self.kind is QuestionKind.SINGLE:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < len(self.options):
                raise SurveyError("bad_answer")
            return value
        if self.kind is QuestionKind.MULTI:
            chosen = sorted(set(value)) if isinstance(value, list | tuple) else None
            if chosen is None or any(type(v) is not int or not 0 <= v < len(self.options) for v in chosen):
                raise SurveyError("bad_answer")
            if not chosen and self.required:
                raise SurveyError("choose_one")
            if self.exclusive in chosen and len(chosen) > 1:
                raise SurveyError("bad_answer")  # "none of these" and something
            return chosen
        if not isinstance(value, str):
            raise SurveyError("bad_answer")
        text = " ".join(value.split())
        if not text:
            raise SurveyError("empty_text")
        if len(text) > self.limit:
            raise SurveyError("text_too_long", limit=self.limit, length=len(text))
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind.value,
            "text": dict(self.text),
            "options": [dict(o) for o in self.options],
            "required": self.required,
            "limit": self.limit,
            "exclusive": self.exclusive,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Question:
        return cls(
            str(data["key"]),
            QuestionKind(data["kind"]),
            {str(k): str(v) for k, v in dict(data["text"]).items()},
            tuple({str(k): str(v) for k, v in dict(o).items()} for o in data.get("options") or ()),
            bool(data.get("required", True)),
            int(data.get("limit", TEXT_LIMIT)),
            None if data.get("exclusive") is None else int(data["exclusive"]),
        )


def check_questions(questions: Sequence[Question]) -> tuple[Question, ...]:
    if not questions:
        raise SurveyError("no_questions")
    if len(questions) > QUESTIONS_MAX:
        raise SurveyError("too_many_questions", limit=QUESTIONS_MAX)
    keys = [q.key for q in questions]
    if len(set(keys)) != len(keys):
        raise SurveyError("duplicate_key")
    if all(not q.required for q in questions):
        raise SurveyError("all_optional")
    return tuple(questions)


# An organiser's own survey typed as lines (the dashboard's form): ``<kind>[(limit)][?] <question> [| option …]``,
# ``?`` after the kind for an optional question, a text question's limit in brackets, e.g.
# ``单选 您多久参加一次志愿活动？ | 每周 | 每月 | 很少`` or ``填空(100)? 其他建议``.
KIND_WORDS = {
    "scale": QuestionKind.SCALE, "打分": QuestionKind.SCALE,
    "single": QuestionKind.SINGLE, "单选": QuestionKind.SINGLE,
    "multi": QuestionKind.MULTI, "多选": QuestionKind.MULTI,
    "text": QuestionKind.TEXT, "填空": QuestionKind.TEXT,
}  # fmt: skip
_HEAD = re.compile(r"^(?P<kind>[^\s(（?？]+)(?:[(（](?P<limit>\d{1,4})[)）])?(?P<optional>[?？])?$")


def parse_questions(text: str, locale: str) -> tuple[Question, ...]:
    """Questions typed one per line (see KIND_WORDS); SurveyError names the first line that cannot be read."""
    questions = []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for n, line in enumerate(lines, 1):
        head, _, rest = line.replace("：", " ", 1).partition(" ")
        found = _HEAD.match(head)
        kind = KIND_WORDS.get(found.group("kind").lower()) if found else None
        parts = [p.strip() for p in rest.replace("｜", "|").split("|")]
        if found is None or kind is None or not parts[0]:
            raise SurveyError("bad_line", line=n)
        limit = int(found.group("limit") or TEXT_LIMIT)
        try:
            question = Question(f"q{n}", kind, {locale: parts[0]}, tuple({locale: o} for o in parts[1:] if o),
                                required=not found.group("optional"), limit=limit)  # fmt: skip
        except SurveyError as error:
            raise SurveyError(error.code, line=n, **{k: v for k, v in error.context.items() if k != "code"}) from None
        questions.append(question)
    return check_questions(questions)


@dataclass(frozen=True)
class Survey:
    id: int
    community_id: int
    title: Texts
    questions: tuple[Question, ...]
    opens_at: datetime
    closes_at: datetime
    audience: Audience = field(default_factory=Audience)
    anonymous: bool = True
    status: SurveyStatus = SurveyStatus.SCHEDULED
    template: str | None = None
    author_id: int | None = None
    created_at: datetime | None = None
    invited_at: datetime | None = None
    reminded_at: datetime | None = None
    closed_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.title or any(not t.strip() or len(t) > TITLE_MAX for t in self.title.values()):
            raise SurveyError("bad_title", limit=TITLE_MAX)
        if self.closes_at <= self.opens_at:
            raise SurveyError("closes_before_opens")
        if self.closes_at - self.opens_at > LONGEST_OPEN:
            raise SurveyError("open_too_long", days=LONGEST_OPEN.days)
        if self.audience.kind not in AUDIENCES:
            raise SurveyError("bad_audience")
        check_questions(self.questions)

    def question(self, key: str) -> Question:
        for q in self.questions:
            if q.key == key:
                return q
        raise SurveyError("no_question")

    def accepts(self, now: datetime) -> bool:
        """Answers are taken while it is open and its closing time has not come."""
        return self.status is SurveyStatus.OPEN and self.opens_at <= now < self.closes_at

    def with_(self, **fields: Any) -> Survey:
        return replace(self, **fields)


@dataclass(frozen=True)
class Progress:
    """A resident's answers so far (stored until they submit). ``answers`` maps a question's key to its answer
    (None: an optional question skipped); ``picking`` the options ticked on a multiple-choice question not yet
    confirmed."""

    answers: dict[str, Any] = field(default_factory=dict)
    picking: dict[str, list[int]] = field(default_factory=dict)

    def next_question(self, survey: Survey) -> Question | None:
        """The first question not answered yet; None: all answered (time for the review)."""
        return next((q for q in survey.questions if q.key not in self.answers), None)

    def answer(self, question: Question, value: Any) -> Progress:
        answers = dict(self.answers) | {question.key: question.check(value)}
        picking = {k: v for k, v in self.picking.items() if k != question.key}
        return Progress(answers, picking)

    def skip(self, question: Question) -> Progress:
        if question.required:
            raise SurveyError("required")
        picking = {k: v for k, v in self.picking.items() if k != question.key}
        return Progress(dict(self.answers) | {question.key: None}, picking)

    def reopen(self, question: Question) -> Progress:
        """Change an answer: the question is asked again (its earlier answer is what is ticked)."""
        answers = {k: v for k, v in self.answers.items() if k != question.key}
        picking = dict(self.picking)
        if question.kind is QuestionKind.MULTI:
            picking[question.key] = list(self.answers.get(question.key) or [])
        return Progress(answers, picking)

    def toggle(self, question: Question, option: int) -> Progress:
        if question.kind is not QuestionKind.MULTI or not 0 <= option < len(question.options):
            raise SurveyError("bad_answer")
        ticked = set(self.picking.get(question.key, []))
        ticked ^= {option}
        if option in ticked and question.exclusive is not None:
            # "None of these" clears the others; any other choice clears "none of these".
            ticked = {option} if option == question.exclusive else ticked - {question.exclusive}
        return Progress(dict(self.answers), dict(self.picking) | {question.key: sorted(ticked)})

    def complete(self, survey: Survey) -> bool:
        return all(q.key in self.answers for q in survey.questions)

    def final(self, survey: Survey) -> dict[str, Any]:
        """The answers to submit (skipped questions left out); SurveyError when a required one is missing."""
        if not self.complete(survey) or any(q.required and self.answers.get(q.key) is None for q in survey.questions):
            raise SurveyError("incomplete")
        return {q.key: self.answers[q.key] for q in survey.questions if self.answers.get(q.key) is not None}

    def to_json(self) -> dict[str, Any]:
        return {"answers": self.answers, "picking": self.picking}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Progress:
        data = data or {}
        return cls(dict(data.get("answers") or {}), {k: list(v) for k, v in (data.get("picking") or {}).items()})


@dataclass(frozen=True)
class Response:
    """One submitted set of answers. ``respondent`` is None in an anonymous survey; ``day`` is the local date."""

    answers: dict[str, Any]
    day: date
    building: str | None = None
    respondent: int | None = None


# ---- results ---------------------------------------------------------------------------------------------------


def scale_index(value: int) -> float:
    """A scale answer on the index's 0–100: 1→0 … 5→100."""
    return (value - 1) * 25.0


@dataclass(frozen=True)
class Tally:
    """One answer option (or scale value) with how many chose it and their share of the question's respondents."""

    label: Texts
    count: int
    share: float | None


@dataclass(frozen=True)
class QuestionResult:
    question: Question
    answered: int
    tallies: tuple[Tally, ...] = ()
    index: float | None = None  # scale questions
    satisfied_share: float | None = None
    texts: tuple[str, ...] = ()  # text questions (organisers only)


@dataclass(frozen=True)
class GroupResult:
    name: str
    respondents: int
    index: float | None
    satisfied_share: float | None
    shown: bool  # False: fewer than MIN_GROUP respondents, nothing but that is shown


@dataclass(frozen=True)
class Results:
    survey: Survey
    respondents: int
    index: float | None
    satisfied_share: float | None
    questions: tuple[QuestionResult, ...]
    buildings: tuple[GroupResult, ...]
    hidden_groups: int  # buildings with fewer than MIN_GROUP respondents
    # An anonymous survey answered by fewer than MIN_GROUP: nothing but the count is shown (with one respondent the
    # "results" would be that person's answers, and whoever knows who answered would read them).
    withheld: bool = False

    def to_json(self) -> dict[str, Any]:
        """The figures both /stats and the dashboard show (numbers only, no free text)."""
        return {
            "survey": self.survey.id,
            "respondents": self.respondents,
            "index": self.index,
            "satisfied_share": self.satisfied_share,
            "questions": {
                r.question.key: {"answered": r.answered, "counts": [t.count for t in r.tallies], "index": r.index}
                for r in self.questions
            },
            "buildings": {g.name: g.index for g in self.buildings if g.shown},
            "withheld": self.withheld,
        }


def _share(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _index(values: Sequence[int]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(scale_index(v) for v in values) / len(values)
    return round(mean, 1), _share(sum(1 for v in values if v in SATISFIED), len(values))


def scale_values(survey: Survey, responses: Iterable[Response]) -> list[int]:
    keys = {q.key for q in survey.questions if q.kind is QuestionKind.SCALE}
    return [int(v) for r in responses for k, v in r.answers.items() if k in keys and v is not None]


def tally(survey: Survey, responses: Sequence[Response]) -> Results:
    """Counts and shares per question, the index, and buildings of at least MIN_GROUP respondents; for an anonymous
    survey with fewer than MIN_GROUP respondents, only their number."""
    if survey.anonymous and 0 < len(responses) < MIN_GROUP:
        return Results(survey, len(responses), None, None, (), (), 0, withheld=True)
    results = []
    for q in survey.questions:
        given = [r.answers[q.key] for r in responses if r.answers.get(q.key) is not None]
        if q.kind is QuestionKind.SCALE:
            counts = Counter(int(v) for v in given)
            tallies = tuple(Tally({"": str(v)}, counts[v], _share(counts[v], len(given))) for v in SCALE)
            index, satisfied = _index([int(v) for v in given])
            results.append(QuestionResult(q, len(given), tallies, index, satisfied))
        elif q.kind is QuestionKind.TEXT:
            results.append(QuestionResult(q, len(given), texts=tuple(str(v) for v in given)))
        else:
            counts = Counter(i for v in given for i in (v if isinstance(v, list) else [v]))
            tallies = tuple(Tally(o, counts[i], _share(counts[i], len(given))) for i, o in enumerate(q.options))
            results.append(QuestionResult(q, len(given), tallies))
    index, satisfied = _index(scale_values(survey, responses))
    groups: dict[str, list[Response]] = {}
    for r in responses:
        if r.building is not None:
            groups.setdefault(r.building, []).append(r)
    buildings = []
    for name in sorted(groups):
        members = groups[name]
        if len(members) < MIN_GROUP:
            buildings.append(GroupResult(name, len(members), None, None, False))
            continue
        g_index, g_satisfied = _index(scale_values(survey, members))
        buildings.append(GroupResult(name, len(members), g_index, g_satisfied, True))
    hidden = sum(1 for g in buildings if not g.shown)
    return Results(survey, len(responses), index, satisfied, tuple(results), tuple(buildings), hidden)


@dataclass(frozen=True)
class IndexPoint:
    """One survey's index on the line over time."""

    survey_id: int
    title: Texts
    day: date
    respondents: int
    index: float | None
    satisfied_share: float | None


# ---- satisfaction with a report's fix ---------------------------------------------------------------------------

FIX_COMMENT_LIMIT = 200


def check_fix_score(score: int) -> int:
    if score not in SCALE:
        raise SurveyError("bad_answer")
    return score
