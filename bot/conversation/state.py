"""Dialog state: one small record per user in a chat, kept by a StateStore with a TTL."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_TTL = 24 * 3600


@dataclass(frozen=True)
class DialogState:
    name: str
    data: dict[str, Any] = field(default_factory=dict)


class StateStore(Protocol):
    """Where the conversation core keeps dialog state (memory, SQL or Redis)."""

    async def get(self, user_id: int, chat_id: int) -> DialogState | None: ...

    async def set(self, user_id: int, chat_id: int, state: DialogState, ttl: int = DEFAULT_TTL) -> None: ...

    async def clear(self, user_id: int, chat_id: int) -> None: ...

    async def clear_user(self, user_id: int) -> None: ...


class MemoryStateStore:
    """In-process store for tests and single-process runs without persistence."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._items: dict[tuple[int, int], tuple[DialogState, float]] = {}
        self._clock = clock

    async def get(self, user_id: int, chat_id: int) -> DialogState | None:
        item = self._items.get((user_id, chat_id))
        if item is None:
            return None
        state, expires = item
        if expires <= self._clock():
            del self._items[(user_id, chat_id)]
            return None
        return state

    async def set(self, user_id: int, chat_id: int, state: DialogState, ttl: int = DEFAULT_TTL) -> None:
        self._items[(user_id, chat_id)] = (state, self._clock() + ttl)

    async def clear(self, user_id: int, chat_id: int) -> None:
        self._items.pop((user_id, chat_id), None)

    async def clear_user(self, user_id: int) -> None:
        for key in [k for k in self._items if k[0] == user_id]:
            del self._items[key]
