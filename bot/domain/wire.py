"""Template contexts as JSON and back: what a notice says is stored in the outbox and rendered later.

JSON has no dates, tuples or objects, so values are tagged: a datetime keeps its time zone (a deadline shown in the
community's local time stays so), a dataclass becomes a mapping (templates read ``board.rows`` the same way from
a mapping), a tuple a list.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

_TAG = "__t"


def to_json(value: Any) -> Any:
    """A JSON-ready copy of ``value``; raises TypeError on anything it cannot keep faithfully."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Enum):
        return to_json(value.value)
    if isinstance(value, datetime):
        return {_TAG: "dt", "v": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "d", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {_TAG: "dec", "v": str(value)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot store {type(value).__name__} in a notice context")


def from_json(value: Any) -> Any:
    """The inverse of :func:`to_json` (dataclasses come back as mappings)."""
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag == "dt":
            return datetime.fromisoformat(value["v"])
        if tag == "d":
            return date.fromisoformat(value["v"])
        if tag == "dec":
            return Decimal(value["v"])
        return {k: from_json(v) for k, v in value.items()}
    return value
