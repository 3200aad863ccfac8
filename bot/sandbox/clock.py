"""Injectable clocks: the emulator reads time only through these, so tests step time instead of sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds for limits and windows, wall seconds for message dates."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Return monotonic seconds."""
        return time.monotonic()

    def time(self) -> float:
        """Return Unix seconds."""
        return time.time()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._mono = 1000.0
        self._wall = start

    def monotonic(self) -> float:
        """Return the current fake monotonic seconds."""
        return self._mono

    def time(self) -> float:
        """Return the current fake Unix seconds."""
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._mono += seconds
        self._wall += seconds
