"""Per-user serialisation: updates of one user are handled one at a time, others run concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class UserLocks(Protocol):
    """Serialises the updates of one user (in-process, or Redis when several workers run)."""

    def hold(self, user_id: int) -> AbstractAsyncContextManager[None]: ...


class LocalUserLocks:
    """In-process locks; an entry is dropped when nobody holds or waits for it, so memory stays flat."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, user_id: int) -> AsyncIterator[None]:
        lock, users = self._locks.get(user_id, (asyncio.Lock(), 0))
        self._locks[user_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[user_id]
            if users <= 1:
                del self._locks[user_id]
            else:
                self._locks[user_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
