"""Dialog state in the database: the embedded default, survives restarts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.state import DEFAULT_TTL, DialogState
from storage.models import DialogStateRow
from storage.uow import ambient


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
        current = ambient()
        entry = current.overlay.get((self, key)) if current else None
        if entry is None:
            entry = self._cache.get(key)
        if entry is None:
            if current is not None:  # inside an update's transaction: read through it
                row = await current.session.get(DialogStateRow, key)
                entry = (DialogState(row.name, dict(row.data)), row.expires_at) if row else (None, None)
                self._cache_after_commit(key, entry)
            else:
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
        entry: Entry = (DialogState(state.name, dict(state.data)), expires)
        current = ambient()
        if current is not None:  # commits with the update's effects, or not at all
            await self._write(current.session, user_id, chat_id, state, expires)
            await current.session.flush()
            self._cache_after_commit((user_id, chat_id), entry)
            return
        async with self._sessions() as session, session.begin():
            await self._write(session, user_id, chat_id, state, expires)
        self._remember((user_id, chat_id), entry)

    @staticmethod
    async def _write(session: AsyncSession, user_id: int, chat_id: int, state: DialogState, expires: datetime) -> None:
        row = await session.get(DialogStateRow, (user_id, chat_id))
        if row is None:
            session.add(
                DialogStateRow(user_id=user_id, chat_id=chat_id, name=state.name, data=state.data, expires_at=expires)
            )
        else:
            row.name, row.data, row.expires_at = state.name, dict(state.data), expires

    def _cache_after_commit(self, key: tuple[int, int], entry: Entry) -> None:
        """Inside an ambient transaction the cache learns a change only once it is committed."""
        current = ambient()
        assert current is not None
        current.overlay[(self, key)] = entry
        current.after_commit.append(lambda: self._remember(key, entry))

    def _remember(self, key: tuple[int, int], entry: Entry) -> None:
        self._cache.pop(key, None)
        if len(self._cache) >= CACHE_SIZE:
            del self._cache[next(iter(self._cache))]  # the least recently written: dicts keep insertion order
        self._cache[key] = entry

    async def clear(self, user_id: int, chat_id: int) -> None:
        stmt = delete(DialogStateRow).where(DialogStateRow.user_id == user_id, DialogStateRow.chat_id == chat_id)
        current = ambient()
        if current is not None:
            await current.session.execute(stmt)
            self._cache_after_commit((user_id, chat_id), (None, None))
            return
        async with self._sessions() as session, session.begin():
            await session.execute(stmt)
        self._remember((user_id, chat_id), (None, None))

    async def clear_user(self, user_id: int) -> None:
        stmt = delete(DialogStateRow).where(DialogStateRow.user_id == user_id)
        current = ambient()
        if current is not None:
            await current.session.execute(stmt)
            for key in [k for k in self._cache if k[0] == user_id]:
                current.overlay[(self, key)] = (None, None)
            current.after_commit.append(lambda: self._forget_user(user_id))
            return
        async with self._sessions() as session, session.begin():
            await session.execute(stmt)
        self._forget_user(user_id)

    def _forget_user(self, user_id: int) -> None:
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
