"""Question bank and knowledge cards: YAML format, validation and import.

Layout under a content root::

    questions/<track>.yaml   {track: ..., questions: [...]}
    cards/<track>.yaml       {track: ..., cards: [...]}

The models refuse anything a quiz poll or a card message could not carry, so a loaded bank is always sendable.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

Track = Literal["civilised", "sanitary", "garden", "food_safety"]
TRACKS: tuple[Track, ...] = get_args(Track)
PREFIXES: dict[Track, str] = {"civilised": "civ", "sanitary": "san", "garden": "gar", "food_safety": "food"}
LOCALES = ("zh_Hans", "en")

# Telegram poll limits (sendPoll): question 1-300, option 1-100, explanation 0-200 with at most 2 line feeds.
QUESTION_MAX, OPTION_MAX, EXPLANATION_MAX, EXPLANATION_LINE_FEEDS = 300, 100, 200, 2
OPTIONS_MIN, OPTIONS_MAX = 2, 6  # Telegram allows 12; more than 6 is unreadable on a phone
CARD_TITLE_MAX, CARD_BODY_MAX = 64, 900
MIN_QUESTIONS, MIN_CARDS = 40, 8
# A multi-answer question must tell the resident so, in every locale.
MULTI_MARKERS = {"zh_Hans": ("多选",), "en": ("all that apply",)}
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def tg_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Frozen):
    zh_Hans: Text
    en: Text


class QuestionText(_Frozen):
    question: Text
    options: tuple[Text, ...]
    explanation: Text


class Question(_Frozen):
    id: Annotated[str, Field(pattern=r"^(civ|san|gar|food)-\d{3}$")]
    difficulty: Annotated[StrictInt, Field(ge=1, le=3)]
    tags: tuple[Text, ...] = ()
    correct: tuple[StrictInt, ...]
    source: Source
    zh_Hans: QuestionText
    en: QuestionText

    @model_validator(mode="after")
    def _check(self) -> Question:
        _raise_problems(_question_problems(self))
        return self

    def text(self, locale: str) -> QuestionText:
        """The question in ``locale``, falling back to Simplified Chinese."""
        return self.en if locale == "en" else self.zh_Hans


class CardText(_Frozen):
    title: Text
    body: Text


class Card(_Frozen):
    id: Annotated[str, Field(pattern=r"^(civ|san|gar|food)-card-\d{2}$")]
    source: Source
    quiz_tags: tuple[Text, ...] = ()
    zh_Hans: CardText
    en: CardText

    @model_validator(mode="after")
    def _check(self) -> Card:
        _raise_problems(_card_problems(self))
        return self

    def text(self, locale: str) -> CardText:
        """The card in ``locale``, falling back to Simplified Chinese."""
        return self.en if locale == "en" else self.zh_Hans


class QuestionBank(_Frozen):
    tracks: dict[Track, tuple[Question, ...]]

    def questions(self, track: Track) -> tuple[Question, ...]:
        """Questions of one track (empty if the track has no file yet)."""
        return self.tracks.get(track, ())

    def get(self, question_id: str) -> Question | None:
        """The question with this id, if any."""
        return next((q for qs in self.tracks.values() for q in qs if q.id == question_id), None)


class BankError(ValueError):
    """Content that does not validate; ``errors`` lists one readable problem per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _raise_problems(problems: Iterator[str]) -> None:
    found = list(problems)
    if found:
        raise ValueError("\n".join(found))


def _length_problem(where: str, text: str, limit: int) -> Iterator[str]:
    if tg_len(text) > limit:
        yield f"{where} is too long: {tg_len(text)} characters, limit {limit}"


def _question_problems(q: Question) -> Iterator[str]:
    count = len(q.zh_Hans.options)
    for locale in LOCALES:
        text: QuestionText = getattr(q, locale)
        options = len(text.options)
        if not OPTIONS_MIN <= options <= OPTIONS_MAX:
            yield f"{locale}.options: {options} option(s); a question needs {OPTIONS_MIN}-{OPTIONS_MAX}"
        if options != count:
            yield f"{locale}.options: {options} option(s) but zh_Hans has {count}; locales must match"
        if len(set(text.options)) != options:
            yield f"{locale}.options: the same option appears twice"
        yield from _length_problem(f"{locale}.question", text.question, QUESTION_MAX)
        for i, option in enumerate(text.options):
            yield from _length_problem(f"{locale}.options[{i}]", option, OPTION_MAX)
        yield from _length_problem(f"{locale}.explanation", text.explanation, EXPLANATION_MAX)
        if text.explanation.count("\n") > EXPLANATION_LINE_FEEDS:
            yield f"{locale}.explanation: more than {EXPLANATION_LINE_FEEDS} line breaks"
        markers = MULTI_MARKERS[locale]
        if len(q.correct) > 1 and not any(m in text.question.lower() for m in markers):
            yield f"{locale}.question: several correct answers but the text does not say '{markers[0]}'"
    yield from _correct_problems(q.correct, count)


def _correct_problems(correct: tuple[int, ...], count: int) -> Iterator[str]:
    if not correct:
        yield "correct: empty; give at least one option index"
    for index in correct:
        if not 0 <= index < count:
            yield f"correct: answer index {index} is out of range (options are 0-{count - 1})"
    if len(set(correct)) != len(correct):
        yield "correct: an index is repeated"
    if count >= OPTIONS_MIN and len(set(correct)) >= count:
        yield "correct: every option is marked correct"


def _card_problems(card: Card) -> Iterator[str]:
    for locale in LOCALES:
        text: CardText = getattr(card, locale)
        yield from _length_problem(f"{locale}.title", text.title, CARD_TITLE_MAX)
        yield from _length_problem(f"{locale}.body", text.body, CARD_BODY_MAX)
        if _HTML_TAG.search(text.body):
            yield f"{locale}.body: looks like HTML markup; cards are plain text and get escaped"


# --- reading files ---------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # resolve "<<" merge keys first, as SafeLoader does
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key(s) {', '.join(duplicates)}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects


@dataclass
class _Kind:
    folder: str
    key: str
    model: type[Question] | type[Card]


QUESTIONS = _Kind("questions", "questions", Question)
CARDS = _Kind("cards", "cards", Card)


@dataclass
class _Parsed:
    track: Track | None = None
    items: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _format_error(label: str, item_id: str, error: Any) -> Iterator[str]:
    loc = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        problem = f"missing locale '{loc}'" if loc in LOCALES else f"{loc}: required field is missing"
        yield f"{label}: {item_id}: {problem}"
        return
    message = str(error["msg"]).removeprefix("Value error, ")
    for line in message.splitlines():
        yield f"{label}: {item_id}: {loc + ': ' if loc else ''}{line}"


def _parse_text(text: str, label: str, kind: _Kind, expected: str | None) -> _Parsed:
    parsed = _Parsed()
    try:
        data = _yaml_load(text)
    except yaml.YAMLError as exc:
        parsed.errors.append(f"{label}: not valid YAML: {exc}")
        return parsed
    if not isinstance(data, dict) or set(data) != {"track", kind.key}:
        parsed.errors.append(f"{label}: the file must be a mapping with exactly 'track' and '{kind.key}'")
        return parsed
    track, items = data["track"], data[kind.key]
    if track not in TRACKS:
        parsed.errors.append(f"{label}: track '{track}' is not one of {', '.join(TRACKS)}")
    elif expected is not None and track != expected:
        parsed.errors.append(f"{label}: track mismatch: the file says '{track}' but its name says '{expected}'")
    else:
        parsed.track = track
    if not isinstance(items, list):
        parsed.errors.append(f"{label}: '{kind.key}' must be a list")
        return parsed
    for position, raw in enumerate(items, start=1):
        _parse_item(raw, position, label, kind, parsed)
    return parsed


def _parse_item(raw: Any, position: int, label: str, kind: _Kind, parsed: _Parsed) -> None:
    raw_id = raw.get("id") if isinstance(raw, dict) else None
    item_id = raw_id if isinstance(raw_id, str) else f"item #{position}"
    try:
        item = kind.model.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            parsed.errors.extend(_format_error(label, item_id, error))
        return
    prefix = item.id.split("-")[0]
    if parsed.track is not None and prefix != PREFIXES[parsed.track]:
        parsed.errors.append(
            f"{label}: {item.id}: id prefix '{prefix}' does not match track '{parsed.track}' "
            f"(expected '{PREFIXES[parsed.track]}-')"
        )
        return
    parsed.items.append(item)


def _parse_file(path: Path, label: str, kind: _Kind, expected: str | None) -> _Parsed:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _Parsed(errors=[f"{label}: cannot read: {exc}"])
    return _parse_text(text, label, kind, expected)


@dataclass
class _Scan:
    items: dict[Track, list[Any]]
    files: dict[Track, bool]
    errors: list[str]


def _scan(root: Path, kind: _Kind, tracks: Iterable[Track] = TRACKS) -> _Scan:
    """Parse every ``<kind>/<track>.yaml`` present; report stray files and ids used twice."""
    scan = _Scan(items={}, files={}, errors=[])
    folder = root / kind.folder
    wanted = tuple(tracks)
    strays = sorted(p for p in folder.glob("*.y*ml") if p.suffix == ".yml" or p.stem not in TRACKS)
    scan.errors.extend(f"{kind.folder}/{p.name}: unexpected file; tracks are {', '.join(TRACKS)}" for p in strays)
    for track in wanted:
        path = folder / f"{track}.yaml"
        scan.files[track] = path.is_file()
        parsed = _parse_file(path, f"{kind.folder}/{path.name}", kind, track) if path.is_file() else _Parsed()
        scan.items[track] = parsed.items
        scan.errors.extend(parsed.errors)
    labelled = [(f"{kind.folder}/{t}.yaml", item) for t in wanted for item in scan.items[t]]
    scan.errors.extend(_duplicate_ids(labelled))
    return scan


def _duplicate_ids(labelled: Iterable[tuple[str, Any]]) -> Iterator[str]:
    seen: dict[str, str] = {}
    for label, item in labelled:
        if item.id in seen:
            yield f"{label}: {item.id}: duplicate id (already used in {seen[item.id]})"
        else:
            seen[item.id] = label


# --- public API ------------------------------------------------------------------------------------------


def load_bank(root: Path) -> QuestionBank:
    """Load ``root/questions/*.yaml``; raise BankError if anything is invalid (minimums are not enforced)."""
    scan = _scan(root, QUESTIONS)
    if scan.errors:
        raise BankError(scan.errors)
    return QuestionBank(tracks={t: tuple(qs) for t, qs in scan.items.items() if scan.files[t]})


def load_cards(root: Path) -> dict[Track, list[Card]]:
    """Load ``root/cards/*.yaml``; raise BankError if anything is invalid (minimums are not enforced)."""
    scan = _scan(root, CARDS)
    if scan.errors:
        raise BankError(scan.errors)
    return {t: cards for t, cards in scan.items.items() if scan.files[t]}


def check_bank(
    root: Path,
    *,
    min_questions: int = MIN_QUESTIONS,
    min_cards: int = MIN_CARDS,
    tracks: Iterable[Track] = TRACKS,
) -> list[str]:
    """Every problem in the questions and cards of ``tracks``, one readable line each (empty if all good)."""
    wanted = tuple(tracks)
    questions, cards = _scan(root, QUESTIONS, wanted), _scan(root, CARDS, wanted)
    errors = questions.errors + cards.errors
    for track in wanted:
        errors.extend(_too_few(f"questions/{track}.yaml", "questions", questions, track, min_questions))
        errors.extend(_too_few(f"cards/{track}.yaml", "cards", cards, track, min_cards))
        errors.extend(_unknown_tags(track, questions.items[track], cards.items[track]))
    return errors


def _too_few(label: str, noun: str, scan: _Scan, track: Track, minimum: int) -> Iterator[str]:
    count = len(scan.items[track])
    if count < minimum:
        missing = "" if scan.files[track] else " (file missing)"
        yield f"{label}: {count} valid {noun}, need at least {minimum}{missing}"


def _unknown_tags(track: Track, questions: list[Question], cards: list[Card]) -> Iterator[str]:
    tags = {tag for q in questions for tag in q.tags}
    for card in cards:
        for tag in card.quiz_tags:
            if tag not in tags:
                yield f"cards/{track}.yaml: {card.id}: quiz tag '{tag}' matches no question of this track"


def import_questions(src: Path, root: Path) -> int:
    """Validate an organiser's question file and append it to its track file; return how many were added.

    Nothing is written unless the whole file is valid and none of its ids exists yet.
    """
    parsed = _parse_file(src, src.name, QUESTIONS, expected=None)
    errors = list(parsed.errors)
    if not errors and not parsed.items:
        errors.append(f"{src.name}: no questions to import")
    existing = _scan(root, QUESTIONS)
    errors.extend(existing.errors)
    labelled = [(f"questions/{t}.yaml", q) for t, qs in existing.items.items() for q in qs]
    errors.extend(_duplicate_ids([*labelled, *((src.name, q) for q in parsed.items)]))
    if errors or parsed.track is None:
        raise BankError(errors)
    target = root / QUESTIONS.folder / f"{parsed.track}.yaml"
    text = _merged_text(target, parsed.track, parsed.items)
    check = _parse_text(text, target.name, QUESTIONS, parsed.track)
    if check.errors:  # never expected; guards the append shortcut in _merged_text
        raise BankError(check.errors)
    _atomic_write(target, text)
    return len(parsed.items)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, default_flow_style=None, width=100)


def _merged_text(target: Path, track: Track, new: list[Question]) -> str:
    """The track file with ``new`` appended, keeping the existing text (and its comments) when possible."""
    items = [q.model_dump(mode="json") for q in new]
    if not target.exists():
        return _dump({"track": track, "questions": items})
    old = target.read_text(encoding="utf-8")
    old_data = _yaml_load(old)
    expected = {**old_data, "questions": [*old_data["questions"], *items]}
    found = re.search(r"^questions:[ \t]*\n(?:[ \t]*(?:#.*)?\n)*( *)- ", old, flags=re.MULTILINE)
    indent = found.group(1) if found else "  "
    block = "".join(indent + line if line.strip() else line for line in _dump(items).splitlines(keepends=True))
    candidate = old.rstrip("\n") + "\n\n" + block
    try:
        if _yaml_load(candidate) == expected:
            return candidate
    except yaml.YAMLError:
        pass
    return _dump(expected)


def _atomic_write(target: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
