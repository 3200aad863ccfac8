"""JSON in and out on the hot path: orjson where it can, the standard library where orjson refuses.

Every update is JSON several times on its way through (Telegram's answer to getUpdates, the inbox row written and
read back, the outbox rows, each Bot API call's body and answer). For a tap on a menu button (an update of 1.2 KB, a
reply of 0.4 KB) orjson writes the update in 0.9 µs instead of the standard library's 16 µs and reads it in 3.6 µs
instead of 8.3 µs: about 40 µs of CPU per tap in all, ~1.5% of what the aiogram channel spends on one (measured
with timeit on this project's payloads; docs/benchmarks.md). orjson writes UTF-8 (no ``\\uXXXX`` escapes, as
``ensure_ascii=False``) and compact separators. Where it refuses a value the standard library would take — an
integer beyond 64 bits, say — the standard library writes it; a value neither can write raises ``TypeError`` as
``json.dumps`` does. Floats that are not finite become ``null`` with orjson (the Bot API has none).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# {1: ...} as {"1": ...}, as the standard library writes it; datetimes and dataclasses refused as it refuses them
# (orjson would write them, and a value stored by mistake would come back as a string or a dict).
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON bytes."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """``value`` as compact JSON text (a database's JSON column)."""
    return dumps(value).decode()


def loads(data: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON text or bytes; malformed input raises ``ValueError`` (``orjson.JSONDecodeError`` is one)."""
    return orjson.loads(data)
