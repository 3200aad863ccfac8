"""What a deletion (/deleteme) takes out of the records that stay: the person's Telegram id, name and own words.

Records that must stay for the community's ledgers (reports in the 问题台账, points entries, audit rows) are kept, but
everything in them that points to the person is replaced: the Telegram id by a stable pseudonym (``deleted:<resident
id>``, so that an auditor still sees that several rows were one person), the name and the texts they wrote by
:data:`REDACTED`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# What the ledger shows instead of a deleted person's words (the ledger is kept in Chinese).
REDACTED = "（已应居民要求删除）"
# Shorter names and texts are replaced only where a value is exactly them: "李" must not vanish from every word.
MIN_SUBSTRING = 2


def pseudonym(resident_id: int) -> str:
    """The stable stand-in for a deleted person's Telegram id in the records that stay."""
    return f"deleted:{resident_id}"


@dataclass(frozen=True)
class Erasure:
    """One person's deletion: what to look for (id, names, texts) and what to put instead."""

    resident_id: int
    telegram_id: int
    names: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    _id_pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The id as a whole number: 1001 inside "R-2026-001001" or "11001" is somebody else's.
        object.__setattr__(self, "_id_pattern", re.compile(rf"(?<![0-9]){self.telegram_id}(?![0-9])"))

    @property
    def pseudonym(self) -> str:
        return pseudonym(self.resident_id)

    @property
    def needles(self) -> tuple[str, ...]:
        """Everything searched for, as text."""
        return (str(self.telegram_id), *self.names, *self.texts)

    def text(self, value: str) -> str:
        """``value`` with the id, the names and the texts replaced."""
        out = self._id_pattern.sub(self.pseudonym, value)
        for words in sorted((*self.texts, *self.names), key=len, reverse=True):  # a text may contain the name
            if not words:
                continue
            if out == words:
                return REDACTED
            if len(words) >= MIN_SUBSTRING:
                out = out.replace(words, REDACTED)
        return out

    def scrub(self, value: Any) -> Any:
        """A JSON-like value with every mention replaced; its shape (keys, list lengths, types) is kept, except that
        the Telegram id as a number becomes the pseudonym (text)."""
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return value
        if isinstance(value, int):
            return self.pseudonym if value == self.telegram_id else value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        return value

    def mentions(self, value: Any) -> bool:
        """Whether ``value`` holds anything :meth:`scrub` would replace."""
        return bool(self.scrub(value) != value)
