"""Dialog state in the database: the embedded default, survives restarts."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.conversation.state import DEFAULT_TTL, DialogState
from storage.models import DialogStateRow
from storage.revisions import MISS, STATE_TABLES, Miss, RevCache, ambient, known_revision, state_key

STATE = cast(Table, DialogStateRow.__table__)
_READ = select(STATE.c.name, STATE.c.data, STATE.c.expires_at, STATE.c.rev).where(
    STATE.c.user_id == bindparam("user"), STATE.c.chat_id == bindparam("chat")
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


CACHE_SIZE = 20_000
Entry = tuple[DialogState | None, datetime | None]
ABSENT: Entry = (None, None)


def new_rev() -> int:
    """A fresh revision for a row this store writes (random, so it never repeats one the row had)."""
    return secrets.randbits(62)


class SqlStateStore:
    """Durable dialog state with a cache of recent users' states, exact across processes.

    Every update reads its sender's state. Each row has a revision that changes on every write, whoever writes
    (migration 0008); an update reads the revision of its sender's state at its start, with the statement that marks
    it done, and a cached state is used only if it was read (or written here) under that revision. Outside an
    update (tests calling the core directly, the CLI) the state is read from the database.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime] = _utcnow) -> None:
        self._sessions = sessions
        self._clock = clock
        self._cache: RevCache[tuple[int, int], Entry] = RevCache(CACHE_SIZE)

    async def get(self, user_id: int, chat_id: int) -> DialogState | None:
        key = (user_id, chat_id)
        current = ambient()
        entry: Entry | Miss = MISS
        if current is not None:  # inside an update's transaction: the cache if it is current, else read through it
            known, rev = known_revision(current.session, state_key(user_id, chat_id), STATE_TABLES)
            if known:
                entry = self._cache.get(key, rev)
            if isinstance(entry, Miss):
                entry = await self._read(current.session, key)
        else:
            async with self._sessions() as session:
                entry = await self._read(session, key)
        state, expires = entry
        if state is None or expires is None or expires <= self._clock():
            return None
        return DialogState(state.name, dict(state.data))

    async def _read(self, session: AsyncSession, key: tuple[int, int]) -> Entry:
        """The row and its revision in one statement (so they belong together), remembered for later updates."""
        row = (await session.execute(_READ, {"user": key[0], "chat": key[1]})).first()
        if row is None:
            self._cache.put(key, None, ABSENT)
            return ABSENT
        entry: Entry = (DialogState(row.name, dict(row.data)), row.expires_at)
        self._cache.put(key, row.rev, entry)
        return entry

    async def set(self, user_id: int, chat_id: int, state: DialogState, ttl: int = DEFAULT_TTL) -> None:
        expires = self._clock() + timedelta(seconds=ttl)
        entry: Entry = (DialogState(state.name, dict(state.data)), expires)
        key, rev = (user_id, chat_id), new_rev()
        current = ambient()
        if current is not None:  # commits with the update's effects, or not at all
            await current.session.execute(self._upsert(current.session, user_id, chat_id, state, expires, rev))
            self._after_commit(lambda: self._cache.put(key, rev, entry))
            return
        async with self._sessions() as session, session.begin():
            await session.execute(self._upsert(session, user_id, chat_id, state, expires, rev))
        self._cache.put(key, rev, entry)

    @staticmethod
    def _upsert(
        session: AsyncSession, user_id: int, chat_id: int, state: DialogState, expires: datetime, rev: int
    ) -> Any:
        """One statement whatever was there: insert, or replace the state (and its revision)."""
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        values = {"name": state.name, "data": dict(state.data), "expires_at": expires, "rev": rev}
        stmt = dialect.insert(STATE).values(user_id=user_id, chat_id=chat_id, **values)
        return stmt.on_conflict_do_update(index_elements=["user_id", "chat_id"], set_=values)

    def _after_commit(self, callback: Callable[[], None]) -> None:
        """Inside an ambient transaction the cache learns a write only once it is committed."""
        current = ambient()
        assert current is not None
        current.after_commit.append(callback)

    async def clear(self, user_id: int, chat_id: int) -> None:
        stmt = delete(DialogStateRow).where(DialogStateRow.user_id == user_id, DialogStateRow.chat_id == chat_id)
        key = (user_id, chat_id)
        current = ambient()
        if current is not None:
            await current.session.execute(stmt)
            self._after_commit(lambda: self._cache.put(key, None, ABSENT))
            return
        async with self._sessions() as session, session.begin():
            await session.execute(stmt)
        self._cache.put(key, None, ABSENT)

    async def clear_user(self, user_id: int) -> None:
        stmt = delete(DialogStateRow).where(DialogStateRow.user_id == user_id)
        current = ambient()
        if current is not None:
            await current.session.execute(stmt)
            self._after_commit(lambda: self._forget_user(user_id))
            return
        async with self._sessions() as session, session.begin():
            await session.execute(stmt)
        self._forget_user(user_id)

    def _forget_user(self, user_id: int) -> None:
        self._cache.drop([k for k in self._cache.keys() if k[0] == user_id])  # noqa: SIM118

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
