"""Dialog state in the database: the embedded default, survives restarts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.state import DEFAULT_TTL, DialogState
from storage.models import DialogStateRow


def _utcnow() -> datetime:
    return datetime.now(UTC)


CACHE_SIZE = 20_000
Entry = tuple[DialogState | None, datetime | None]


class SqlStateStore:
    """Durable dialog state with a write-through cache of recent users.

    Every update reads its sender's state, so the cache saves a query per update. It is exact because one process
    serves a token (docs/operations.md); several workers will need a shared store (Redis) instead.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime] = _utcnow) -> None:
        self._sessions = sessions
        self._clock = clock
        self._cache: dict[tuple[int, int], Entry] = {}

    async def get(self, user_id: int, chat_id: int) -> DialogState | None:
        key = (user_id, chat_id)
        entry = self._cache.get(key)
        if entry is None:
            async with self._sessions() as session:
                row = await session.get(DialogStateRow, key)
                entry = (DialogState(row.name, dict(row.data)), row.expires_at) if row else (None, None)
            self._remember(key, entry)
        state, expires = entry
        if state is None or expires is None or expires <= self._clock():
            return None
        return state

    async def set(self, user_id: int, chat_id: int, state: DialogState, ttl: int = DEFAULT_TTL) -> None:
        expires = self._clock() + timedelta(seconds=ttl)
        async with self._sessions() as session, session.begin():
            row = await session.get(DialogStateRow, (user_id, chat_id))
            if row is None:
                session.add(
                    DialogStateRow(
                        user_id=user_id, chat_id=chat_id, name=state.name, data=state.data, expires_at=expires
                    )
                )
            else:
                row.name, row.data, row.expires_at = state.name, dict(state.data), expires
        self._remember((user_id, chat_id), (DialogState(state.name, dict(state.data)), expires))

    def _remember(self, key: tuple[int, int], entry: Entry) -> None:
        self._cache.pop(key, None)
        if len(self._cache) >= CACHE_SIZE:
            del self._cache[next(iter(self._cache))]  # the least recently written: dicts keep insertion order
        self._cache[key] = entry

    async def clear(self, user_id: int, chat_id: int) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(DialogStateRow).where(DialogStateRow.user_id == user_id, DialogStateRow.chat_id == chat_id)
            )
        self._remember((user_id, chat_id), (None, None))

    async def clear_user(self, user_id: int) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(DialogStateRow).where(DialogStateRow.user_id == user_id))
        for key in [k for k in self._cache if k[0] == user_id]:
            del self._cache[key]

    async def purge_expired(self) -> int:
        """Delete expired rows; returns how many."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(delete(DialogStateRow).where(DialogStateRow.expires_at <= self._clock()))
            return int(getattr(result, "rowcount", 0) or 0)

    async def count(self) -> int:
        """Live states (for operators)."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DialogStateRow.user_id).where(DialogStateRow.expires_at > self._clock())
            )
            return len(rows.all())
