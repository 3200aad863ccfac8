"""Message entities: Telegram's HTML parse mode, UTF-16 offsets and bot_command detection.

The HTML parser lives in the domain (``bot.domain.telegram_html``), where the bot checks its own HTML before sending;
it is re-exported here for the emulator.
"""

from __future__ import annotations

import re
from typing import Any

from bot.domain.telegram_html import EntityParseError, parse_html, utf16_len

__all__ = ["EntityParseError", "command_entities", "parse_html", "utf16_len", "with_commands"]

# Telegram's rule (tdlib's find_bot_commands): not glued to a word, a slash or an angle bracket on either side, so
# "</b>" or "a/b" is no command.
_COMMAND_RE = re.compile(r"(?<![\w/<>\\])/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?(?![\w/<>\\])")
# Commands are not looked for inside these (Telegram does not nest a command in code or a link).
_OPAQUE = {"code", "pre", "text_link", "url", "email", "mention", "text_mention", "bot_command", "custom_emoji"}


def command_entities(text: str) -> list[dict[str, Any]]:
    """Return bot_command entities for every /command in text, as Telegram clients mark them."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in _COMMAND_RE.finditer(text)
    ]


def with_commands(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities plus the bot_command ones Telegram finds by itself in a sent text (outside code and links)."""
    taken = [(e["offset"], e["offset"] + e["length"]) for e in entities if e.get("type") in _OPAQUE]
    found = [
        c
        for c in command_entities(text)
        if not any(start < c["offset"] + c["length"] and c["offset"] < end for start, end in taken)
    ]
    return sorted([*entities, *found], key=lambda e: int(e["offset"])) if found else entities
