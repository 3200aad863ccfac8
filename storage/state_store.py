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


class SqlStateStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime] = _utcnow) -> None:
        self._sessions = sessions
        self._clock = clock

    async def get(self, user_id: int, chat_id: int) -> DialogState | None:
        async with self._sessions() as session:
            row = await session.get(DialogStateRow, (user_id, chat_id))
            if row is None or row.expires_at <= self._clock():
                return None
            return DialogState(row.name, dict(row.data))

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

    async def clear(self, user_id: int, chat_id: int) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(DialogStateRow).where(DialogStateRow.user_id == user_id, DialogStateRow.chat_id == chat_id)
            )

    async def clear_user(self, user_id: int) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(DialogStateRow).where(DialogStateRow.user_id == user_id))

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
