"""JSON in and out on the hot path: orjson where it can, the standard library where orjson refuses.

Every update is JSON three times on its way through (Telegram's body, the inbox row, the outbox row) and every Bot
API call twice (the request body, the answer); with the standard library that was 8–9% of the aiogram channel's CPU
per tap (py-spy during bench.handling, docs/benchmarks.md). orjson writes UTF-8 (no ``\\uXXXX`` escapes, as
``ensure_ascii=False``) and compact separators. Where it refuses a value the standard library would take — an
integer beyond 64 bits, say — the standard library writes it; a value neither can write raises ``TypeError`` as
``json.dumps`` does. Floats that are not finite become ``null`` with orjson (the Bot API has none).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # {1: ...} as {"1": ...}, as the standard library writes it


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON bytes."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """``value`` as compact JSON text (a database's JSON column)."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON text or bytes; malformed input raises ``ValueError`` (``orjson.JSONDecodeError`` is one)."""
    return orjson.loads(data)
