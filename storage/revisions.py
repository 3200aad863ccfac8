"""The ambient transaction's state, and the revisions that keep in-process caches exact across processes.

Rows that nearly every update reads — the sender's resident with roles, the communities with their buildings, the
sender's dialog state — are cached in each process. Each has a revision in the database (``resident.rev``,
``cache_rev`` row ``communities``, ``dialog_state.rev``; migration 0008) that triggers set to a new random value on
every write, by any writer: this process, another worker, the CLI, a plain SQL UPDATE. A cache entry keeps the
revision it was read with (value and revision always come from the same statement, so they belong together).

An update reads the three revisions once, at its start, in the statement that marks its inbox row done
(``SqlInboxRepository.start``), and :func:`note_revisions` puts them on the ambient transaction. A cache serves its
entry only when the entry's revision equals the one the update read and the transaction has not itself written the
tables behind it (writes are noticed for every statement, :func:`_note_write`); otherwise it reads the row (and
keeps what it read). Outside an update (CLI, ticker, tests) nothing is known and caches read through, or ask for
the revision alone. A wrong entry can only cost a read: it is never served under a revision it was not read with.
"""

from __future__ import annotations

import contextvars
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class Ambient:
    """The open ambient transaction: its session, what to do once it commits (e.g. refresh a cache), the cache
    revisions its update read at the start, the tables it has written since, and — in SQLite's group commit — the
    DB-API connection of the group's transaction, on which ``storage.direct`` statements run even before the session
    has begun (it joins that transaction when it does)."""

    session: AsyncSession
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    revs: dict[Hashable, int | None] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    connection: Any = None


SAVEPOINTS: Final = "sicheng_savepoints"  # Session.info key: lazy savepoints asked for (storage/uow.py)


def savepoint_waiting(session: Any) -> bool:
    """A lazy savepoint of ``session`` (a sync Session) was asked for and not emitted yet: the next write must emit
    it first (storage/uow.py)."""
    asked = session.info.get(SAVEPOINTS)
    return bool(asked) and asked[-1].nested is None


_AMBIENT: contextvars.ContextVar[Ambient | None] = contextvars.ContextVar("sicheng_ambient_tx", default=None)


def ambient() -> Ambient | None:
    """The ambient transaction of this task, if one is open."""
    return _AMBIENT.get()


def ambient_session() -> AsyncSession | None:
    """The session of the ambient transaction of this task, if one is open."""
    current = _AMBIENT.get()
    return current.session if current else None


def enter_ambient(current: Ambient) -> contextvars.Token[Ambient | None]:
    return _AMBIENT.set(current)


def leave_ambient(token: contextvars.Token[Ambient | None]) -> None:
    _AMBIENT.reset(token)


# ---- revision keys and the tables behind them ---------------------------------------------------------------------

RESIDENT_TABLES: Final = frozenset({"resident", "role_grant"})
COMMUNITY_TABLES: Final = frozenset({"community", "building", "cache_rev"})
STATE_TABLES: Final = frozenset({"dialog_state"})
COMMUNITIES: Final = ("communities",)
UNKNOWN_WRITE: Final = "*"  # a statement that may write but whose table could not be told


def resident_key(telegram_id: int) -> tuple[str, int]:
    return ("resident", telegram_id)


def state_key(user_id: int, chat_id: int) -> tuple[str, int, int]:
    return ("state", user_id, chat_id)


def note_revisions(revisions: dict[Hashable, int | None]) -> None:
    """Revisions the update read at its start (inside its transaction)."""
    current = _AMBIENT.get()
    if current is not None:
        current.revs.update(revisions)


def known_revision(session: AsyncSession, key: Hashable, tables: Iterable[str]) -> tuple[bool, int | None]:
    """(True, rev) when this transaction read the revision of ``key`` and has not written ``tables`` since."""
    current = _AMBIENT.get()
    if current is None or current.session is not session or key not in current.revs:
        return False, None
    written = current.written
    if written and (UNKNOWN_WRITE in written or not written.isdisjoint(tables)):
        return False, None
    return True, current.revs[key]


def remember_revision(session: AsyncSession, key: Hashable, rev: int | None, tables: Iterable[str]) -> None:
    """A revision read in the middle of the transaction holds for the rest of it, as long as it writes none of
    ``tables`` (checked on use by :func:`known_revision`)."""
    current = _AMBIENT.get()
    if current is not None and current.session is session and current.written.isdisjoint(tables):
        current.revs[key] = rev


# Every statement that may write names its table; a cache of that table is then bypassed until the transaction
# ends. Anything starting otherwise that is not a plain read counts as a write to an unknown table.
_WRITE = re.compile(
    r"\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+\"?(\w+)",
    re.IGNORECASE,
)
_READS = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "PRAGMA", "COMMIT")


@event.listens_for(Engine, "before_cursor_execute")
def _note_write(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _executemany: bool) -> None:
    note_write(statement)


def note_write(statement: str) -> None:
    """The ambient transaction runs ``statement``: if it may write, its table's caches are bypassed from now on."""
    current = _AMBIENT.get()
    if current is None:
        return
    head = statement.lstrip()[:9].upper()
    if head.startswith(_READS):
        return
    match = _WRITE.match(statement)
    current.written.add(match.group(1).lower() if match else UNKNOWN_WRITE)


# ---- caches -------------------------------------------------------------------------------------------------------


class Miss:
    """Nothing usable cached (no entry, or one read under another revision)."""


MISS: Final = Miss()


class RevCache(Generic[K, V]):
    """Entries (revision, value), at most ``size``, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[K, tuple[int | None, V]] = OrderedDict()

    def get(self, key: K, rev: int | None) -> V | Miss:
        entry = self._entries.get(key)
        if entry is None or entry[0] != rev:
            return MISS
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, rev: int | None, value: V) -> None:
        self._entries[key] = (rev, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, keys: Iterable[K]) -> None:
        for key in list(keys):
            self._entries.pop(key, None)

    def keys(self) -> list[K]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


_CACHES: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()


def engine_cache(session: AsyncSession, name: str, make: Callable[[], V]) -> V:
    """The process's cache ``name`` for the database this session talks to (one per engine)."""
    engine = session.bind.sync_engine if session.bind is not None else None
    if engine is None:
        return make()
    caches = _CACHES.get(engine)
    if caches is None:
        caches = _CACHES[engine] = {}
    cache = caches.get(name)
    if cache is None:
        cache = caches[name] = make()
    return cache
