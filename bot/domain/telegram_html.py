"""Telegram's HTML parse mode: parsing, pre-send checks and the way back from entities to HTML.

The parser follows the rules Telegram applies (only known tags, strict nesting, four named escapes, a bare ``&``
kept as text). The sandbox emulator uses it to answer like the Bot API; the bot uses ``check_html`` to refuse what
Telegram would refuse before sending. Lengths and offsets are in UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any

TEXT_LIMIT = 4096  # sendMessage text, counted after entity parsing
CAPTION_LIMIT = 1024  # media captions, counted after entity parsing

# Tag -> entity type, as listed under "HTML style" in the Bot API docs.
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_SUPPORTED = {*_SIMPLE_TAGS, "a", "span", "tg-emoji"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{1,8}));")
_TAG_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR_RE = re.compile(r"\s*([a-zA-Z][a-zA-Z0-9_-]*)")
_UNQUOTED_RE = re.compile(r"[^\s>]*")


class EntityParseError(ValueError):
    """HTML that Telegram would refuse with "can't parse entities".

    ``str(error)`` is Telegram's own wording (positions in UTF-8 bytes). ``code`` is one of "unsupported_tag",
    "unclosed_tag", "unmatched_end_tag", "bad_attribute"; ``tag`` names the tag concerned ("" for a bare ``<``),
    ``index`` is the 0-based character index of its ``<`` in the source and ``detail`` says it in characters.
    """

    def __init__(self, message: str, *, code: str, tag: str = "", index: int = 0, detail: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.tag = tag
        self.index = index
        self.detail = detail or message


def utf16_len(text: str) -> int:
    """Length of text in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    tag: str
    start: int
    index: int
    attrs: dict[str, str] = field(default_factory=dict)
    language: str | None = None


class _HtmlParser:
    """A small port of the rules Telegram applies: only known tags, strict nesting, four named escapes."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.out: list[str] = []
        self.pos16 = 0
        self.stack: list[_Open] = []
        self.entities: list[dict[str, Any]] = []

    def byte_offset(self, index: int) -> int:
        return len(self.src[:index].encode("utf-8"))

    def emit(self, chars: str) -> None:
        self.out.append(chars)
        self.pos16 += utf16_len(chars)

    def fail(self, code: str, tag: str, index: int, message: str, detail: str) -> EntityParseError:
        """An error in Telegram's words (``message``, byte offsets) and in ours (``detail``, 1-based characters)."""
        return EntityParseError(message, code=code, tag=tag, index=index, detail=detail)

    def parse(self) -> tuple[str, list[dict[str, Any]]]:
        i, n = 0, len(self.src)
        while i < n:
            ch = self.src[i]
            if ch == "&":
                i = self.entity(i)
            elif ch == "<" and self.src.startswith("</", i):
                i = self.end_tag(i)
            elif ch == "<":
                i = self.start_tag(i)
            else:
                self.emit(ch)
                i += 1
        if self.stack:
            last = self.stack[-1]
            raise self.fail(
                "unclosed_tag",
                last.tag,
                last.index,
                f'Can\'t find end tag corresponding to start tag "{last.tag}"',
                f"<{last.tag}> {_at(last.index)} is never closed",
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def entity(self, i: int) -> int:
        m = _ENTITY_RE.match(self.src, i)
        decoded = _decode_entity(m) if m else None
        if m is None or decoded is None:
            # Telegram keeps an unknown "&..." sequence as literal text.
            self.emit("&")
            return i + 1
        self.emit(decoded)
        return m.end()

    def start_tag(self, i: int) -> int:
        m = _TAG_NAME_RE.match(self.src, i + 1)
        if m is None:
            raise self.fail(
                "unsupported_tag",
                "",
                i,
                f'Unsupported start tag "" at byte offset {self.byte_offset(i)}',
                f"'<' {_at(i)} starts no tag; write &lt; for a literal '<'",
            )
        name = m.group().lower()
        if name not in _SUPPORTED:
            raise self.fail(
                "unsupported_tag",
                name,
                i,
                f'Unsupported start tag "{name}" at byte offset {self.byte_offset(i)}',
                f"<{name}> {_at(i)} is not a tag Telegram supports",
            )
        attrs, j = self.attributes(m.end(), name, i)
        opened = _Open(tag=name, start=self.pos16, index=i, attrs=attrs)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise self.fail(
                "bad_attribute",
                name,
                i,
                f'Tag "span" must have class "tg-spoiler" at byte offset {self.byte_offset(i)}',
                f'<span> {_at(i)} must have class="tg-spoiler"',
            )
        if name == "code" and self.stack and self.stack[-1].tag == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-"):
                self.stack[-1].language = language.removeprefix("language-")
        self.stack.append(opened)
        return j

    def attributes(self, j: int, tag: str, index: int) -> tuple[dict[str, str], int]:
        attrs: dict[str, str] = {}
        while True:
            while j < len(self.src) and self.src[j].isspace():
                j += 1
            if j >= len(self.src):
                raise self.unclosed_start_tag(tag, index)
            if self.src[j] == ">":
                return attrs, j + 1
            m = _ATTR_RE.match(self.src, j)
            if m is None:
                raise self.fail(
                    "bad_attribute",
                    tag,
                    index,
                    f'Empty attribute name in the tag "{tag}" at byte offset {self.byte_offset(index)}',
                    f"<{tag}> {_at(index)} has an attribute without a name",
                )
            key, j = m.group(1).lower(), m.end()
            if j < len(self.src) and self.src[j] != "=":
                attrs[key] = ""  # boolean attribute such as <blockquote expandable>
                continue
            value, j = self.attribute_value(j + 1, tag, index)
            attrs[key] = value

    def attribute_value(self, j: int, tag: str, index: int) -> tuple[str, int]:
        if j >= len(self.src):
            raise self.unclosed_start_tag(tag, index)
        quote = self.src[j]
        if quote in "\"'":
            end = self.src.find(quote, j + 1)
            if end < 0:
                raise self.fail(
                    "bad_attribute",
                    tag,
                    index,
                    f'Unclosed end of attribute value in the tag "{tag}" at byte offset {self.byte_offset(index)}',
                    f"<{tag}> {_at(index)} has an attribute value whose quote is never closed",
                )
            raw, j = self.src[j + 1 : end], end + 1
        else:
            m = _UNQUOTED_RE.match(self.src, j)
            assert m is not None
            raw, j = m.group(), m.end()
        return _unescape(raw), j

    def unclosed_start_tag(self, tag: str, index: int) -> EntityParseError:
        return self.fail(
            "unclosed_tag",
            tag,
            index,
            f"Unclosed start tag at byte offset {self.byte_offset(index)}",
            f"<{tag}> {_at(index)} has no '>'",
        )

    def end_tag(self, i: int) -> int:
        end = self.src.find(">", i)
        if end < 0:
            m = _TAG_NAME_RE.match(self.src, i + 2)
            name = m.group().lower() if m else ""
            raise self.fail(
                "unclosed_tag",
                name,
                i,
                f"Unclosed end tag at byte offset {self.byte_offset(i)}",
                f"</{name}> {_at(i)} has no '>'",
            )
        name = self.src[i + 2 : end].strip().lower()
        if not self.stack:
            raise self.fail(
                "unmatched_end_tag",
                name,
                i,
                f"Unexpected end tag at byte offset {self.byte_offset(i)}",
                f"</{name}> {_at(i)} closes a tag that is not open",
            )
        opened = self.stack[-1]
        if name != opened.tag:
            offset = self.byte_offset(i)
            raise self.fail(
                "unmatched_end_tag",
                name,
                i,
                f'Unmatched end tag at byte offset {offset}, expected "</{opened.tag}>", found "</{name}>"',
                f"</{name}> {_at(i)} does not match the open <{opened.tag}> at character {opened.index + 1}",
            )
        self.stack.pop()
        self.close(opened)
        return end + 1

    def close(self, opened: _Open) -> None:
        length = self.pos16 - opened.start
        entity = _entity_for(opened, self.stack)
        if length > 0 and entity is not None:
            self.entities.append({**entity, "offset": opened.start, "length": length})


def _at(index: int) -> str:
    return f"at character {index + 1}"


def _entity_for(opened: _Open, parents: list[_Open]) -> dict[str, Any] | None:
    """Map a closed tag to its entity fields (without offset/length), or None for no entity."""
    tag, attrs = opened.tag, opened.attrs
    if tag == "a":
        href = attrs.get("href", "")
        return {"type": "text_link", "url": href} if href else None
    if tag == "tg-emoji":
        emoji_id = attrs.get("emoji-id", "")
        return {"type": "custom_emoji", "custom_emoji_id": emoji_id} if emoji_id else None
    if tag == "span":
        return {"type": "spoiler"}
    if tag == "code" and parents and parents[-1].tag == "pre" and parents[-1].language is not None:
        return None  # folded into the enclosing pre's language, as Telegram does
    if tag == "pre":
        return {"type": "pre", "language": opened.language} if opened.language else {"type": "pre"}
    if tag == "blockquote" and "expandable" in attrs:
        return {"type": "expandable_blockquote"}
    return {"type": _SIMPLE_TAGS[tag]}


def _decode_entity(m: re.Match[str]) -> str | None:
    dec, hexa, name = m.groups()
    if name is not None:
        return _NAMED_ENTITIES.get(name)
    code = int(dec) if dec is not None else int(hexa, 16)
    if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def _unescape(raw: str) -> str:
    return _ENTITY_RE.sub(lambda m: _decode_entity(m) or m.group(), raw)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Return (plain text, entities) for Telegram HTML, or raise EntityParseError."""
    return _HtmlParser(source).parse()


# --- checking before sending -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HtmlProblem:
    """Why Telegram would refuse a piece of HTML.

    ``code`` is one of "unsupported_tag", "unclosed_tag", "unmatched_end_tag", "bad_attribute", "empty",
    "too_long". ``detail`` says it in English for logs. ``tag`` and ``position`` (1-based character index of the
    tag's ``<`` in the source; 0 when not about one place) let a localised message say the same.
    """

    code: str
    detail: str
    tag: str = ""
    position: int = 0


def plain_length(source: str) -> int:
    """Length of the text Telegram keeps from this HTML, in UTF-16 code units; raises EntityParseError."""
    text, _ = parse_html(source)
    return utf16_len(text)


def check_html(source: str, *, caption: bool = False) -> HtmlProblem | None:
    """None when Telegram would accept ``source`` in HTML parse mode as a message text (or a caption).

    As the Bot API does: lengths are counted after parsing, in UTF-16 code units; a text must keep something besides
    whitespace, while an empty caption just means no caption.
    """
    try:
        text, _ = parse_html(source)
    except EntityParseError as error:
        return HtmlProblem(error.code, error.detail, error.tag, error.index + 1)
    if not caption and not text.strip():
        return HtmlProblem("empty", "nothing but whitespace is left after removing the tags")
    limit = CAPTION_LIMIT if caption else TEXT_LIMIT
    length = utf16_len(text)
    if length > limit:
        return HtmlProblem("too_long", f"{length} characters after removing the tags; the limit is {limit}")
    return None


# --- from a received message back to HTML ------------------------------------------------------------------------


def escape(text: str) -> str:
    """Text as HTML-mode source: ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    return escape(value).replace('"', "&quot;")


def _tags(entity: dict[str, Any]) -> tuple[str, str] | None:
    """(opening, closing) markup for a formatting entity; None for entities that need none (mentions, urls, ...)."""
    kind = entity.get("type")
    if kind == "pre" and entity.get("language"):
        return f'<pre><code class="language-{_attribute(str(entity["language"]))}">', "</code></pre>"
    if kind == "text_link" and entity.get("url"):
        return f'<a href="{_attribute(str(entity["url"]))}">', "</a>"
    if kind == "text_mention" and isinstance(entity.get("user"), dict) and "id" in entity["user"]:
        return f'<a href="tg://user?id={int(entity["user"]["id"])}">', "</a>"
    if kind == "custom_emoji" and entity.get("custom_emoji_id"):
        return f'<tg-emoji emoji-id="{_attribute(str(entity["custom_emoji_id"]))}">', "</tg-emoji>"
    if kind == "expandable_blockquote":
        return "<blockquote expandable>", "</blockquote>"
    tag = _MARKUP.get(str(kind))
    return (f"<{tag}>", f"</{tag}>") if tag else None


_MARKUP = {
    "bold": "b",
    "italic": "i",
    "underline": "u",
    "strikethrough": "s",
    "spoiler": "tg-spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}


@dataclass
class _Span:
    start: int  # indices into the Python string
    end: int
    order: int
    opening: str
    closing: str


def entities_to_html(text: str, entities: list[dict[str, Any]]) -> str:
    """HTML source that re-creates ``text`` with its formatting ``entities`` (offsets in UTF-16 code units).

    Entities that need no markup (bot_command, mention, hashtag, url, ...) are left to Telegram to detect again.
    Formatting entities that overlap without nesting are split at the crossing, as Telegram itself does.
    """
    # boundaries[k] = UTF-16 offset of text[k]; offsets inside a surrogate pair snap outwards.
    boundaries = [0]
    for ch in text:
        boundaries.append(boundaries[-1] + (2 if ord(ch) > 0xFFFF else 1))
    spans: list[_Span] = []
    for order, entity in enumerate(entities):
        tags = _tags(entity)
        offset, length = entity.get("offset"), entity.get("length")
        if tags is None or not isinstance(offset, int) or not isinstance(length, int):
            continue
        start = bisect_right(boundaries, max(offset, 0)) - 1
        end = min(bisect_left(boundaries, offset + length), len(text))
        if start < end:
            spans.append(_Span(start, end, order, *tags))
    if not spans:
        return escape(text)
    opening_at: dict[int, list[_Span]] = {}
    for span in spans:
        opening_at.setdefault(span.start, []).append(span)
    out: list[str] = []
    stack: list[_Span] = []
    for index in range(len(text) + 1):
        if any(span.end == index for span in stack):
            # Close down to the deepest span ending here; spans opened inside it that go on are reopened.
            depth = min(k for k, span in enumerate(stack) if span.end == index)
            popped = stack[depth:]
            del stack[depth:]
            out.extend(span.closing for span in reversed(popped))
            reopened = [span for span in popped if span.end != index]
        else:
            reopened = []
        starting = reopened + opening_at.get(index, [])
        for span in sorted(starting, key=lambda s: -s.end):  # stable: reopened spans, then in entity order
            out.append(span.opening)
            stack.append(span)
        if index < len(text):
            out.append(escape(text[index]))
    return "".join(out)
