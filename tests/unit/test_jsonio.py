"""JSON on the hot path (bot/jsonio.py): the same text the standard library writes for what Sicheng stores and
sends, and the standard library's answer where orjson would refuse."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bot.jsonio import dumps, dumps_text, loads


@dataclass
class Point:
    x: int
    y: int


def test_dumps_writes_compact_utf8_like_the_standard_library() -> None:
    value = {"text": "你好，<b>王阿姨</b> 🌳\u2028", "ids": [1, -2, 2**63 - 1], "ok": True, "none": None, "x": 1.5}
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert dumps(value) == expected.encode()
    assert dumps_text(value) == expected


def test_dumps_writes_integer_keys_as_strings() -> None:
    assert loads(dumps({1: "一", "2": "二"})) == {"1": "一", "2": "二"}


def test_dumps_falls_back_for_integers_beyond_64_bits() -> None:
    value = {"big": 2**70, "text": "大"}
    assert loads(dumps(value)) == value
    assert loads(dumps_text(value)) == value


@pytest.mark.parametrize(
    "value", [{1, 2}, datetime(2026, 12, 7, tzinfo=UTC), Point(1, 2)], ids=["set", "datetime", "dataclass"]
)
def test_dumps_of_what_the_standard_library_refuses_raises_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        dumps({"value": value})
    with pytest.raises(TypeError):
        dumps_text({"value": value})


def test_loads_of_malformed_json_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"(?i)unexpected end|eof"):
        loads(b'{"update_id": 1,')
