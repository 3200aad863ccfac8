"""Message entities: Telegram's HTML parse mode, UTF-16 offsets and bot_command detection."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
_COMMAND_RE = re.compile(r"(?<![\w/])/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?(?![\w/])")


class EntityParseError(ValueError):
    """HTML that Telegram would refuse with "can't parse entities"."""


def utf16_len(text: str) -> int:
    """Length of text in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """Return bot_command entities for every /command in text, as Telegram clients mark them."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in _COMMAND_RE.finditer(text)
    ]


@dataclass
class _Open:
    tag: str
    start: int
    byte_offset: int
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
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"')
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
        offset = self.byte_offset(i)
        m = _TAG_NAME_RE.match(self.src, i + 1)
        name = m.group().lower() if m else ""
        if name not in _SUPPORTED:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
        assert m is not None
        attrs, j = self.attributes(m.end(), name, offset)
        opened = _Open(tag=name, start=self.pos16, byte_offset=offset, attrs=attrs)
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        if name == "code" and self.stack and self.stack[-1].tag == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-"):
                self.stack[-1].language = language.removeprefix("language-")
        self.stack.append(opened)
        return j

    def attributes(self, j: int, tag: str, offset: int) -> tuple[dict[str, str], int]:
        attrs: dict[str, str] = {}
        while True:
            while j < len(self.src) and self.src[j].isspace():
                j += 1
            if j >= len(self.src):
                raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
            if self.src[j] == ">":
                return attrs, j + 1
            m = _ATTR_RE.match(self.src, j)
            if m is None:
                raise EntityParseError(f'Empty attribute name in the tag "{tag}" at byte offset {offset}')
            key, j = m.group(1).lower(), m.end()
            if j < len(self.src) and self.src[j] != "=":
                attrs[key] = ""  # boolean attribute such as <blockquote expandable>
                continue
            value, j = self.attribute_value(j + 1, tag, offset)
            attrs[key] = value

    def attribute_value(self, j: int, tag: str, offset: int) -> tuple[str, int]:
        if j >= len(self.src):
            raise EntityParseError(f"Unclosed start tag at byte offset {offset}")
        quote = self.src[j]
        if quote in "\"'":
            end = self.src.find(quote, j + 1)
            if end < 0:
                raise EntityParseError(f'Unclosed end of attribute value in the tag "{tag}" at byte offset {offset}')
            raw, j = self.src[j + 1 : end], end + 1
        else:
            m = _UNQUOTED_RE.match(self.src, j)
            assert m is not None
            raw, j = m.group(), m.end()
        return _unescape(raw), j

    def end_tag(self, i: int) -> int:
        offset = self.byte_offset(i)
        end = self.src.find(">", i)
        if end < 0:
            raise EntityParseError(f"Unclosed end tag at byte offset {offset}")
        name = self.src[i + 2 : end].strip().lower()
        if not self.stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {offset}")
        opened = self.stack[-1]
        if name != opened.tag:
            raise EntityParseError(
                f'Unmatched end tag at byte offset {offset}, expected "</{opened.tag}>", found "</{name}>"'
            )
        self.stack.pop()
        self.close(opened)
        return end + 1

    def close(self, opened: _Open) -> None:
        length = self.pos16 - opened.start
        entity = _entity_for(opened, self.stack)
        if length > 0 and entity is not None:
            self.entities.append({**entity, "offset": opened.start, "length": length})


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
