"""The inbox and the outbox in SQL. Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several dispatchers);
SQLite has one writer, and one process serves it."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.domain.messaging import InboxItem, OutboxItem, OutboxStatus
from bot.domain.notices import Priority
from bot.domain.outbox_admin import OutboxEntry, Selection
from storage.direct import Direct
from storage.messaging_models import InboxRow, OutboxRow
from storage.models import CacheRevRow, DialogStateRow, GroupChatRow, ResidentRow
from storage.revisions import COMMUNITIES, note_revisions, resident_key, state_key

# Core-level statements on the tables (no ORM bulk machinery: these run several times per update).
INBOX = cast(Table, InboxRow.__table__)
OUTBOX = cast(Table, OutboxRow.__table__)
RESIDENT = cast(Table, ResidentRow.__table__)
CACHE_REV = cast(Table, CacheRevRow.__table__)
STATE = cast(Table, DialogStateRow.__table__)
BULK = int(Priority.BULK)

# Statements run for every update, built once (building one costs more than SQLAlchemy's cached compilation).
# Data minimisation: what a person sent (an update's payload) and what the bot answered them (a rendered reply) are
# kept only until they are handled or sent. Afterwards the rows keep what deduplication and operations need (ids,
# digest, status, times) — so, e.g., an anonymous survey's answers do not stay in the inbox next to the sender.
_FORGOTTEN = literal({}, type_=INBOX.c.payload.type)
_START = (
    update(INBOX)
    .where(INBOX.c.id == bindparam("row"), INBOX.c.status == "pending")
    .values(status="done", handled_at=bindparam("now"), payload=_FORGOTTEN)
)
_START_READING = _START.returning(
    select(RESIDENT.c.rev).where(RESIDENT.c.telegram_id == bindparam("user")).scalar_subquery(),
    select(CACHE_REV.c.rev).where(CACHE_REV.c.name == COMMUNITIES[0]).scalar_subquery(),
    select(STATE.c.rev)
    .where(STATE.c.user_id == bindparam("user"), STATE.c.chat_id == bindparam("chat"))
    .scalar_subquery(),
)
_STARTED = Direct(_START_READING)
_PENDING = (
    select(INBOX.c.id, INBOX.c.update_id, INBOX.c.payload, INBOX.c.user_id, INBOX.c.attempts, INBOX.c.error)
    .where(INBOX.c.status == "pending", or_(INBOX.c.not_before.is_(None), INBOX.c.not_before <= bindparam("now")))
    .order_by(INBOX.c.id)
    .limit(bindparam("limit"))
)
_PENDING_ROWS = Direct(_PENDING)
_ADD_MANY = OUTBOX.insert().returning(OUTBOX.c.id)
_QUEUED = ("chat_id", "kind", "payload", "priority", "key", "ref", "status", "attempts", "created_at", "claimed_by",
           "claimed_until")  # fmt: skip
_DIRECT_ROWS = 8  # an update's replies, queued by one multi-row INSERT sent by the driver (more: SQLAlchemy's)


@functools.cache
def _add_rows(count: int) -> Direct:
    """INSERT ... VALUES (row 0), ..., (row count-1) RETURNING id, parameters named ``<column>_<row>``."""
    rows = [{name: bindparam(f"{name}_{n}", type_=OUTBOX.c[name].type) for name in _QUEUED} for n in range(count)]
    return Direct(OUTBOX.insert().values(rows).returning(OUTBOX.c.id))


# A reply (rendered for one person) is forgotten once sent; notices keep their template and context (rendered again
# in the recipient's language if edited, and counted by campaigns), and failed or skipped rows keep everything.
_SENT_REPLY = and_(OUTBOX.c.kind.like("out.%"), bindparam("mark") == "sent")
_FINISH_MANY = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("row"))
    .values(
        payload=case((_SENT_REPLY, _FORGOTTEN), else_=OUTBOX.c.payload),
        status=bindparam("mark"),
        sent_at=bindparam("at"),
        message_id=bindparam("message"),
        error=bindparam("why"),
        claimed_until=None,
        claimed_by=None,
    )
)
_FINISHED = Direct(_FINISH_MANY)


def digest(update: dict[str, Any]) -> str:
    """The same update redelivered has the same digest (canonical JSON)."""
    canonical = json.dumps(update, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def sender_of(update: dict[str, Any]) -> int | None:
    """The user an update comes from (its handling is serialised per user)."""
    for kind, body in update.items():
        if kind == "update_id" or not isinstance(body, dict):
            continue
        person = body.get("from") or body.get("user")
        if isinstance(person, dict) and isinstance(person.get("id"), int):
            return int(person["id"])
    return None


class SqlInboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def _insert(self) -> Any:
        return (postgresql if self._s.get_bind().dialect.name == "postgresql" else sqlite).insert(INBOX)

    async def add(self, updates: Sequence[dict[str, Any]], now: datetime) -> int:
        """Record updates (a redelivered one is recorded once); returns how many were new."""
        return len(await self.add_announced(updates, now))

    async def pending(self, now: datetime, limit: int, skip: Sequence[int] = ()) -> list[InboxItem]:
        """Updates to handle, oldest first (``skip``: ones this process is handling)."""
        # Sent by the driver (storage/direct.py); the rows in hand are left out here rather than by an expanding
        # NOT IN (one statement for any number of them): at most len(skip) of the first limit + len(skip) are.
        held = set(skip)
        rows = (await _PENDING_ROWS.run(self._s, {"now": now, "limit": limit + len(held)})).rows
        # Plain columns, no ORM objects: the payload is a fresh dict already.
        return [InboxItem(*row) for row in rows if row[0] not in held][:limit]

    async def start(self, item_id: int, now: datetime, *, sender: tuple[int, int] | None = None) -> bool:
        """Mark the update done in the transaction that handles it; False if it was handled already.

        On PostgreSQL the row stays locked until that transaction ends, so a second worker waits, then sees it done.
        With ``sender`` (user id, chat id) the same statement reads the cache revisions the update needs — the
        sender's resident, the communities, the sender's dialog state in that chat — for the caches to compare with
        (storage/revisions.py): no extra round trip.
        """
        if sender is None:
            result = await self._s.execute(_START, {"row": item_id, "now": now})
            return bool(getattr(result, "rowcount", 0))
        user_id, chat_id = sender
        params = {"row": item_id, "now": now, "user": user_id, "chat": chat_id}
        rows = (await _STARTED.run(self._s, params)).rows
        if not rows:
            return False
        row = rows[0]
        note_revisions({resident_key(user_id): row[0], COMMUNITIES: row[1], state_key(user_id, chat_id): row[2]})
        return True

    async def defer(self, item_id: int, until: datetime, reason: str) -> None:
        await self._s.execute(
            update(INBOX)
            .where(InboxRow.id == item_id)
            .values(not_before=until, attempts=InboxRow.attempts + 1, error=reason[:300])
        )

    async def set_aside(self, item_id: int, now: datetime, reason: str) -> None:
        await self._s.execute(
            update(INBOX).where(InboxRow.id == item_id).values(status="set_aside", handled_at=now, error=reason[:300])
        )

    async def picked(self, item_ids: Sequence[int]) -> None:
        """Count an attempt for updates a worker starts (committed before their handling, so a crash keeps it)."""
        if item_ids:
            await self._s.execute(
                update(INBOX).where(InboxRow.id.in_(list(item_ids))).values(attempts=InboxRow.attempts + 1)
            )

    async def recover(self, max_attempts: int, now: datetime) -> tuple[int, int]:
        """At start: updates a worker started this many times without finishing (each start ended in a crash) are
        set aside instead of killing the process again. Returns (pending, set aside now)."""
        poisoned = await self._s.execute(
            update(INBOX)
            .where(InboxRow.status == "pending", InboxRow.attempts >= max_attempts)
            .values(status="set_aside", handled_at=now, error="interrupted by a crash too many times")
        )
        left = await self._s.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.status == "pending"))
        return int(left or 0), int(getattr(poisoned, "rowcount", 0) or 0)

    async def purge(self, before: datetime) -> int:
        """Forget handled updates older than ``before`` (set-aside ones stay for inspection)."""
        result = await self._s.execute(delete(INBOX).where(InboxRow.status == "done", InboxRow.handled_at < before))
        return int(getattr(result, "rowcount", 0) or 0)

    async def counts(self) -> dict[str, int]:
        rows = await self._s.execute(select(InboxRow.status, func.count()).group_by(InboxRow.status))
        return {status: int(n) for status, n in rows.all()}

    async def set_aside_items(self, limit: int = 50) -> list[InboxItem]:
        query = select(InboxRow).where(InboxRow.status == "set_aside").order_by(InboxRow.id.desc()).limit(limit)
        return [_inbox(r) for r in (await self._s.scalars(query)).all()]

    # ---- several workers (bot/workers.py) ----------------------------------------------------------------------

    async def add_announced(self, updates: Sequence[dict[str, Any]], now: datetime) -> list[tuple[int, int | None]]:
        """Record updates (a redelivered one is recorded once) in one statement for the whole batch (getUpdates
        returns up to 100); returns (row id, sender) of each new one, oldest first, to announce to workers."""
        if not updates:
            return []
        rows = [
            {
                "update_id": int(update_.get("update_id", 0)),
                "digest": digest(update_),
                "payload": update_,
                "user_id": sender_of(update_),
                "status": "pending",
                "attempts": 0,
                "received_at": now,
            }
            for update_ in updates
        ]
        stmt = (
            self._insert()
            .on_conflict_do_nothing(index_elements=["update_id", "digest"])
            .returning(INBOX.c.id, INBOX.c.user_id)
        )
        added = [(int(i), None if u is None else int(u)) for i, u in (await self._s.execute(stmt, rows)).all()]
        return sorted(added)

    async def pending_of(self, user_id: int | None, row: int, now: datetime, limit: int = 20) -> list[InboxItem]:
        """The sender's pending updates that are due, oldest first (without a sender: that one row, if pending)."""
        due = or_(InboxRow.not_before.is_(None), InboxRow.not_before <= now)
        mine = InboxRow.user_id == user_id if user_id is not None else InboxRow.id == row
        query = select(InboxRow).where(InboxRow.status == "pending", mine, due).order_by(InboxRow.id).limit(limit)
        return [_inbox(r) for r in (await self._s.scalars(query)).all()]

    async def pick_of(self, user_id: int | None, row: int, now: datetime, limit: int = 20) -> list[InboxItem]:
        """:meth:`pending_of` and :meth:`picked` in one statement: the sender's due rows, their attempt counted (the
        items carry the count from before, as :meth:`pending` gives it), oldest first."""
        due = or_(INBOX.c.not_before.is_(None), INBOX.c.not_before <= now)
        mine = INBOX.c.user_id == user_id if user_id is not None else INBOX.c.id == row
        chosen = select(INBOX.c.id).where(INBOX.c.status == "pending", mine, due).order_by(INBOX.c.id).limit(limit)
        result = await self._s.execute(
            update(INBOX)
            .where(INBOX.c.id.in_(chosen.scalar_subquery()))
            .values(attempts=INBOX.c.attempts + 1)
            .returning(INBOX.c.id, INBOX.c.update_id, INBOX.c.payload, INBOX.c.user_id, INBOX.c.attempts, INBOX.c.error)
        )
        items = [InboxItem(r[0], r[1], dict(r[2]), r[3], int(r[4]) - 1, r[5]) for r in result.all()]
        return sorted(items, key=lambda item: item.id)

    async def overlooked(self, received_before: datetime, now: datetime, limit: int) -> list[tuple[int, int | None]]:
        """Pending, due updates received before ``received_before``: their announcement may be lost."""
        due = or_(InboxRow.not_before.is_(None), InboxRow.not_before <= now)
        query = (
            select(InboxRow.id, InboxRow.user_id)
            .where(InboxRow.status == "pending", InboxRow.received_at < received_before, due)
            .order_by(InboxRow.id)
            .limit(limit)
        )
        return [(int(i), None if u is None else int(u)) for i, u in (await self._s.execute(query)).all()]

    async def pending_count(self) -> int:
        """Updates stored and not handled yet (due or not): one range of the status index (``bot.metrics``)."""
        query = select(func.count()).select_from(InboxRow).where(InboxRow.status == "pending")
        return int(await self._s.scalar(query) or 0)


def _inbox(row: InboxRow) -> InboxItem:
    return InboxItem(row.id, row.update_id, dict(row.payload), row.user_id, row.attempts, row.error)


class SqlOutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def _insert(self) -> Any:
        return (postgresql if self._s.get_bind().dialect.name == "postgresql" else sqlite).insert(OUTBOX)

    async def add(
        self,
        chat_id: int,
        kind: str,
        payload: dict[str, Any],
        *,
        now: datetime,
        priority: int = 10,
        key: str | None = None,
        ref: str | None = None,
        claimed_by: str | None = None,
        claimed_until: datetime | None = None,
    ) -> int | None:
        """Queue one message; with a ``key`` already queued nothing is added (None)."""
        values = {
            "chat_id": chat_id,
            "kind": kind,
            "payload": payload,
            "priority": priority,
            "key": key,
            "ref": ref,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "claimed_by": claimed_by,
            "claimed_until": claimed_until,
        }
        stmt = self._insert().values(**values)
        if key is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=["key"])
        stmt = stmt.returning(OUTBOX.c.id)
        return (await self._s.execute(stmt)).scalar_one_or_none()

    async def add_many(
        self,
        messages: Sequence[tuple[int, str, dict[str, Any]]],
        *,
        now: datetime,
        priority: int,
        claimed_by: str | None = None,
        claimed_until: datetime | None = None,
    ) -> list[int]:
        """Queue several messages (chat, kind, payload) without keys in one statement; their ids, in order."""
        if not messages:
            return []
        rows = [
            {
                "chat_id": chat_id,
                "kind": kind,
                "payload": payload,
                "priority": priority,
                "key": None,
                "ref": None,
                "status": "pending",
                "attempts": 0,
                "created_at": now,
                "claimed_by": claimed_by,
                "claimed_until": claimed_until,
            }
            for chat_id, kind, payload in messages
        ]
        # One multi-row INSERT: an update's few replies by a statement compiled once per row count and sent by the
        # driver (storage/direct.py); more (a broadcast's) by SQLAlchemy's "insertmanyvalues" (a .values(list) would
        # be compiled anew every time). Ids count up along the rows (SQLite's rowids and PostgreSQL's sequence
        # alike), so sorting them restores the order RETURNING does not promise.
        if len(rows) > _DIRECT_ROWS:
            result = await self._s.execute(_ADD_MANY, rows)
            return sorted(int(i) for i in result.scalars().all())
        params = {f"{name}_{n}": value for n, row in enumerate(rows) for name, value in row.items()}
        added = await _add_rows(len(rows)).run(self._s, params)
        return sorted(int(row[0]) for row in added.rows)

    async def claim(self, by: str, now: datetime, until: datetime, limit: int) -> list[OutboxItem]:
        """Lease due rows, most urgent first; rows another dispatcher holds (or locks right now) are skipped."""
        earlier = aliased(OutboxRow)
        # Only the oldest pending row of each chat: a chat's messages go out one after the other, in order, whichever
        # dispatcher sends them (Telegram allows about one message a second per chat anyway).
        # A bulk row held back until later (a resident's quiet hours) does not hold up what comes after it.
        not_first = (
            select(earlier.id)
            .where(
                earlier.chat_id == OutboxRow.chat_id,
                earlier.id < OutboxRow.id,
                earlier.status == "pending",
                or_(earlier.priority < BULK, earlier.not_before.is_(None), earlier.not_before <= now),
            )
            .exists()
        )
        query = (
            select(OutboxRow)
            .where(
                OutboxRow.status == "pending",
                or_(OutboxRow.not_before.is_(None), OutboxRow.not_before <= now),
                or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until <= now),
                ~not_first,
            )
            .order_by(OutboxRow.priority, OutboxRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list((await self._s.scalars(query)).all())
        for row in rows:
            row.claimed_by, row.claimed_until = by, until
        await self._s.flush()
        return [_outbox(r) for r in rows]

    async def get(self, item_id: int) -> OutboxItem | None:
        row = await self._s.get(OutboxRow, item_id)
        return _outbox(row) if row else None

    async def items(self, ids: Sequence[int]) -> list[OutboxItem]:
        rows = (
            await self._s.scalars(select(OutboxRow).where(OutboxRow.id.in_(list(ids))).order_by(OutboxRow.id))
        ).all()
        return [_outbox(r) for r in rows]

    async def finish(
        self,
        item_id: int,
        status: OutboxStatus,
        at: datetime,
        *,
        message_id: int | None = None,
        error: str | None = None,
    ) -> None:
        await self.finish_many([(item_id, status, at, message_id, error)])

    async def finish_many(self, marks: Sequence[tuple[int, OutboxStatus, datetime, int | None, str | None]]) -> None:
        """:meth:`finish` for several rows (id, status, at, message id, error) in one statement."""
        if not marks:
            return
        params = [
            {"row": i, "mark": status.value, "at": at, "message": message_id, "why": error[:300] if error else None}
            for i, status, at, message_id, error in marks
        ]
        await _FINISHED.run_many(self._s, params)

    async def retry(self, item_id: int, not_before: datetime, error: str | None) -> None:
        await self._s.execute(
            update(OUTBOX)
            .where(OutboxRow.id == item_id)
            .values(
                not_before=not_before,
                attempts=OutboxRow.attempts + 1,
                error=error[:300] if error else None,
                claimed_until=None,
                claimed_by=None,
            )
        )

    async def skip_chat(self, chat_id: int, at: datetime, reason: str) -> int:
        """Every pending row to a chat that blocked the bot is kept as skipped."""
        result = await self._s.execute(
            update(OUTBOX)
            .where(OutboxRow.chat_id == chat_id, OutboxRow.status == "pending")
            .values(status="skipped", sent_at=at, error=reason, claimed_until=None, claimed_by=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def sent_message(self, ref: str, chat_id: int) -> tuple[str, int | None, bool] | None:
        """The newest original (not an edit) message named ``ref`` in the chat: (status, message_id, is_photo)."""
        row = (
            await self._s.execute(
                select(OutboxRow.status, OutboxRow.message_id, OutboxRow.kind, OutboxRow.payload)
                .where(OutboxRow.ref == ref, OutboxRow.chat_id == chat_id)
                .order_by(OutboxRow.id.desc())
                .limit(20)
            )
        ).all()
        for status, message_id, kind, payload in row:
            if kind == "out.edit" or (kind == "notice" and payload.get("edit") and not message_id):
                continue
            return str(status), message_id, kind == "out.photo" or bool(payload.get("photo"))
        return None

    async def release(self, by: str | None = None) -> int:
        """Drop claims (all, or one dispatcher's): at start-up of the only process, nobody else holds any."""
        stmt = update(OUTBOX).where(OutboxRow.status == "pending", OutboxRow.claimed_until.is_not(None))
        if by is not None:
            stmt = stmt.where(OutboxRow.claimed_by == by)
        result = await self._s.execute(stmt.values(claimed_until=None, claimed_by=None))
        return int(getattr(result, "rowcount", 0) or 0)

    async def unreachable(self, chat_id: int) -> bool:
        """A person who blocked the bot, or a group that removed it (until they write again)."""
        if chat_id > 0:
            query = select(ResidentRow.unreachable_at).where(ResidentRow.telegram_id == chat_id)
        else:
            query = select(GroupChatRow.unreachable_at).where(GroupChatRow.chat_id == chat_id)
        return (await self._s.scalar(query)) is not None

    async def mark_unreachable(self, chat_id: int, at: datetime) -> None:
        if chat_id > 0:
            stmt: Any = update(ResidentRow).where(
                ResidentRow.telegram_id == chat_id, ResidentRow.unreachable_at.is_(None)
            )
        else:
            stmt = update(GroupChatRow).where(GroupChatRow.chat_id == chat_id, GroupChatRow.unreachable_at.is_(None))
        await self._s.execute(stmt.values(unreachable_at=at))

    async def group_reachable(self, chat_id: int) -> None:
        """A group wrote to the bot: it is there again."""
        await self._s.execute(
            update(GroupChatRow)
            .where(GroupChatRow.chat_id == chat_id, GroupChatRow.unreachable_at.is_not(None))
            .values(unreachable_at=None)
        )

    async def counts(self) -> dict[str, int]:
        rows = await self._s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
        return {status: int(n) for status, n in rows.all()}

    async def pending_count(self, now: datetime) -> int:
        query = (
            select(func.count())
            .select_from(OutboxRow)
            .where(
                and_(OutboxRow.status == "pending", or_(OutboxRow.not_before.is_(None), OutboxRow.not_before <= now))
            )
        )
        return int(await self._s.scalar(query) or 0)

    async def purge(self, before: datetime) -> int:
        """Forget finished rows older than ``before``, except the newest of each ref (cards edited later)."""
        keep = (
            select(func.max(OutboxRow.id)).where(OutboxRow.ref.is_not(None)).group_by(OutboxRow.ref, OutboxRow.chat_id)
        )
        result = await self._s.execute(
            delete(OUTBOX).where(OutboxRow.status != "pending", OutboxRow.sent_at < before, OutboxRow.id.not_in(keep))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    # ---- operators (``sicheng outbox``) ------------------------------------------------------------------

    async def entries(self, selection: Selection, limit: int) -> list[OutboxEntry]:
        """Rows an operator selected, newest first."""
        query = _selected(select(OutboxRow), selection).order_by(OutboxRow.id.desc()).limit(limit)
        return [_entry(r) for r in (await self._s.scalars(query)).all()]

    async def matching(self, selection: Selection) -> list[tuple[int, int | None]]:
        """(id, campaign id) of every selected row, oldest first."""
        query = _selected(select(OutboxRow.id, OutboxRow.campaign_id), selection).order_by(OutboxRow.id)
        return [(int(i), None if c is None else int(c)) for i, c in (await self._s.execute(query)).all()]

    async def requeue_failed(self, ids: Sequence[int]) -> list[int | None]:
        """Failed rows among ``ids`` go back to pending as if new (attempts reset, no delay); returns the campaign
        id of each row changed (None for a row of no campaign)."""
        if not ids:
            return []
        result = await self._s.execute(
            update(OUTBOX)
            .where(OutboxRow.id.in_(list(ids)), OutboxRow.status == OutboxStatus.FAILED.value)
            .values(
                status=OutboxStatus.PENDING.value,
                attempts=0,
                not_before=None,
                sent_at=None,
                message_id=None,
                error=None,
                claimed_until=None,
                claimed_by=None,
            )
            .returning(OUTBOX.c.campaign_id)
        )
        return [None if c is None else int(c) for c in result.scalars().all()]

    async def cancel_pending(self, ids: Sequence[int], at: datetime, reason: str) -> int:
        """Pending rows among ``ids`` are kept as cancelled; a row a dispatcher is sending right now is left alone."""
        if not ids:
            return 0
        result = await self._s.execute(
            update(OUTBOX)
            .where(
                OutboxRow.id.in_(list(ids)),
                OutboxRow.status == OutboxStatus.PENDING.value,
                or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until <= at),
            )
            .values(status=OutboxStatus.CANCELLED.value, sent_at=at, error=reason[:300])
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def backlog(self) -> dict[int, int]:
        """Pending rows by priority (due or held until later): one range of the status index (``bot.metrics``)."""
        rows = await self._s.execute(
            select(OutboxRow.priority, func.count()).where(OutboxRow.status == "pending").group_by(OutboxRow.priority)
        )
        return {int(priority): int(n) for priority, n in rows.all()}


def _selected(query: Any, selection: Selection) -> Any:
    if selection.ids:
        query = query.where(OutboxRow.id.in_(list(selection.ids)))
    if selection.campaign_id is not None:
        query = query.where(OutboxRow.campaign_id == selection.campaign_id)
    if selection.chat_id is not None:
        query = query.where(OutboxRow.chat_id == selection.chat_id)
    if selection.statuses:
        query = query.where(OutboxRow.status.in_([s.value for s in selection.statuses]))
    return query


def _entry(row: OutboxRow) -> OutboxEntry:
    template = row.payload.get("template") if isinstance(row.payload, dict) else None
    return OutboxEntry(
        id=row.id,
        chat_id=row.chat_id,
        kind=row.kind,
        template=template if isinstance(template, str) else None,
        priority=row.priority,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        created_at=row.created_at,
        not_before=row.not_before,
        sent_at=row.sent_at,
        error=row.error,
        campaign_id=row.campaign_id,
    )


def _outbox(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        chat_id=row.chat_id,
        kind=row.kind,
        payload=dict(row.payload),
        priority=row.priority,
        ref=row.ref,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        message_id=row.message_id,
        error=row.error,
    )
