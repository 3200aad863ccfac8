"""The glossary (``glossary.yaml``): one wording per key term and locale, and the variants no content text may use.

:func:`find_violations` reads every text a resident or staff member sees — templates and labels, questions, cards,
tracks, report categories, rewards and points rules — and reports each wrong variant with its file and line. A
variant is looked for only in text of its own locale: a template's locale is its folder, a YAML text's locale is the
``zh_Hans``/``en`` key above it (a text under no such key counts as Chinese when it holds Chinese characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from jinja2 import Environment, TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, model_validator

GLOSSARY = Path(__file__).parent / "glossary.yaml"
Locale = Literal["zh_Hans", "en"]
LOCALES: dict[str, Locale] = {"zh_Hans": "zh_Hans", "en": "en"}  # folder or YAML key → locale
# Content texts under a content root, besides the templates (which live under their own folder).
CONTENT_FILES = (
    "questions/*.yaml", "cards/*.yaml", "tracks.yaml", "reports/*.yaml", "rewards/*.yaml", "points/*.yaml",
    "surveys/*.yaml",
)  # fmt: skip
LABELS = "labels"
_CJK = re.compile(r"[\u3400-\u9fff]")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_JINJA = Environment()
_STR = "tag:yaml.org,2002:str"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same nodes and marks, faster


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Term(_Frozen):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    note: str = ""
    preferred: dict[Locale, str]
    wrong: dict[Locale, tuple[re.Pattern[str], ...]]
    files: tuple[str, ...] = ()  # glob patterns of the report's paths; empty: every file
    allow: tuple[re.Pattern[str], ...] = ()  # legitimate uses: a variant inside a match of one is fine

    @model_validator(mode="after")
    def _preferred_for_each_wrong(self) -> Term:
        missing = sorted(set(self.wrong) - set(self.preferred))
        if missing:
            raise ValueError(f"{self.key}: wrong variants for {missing} but no preferred form there")
        return self

    def applies_to(self, file: str) -> bool:
        return not self.files or any(fnmatchcase(file, pattern) for pattern in self.files)

    def allowed(self, text: str, start: int, end: int) -> bool:
        """Whether text[start:end] lies inside a legitimate use."""
        return any(m.start() <= start and end <= m.end() for p in self.allow for m in p.finditer(text))


class Glossary(_Frozen):
    terms: tuple[Term, ...]


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    wrote: str
    preferred: str
    term: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: wrote {self.wrote!r}, glossary says {self.preferred!r}"


@dataclass(frozen=True)
class Text:
    """One text in one locale: a whole template, or one YAML string (then ``lines`` are the source lines it spans,
    read to find the line of a match)."""

    file: str
    locale: Locale
    value: str
    line: int
    lines: tuple[str, ...] | None = None

    def line_of(self, match: re.Match[str]) -> int:
        """The source line where ``match`` (found in ``value``) starts."""
        if self.lines is None:
            return self.line + self.value.count("\n", 0, match.start())
        # A folded YAML string joins its lines with spaces: look for the words, any whitespace between them.
        source = "\n".join(self.lines)
        words = match.group().split()
        found = re.search(r"\s+".join(map(re.escape, words)), source) if words else None
        return self.line + (source.count("\n", 0, found.start()) if found else 0)


def load_glossary(path: Path = GLOSSARY) -> Glossary:
    """Load and validate the glossary (every pattern must compile)."""
    return Glossary.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def find_violations(glossary: Glossary, root: Path, templates: Path) -> list[Violation]:
    """Every wrong variant in the content under ``root`` and the templates under ``templates``, by file and line."""
    found: list[Violation] = []
    for text in content_texts(root, templates):
        for term in glossary.terms:
            if not term.applies_to(text.file):
                continue
            for pattern in term.wrong.get(text.locale, ()):
                for match in pattern.finditer(text.value):
                    if not term.allowed(text.value, *match.span()):
                        wrote, preferred = " ".join(match.group().split()), term.preferred[text.locale]
                        found.append(Violation(text.file, text.line_of(match), wrote, preferred, term.key))
    return sorted(set(found), key=lambda v: (v.file, v.line, v.term, v.wrote))


# --- the texts ---------------------------------------------------------------------------------------------------


def content_texts(root: Path, templates: Path) -> Iterator[Text]:
    """Every text of the templates (per locale folder) and of the content files under ``root``."""
    for locale in LOCALES.values():
        folder = templates / locale
        for path in sorted(folder.rglob("*.j2")):
            source = _read(path)
            if source is not None:
                yield Text(f"templates/{path.relative_to(templates).as_posix()}", locale, template_text(source), 1)
        for path in sorted((folder / LABELS).glob("*.yaml")):
            yield from _yaml_texts(path, f"templates/{path.relative_to(templates).as_posix()}", locale, template=True)
    for pattern in CONTENT_FILES:
        for path in sorted(root.glob(pattern)):
            yield from _yaml_texts(path, path.relative_to(root).as_posix(), None, template=False)


def template_text(source: str) -> str:
    """What a template says, line for line: its text without HTML tags, each ``{{ expression }}`` as " N " and the
    string literals of expressions and statements kept (they are often words a resident reads), dictionary keys
    dropped."""
    try:
        tokens = [(line, kind, value) for line, kind, value in _JINJA.lex(source) if kind != "whitespace"]
    except TemplateSyntaxError:
        return source  # the template check reports it
    out: list[str] = []
    current = 1
    for i, (line, kind, value) in enumerate(tokens):
        if line > current:
            out.append("\n" * (line - current))
            current = line
        if kind == "data":
            out.append(_HTML_TAG.sub(lambda tag: "\n" * tag.group().count("\n"), value))
            current += value.count("\n")
        elif kind == "variable_begin":
            out.append(" N ")
        elif kind == "string" and not (i + 1 < len(tokens) and tokens[i + 1][2] == ":"):
            out.append(f" {value[1:-1]} ")
            current += value.count("\n")
    return "".join(out)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the file's own check reports it


def _yaml_texts(path: Path, file: str, locale: Locale | None, *, template: bool) -> Iterator[Text]:
    source = _read(path)
    if source is None:
        return
    try:
        node = yaml.compose(source, Loader=_LOADER)
    except yaml.YAMLError:
        return  # the file's own check reports it
    lines = source.splitlines()
    for scalar, scalar_locale in _scalars(node, locale):
        value = template_text(scalar.value) if template else scalar.value
        first, last = scalar.start_mark.line, scalar.end_mark.line
        span = tuple(template_text(raw) if template else raw for raw in lines[first : last + 1])
        yield Text(file, scalar_locale or _guess_locale(value), value, first + 1, span)


def _scalars(node: yaml.Node | None, locale: Locale | None) -> Iterator[tuple[yaml.ScalarNode, Locale | None]]:
    """String values (never keys) with the locale of the nearest ``zh_Hans``/``en`` key above them."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else ""
            yield from _scalars(value, LOCALES.get(name, locale))
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item, locale)
    elif isinstance(node, yaml.ScalarNode) and node.tag == _STR:
        yield node, locale


def _guess_locale(text: str) -> Locale:
    return "zh_Hans" if _CJK.search(text) else "en"
