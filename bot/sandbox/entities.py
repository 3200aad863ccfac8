"""Message entities: Telegram's HTML parse mode, UTF-16 offsets and bot_command detection.

The HTML parser lives in the domain (``bot.domain.telegram_html``), where the bot checks its own HTML before sending;
it is re-exported here for the emulator.
"""

from __future__ import annotations

import re
from typing import Any

from bot.domain.telegram_html import EntityParseError, parse_html, utf16_len

__all__ = ["EntityParseError", "command_entities", "parse_html", "utf16_len"]

_COMMAND_RE = re.compile(r"(?<![\w/])/[a-zA-Z0-9_]{1,32}(?:@[a-zA-Z0-9_]{3,32})?(?![\w/])")


def command_entities(text: str) -> list[dict[str, Any]]:
    """Return bot_command entities for every /command in text, as Telegram clients mark them."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in _COMMAND_RE.finditer(text)
    ]
