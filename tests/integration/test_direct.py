"""Statements sent by the driver (storage/direct.py) behave as SQLAlchemy's own execution of them: same rows and
types, inside the session's transaction (undone with it, and with a savepoint it is in), seeing what the session has
not flushed yet, and failing with SQLAlchemy's errors — on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, func, insert, select, text
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.campaigns import Preferences, QuietHours
from storage.campaign_repository import _PREFERENCES, SqlCampaignRepository
from storage.db import make_engine, make_sessionmaker
from storage.direct import Direct
from storage.messaging_repository import INBOX, OUTBOX, SqlInboxRepository, SqlOutboxRepository
from storage.models import ResidentRow
from storage.uow import SqlUnitOfWork, Transactions

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
_COUNT_OUTBOX = Direct(select(func.count()).select_from(OUTBOX))
_ADD_OUTBOX = Direct(
    insert(OUTBOX).values(
        chat_id=bindparam("chat", type_=OUTBOX.c.chat_id.type),
        kind="out.text",
        payload=bindparam("payload", type_=OUTBOX.c.payload.type),
        priority=0,
        status="pending",
        attempts=0,
        created_at=bindparam("now", type_=OUTBOX.c.created_at.type),
    )
)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def transactions(engine: AsyncEngine) -> Transactions:
    return Transactions(make_sessionmaker(engine), serialise=engine.dialect.name == "sqlite")


async def outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(OUTBOX))).scalar_one())


async def test_direct_rows_equal_sqlalchemys_with_types_on_both_databases(engine: AsyncEngine) -> None:
    async with transactions(engine).scope() as uow:
        session = uow.session
        resident = ResidentRow(telegram_id=42, display_name="王阿姨", locale="zh_Hans", created_at=NOW)
        session.add(resident)
        await session.flush()
        campaigns = SqlCampaignRepository(session)
        quiet = QuietHours(22 * 60, 7 * 60 + 30)
        await campaigns.save_preferences(resident.id, Preferences(False, quiet, frozenset({"sanitary", "garden"})), NOW)
        await SqlInboxRepository(session).add([{"update_id": 7, "message": {"text": "你好", "n": [1, 2.5, None]}}], NOW)
        await uow.commit()

    async with transactions(engine).scope() as uow:
        session = uow.session
        resident_id = (await session.execute(select(ResidentRow.id))).scalar_one()
        ours = (await Direct(_PREFERENCES).run(session, {"resident": resident_id})).rows
        theirs = [tuple(row) for row in (await session.execute(_PREFERENCES, {"resident": resident_id})).all()]
        assert sorted(ours, key=repr) == sorted(theirs, key=repr)
        assert (True, False, 1320, 450, None) in ours and (False, None, None, None, "garden") in ours
        assert all(type(row[0]) is bool for row in ours)  # booleans, not SQLite's 1 and 0
        assert await SqlCampaignRepository(session).preferences(resident_id) == Preferences(
            False, QuietHours(22 * 60, 7 * 60 + 30), frozenset({"sanitary", "garden"})
        )

        (item,) = await SqlInboxRepository(session).pending(NOW + timedelta(seconds=1), 10)
        assert item.update_id == 7 and item.payload == {
            "update_id": 7,
            "message": {"text": "你好", "n": [1, 2.5, None]},
        }
        assert await SqlInboxRepository(session).pending(NOW, 10, skip=[item.id]) == []

        ids = await SqlOutboxRepository(session).add_many(
            [(42, "out.text", {"text": "一"}), (42, "out.text", {"text": "二"})], now=NOW, priority=0
        )
        assert ids == sorted(ids) and len(set(ids)) == 2
        stored = (await session.execute(select(OUTBOX.c.payload, OUTBOX.c.created_at).order_by(OUTBOX.c.id))).all()
        assert [tuple(row) for row in stored] == [({"text": "一"}, NOW), ({"text": "二"}, NOW)]
        direct = await Direct(select(OUTBOX.c.payload, OUTBOX.c.created_at).order_by(OUTBOX.c.id)).run(session, {})
        assert direct.rows == [({"text": "一"}, NOW), ({"text": "二"}, NOW)]  # JSON read, UTC datetimes (aware)
        await uow.commit()


async def test_direct_write_is_undone_with_the_transaction_on_both_databases(engine: AsyncEngine) -> None:
    # On PostgreSQL the first statement opens the transaction (asyncpg alone would run it in autocommit).
    async with transactions(engine).scope() as uow:
        await _ADD_OUTBOX.run(uow.session, {"chat": 1, "payload": {"a": 1}, "now": NOW})
        await _ADD_OUTBOX.run(uow.session, {"chat": 2, "payload": {"a": 2}, "now": NOW})
        assert (await _COUNT_OUTBOX.run(uow.session, {})).rows == [(2,)]
        # left without commit
    assert await outbox_rows(engine) == 0


async def test_direct_write_in_a_unit_of_work_is_undone_with_its_savepoint_only(engine: AsyncEngine) -> None:
    tx = transactions(engine)
    async with tx.scope() as scope:
        await _ADD_OUTBOX.run(scope.session, {"chat": 1, "payload": {}, "now": NOW})
        async with SqlUnitOfWork(make_sessionmaker(engine)) as inner:  # joins the scope with a lazy savepoint
            assert inner.session is scope.session
            await _ADD_OUTBOX.run(inner.session, {"chat": 2, "payload": {}, "now": NOW})
            # left without commit: only its own write goes
        assert (await _COUNT_OUTBOX.run(scope.session, {})).rows == [(1,)]
        await scope.commit()
    assert await outbox_rows(engine) == 1


async def test_direct_read_sees_what_the_session_has_not_flushed(engine: AsyncEngine) -> None:
    count = Direct(select(func.count()).select_from(ResidentRow.__table__))
    async with transactions(engine).scope() as uow:
        uow.session.add(ResidentRow(telegram_id=43, display_name="小李", locale="zh_Hans", created_at=NOW))
        assert (await count.run(uow.session, {})).rows == [(1,)]


async def test_direct_statement_failing_raises_sqlalchemys_error_and_rolls_back(engine: AsyncEngine) -> None:
    async with transactions(engine).scope() as uow:
        await _ADD_OUTBOX.run(uow.session, {"chat": 1, "payload": {}, "now": NOW})
        with pytest.raises(IntegrityError):
            await _ADD_OUTBOX.run(uow.session, {"chat": None, "payload": {}, "now": NOW})  # chat_id NOT NULL
    assert await outbox_rows(engine) == 0
    async with transactions(engine).scope() as uow:  # the connection is usable afterwards
        await _ADD_OUTBOX.run(uow.session, {"chat": 3, "payload": {}, "now": NOW})
        await uow.commit()
    assert await outbox_rows(engine) == 1


async def test_inbox_update_marked_done_once_by_direct_statement(engine: AsyncEngine) -> None:
    tx = transactions(engine)
    async with tx.scope() as uow:
        await SqlInboxRepository(uow.session).add([{"update_id": 9, "message": {"text": "hi"}}], NOW)
        await uow.commit()
    async with tx.scope() as uow:
        row_id = (await uow.session.execute(select(INBOX.c.id))).scalar_one()
        inbox = SqlInboxRepository(uow.session)
        assert await inbox.start(row_id, NOW, sender=(5, 5)) is True
        assert await inbox.start(row_id, NOW, sender=(5, 5)) is False  # done already
        await uow.commit()
    async with engine.connect() as connection:
        status, payload = (await connection.execute(select(INBOX.c.status, INBOX.c.payload))).one()
        assert (status, payload) == ("done", {})
        assert (await connection.execute(text("SELECT count(*) FROM inbox_update"))).scalar_one() == 1


async def test_failing_scope_in_a_group_commit_takes_back_only_its_own_writes(engine: AsyncEngine) -> None:
    """SQLite commits concurrent scopes together, each in a savepoint of its own (PostgreSQL: a transaction each).
    A scope whose ORM flush fails (SQLAlchemy then rolls back by itself) or whose driver-sent statement fails loses
    its own writes only; the others' are durable."""
    tx = transactions(engine)
    async with tx.scope() as uow:
        uow.session.add(ResidentRow(telegram_id=42, display_name="王阿姨", locale="zh_Hans", created_at=NOW))
        await uow.commit()

    async def scope(n: int) -> None:
        async with tx.scope() as uow:
            await _ADD_OUTBOX.run(uow.session, {"chat": 100 + n, "payload": {"n": n}, "now": NOW})
            await asyncio.sleep(0)  # the others queue for the writer meanwhile
            if n % 3 == 1:  # the same Telegram id again: the flush fails
                uow.session.add(ResidentRow(telegram_id=42, display_name="重复", locale="zh_Hans", created_at=NOW))
                await uow.session.flush()
            if n % 3 == 2:
                await _ADD_OUTBOX.run(uow.session, {"chat": None, "payload": {}, "now": NOW})
            await uow.commit()

    results = await asyncio.gather(*(scope(n) for n in range(9)), return_exceptions=True)
    assert [type(r) for r in results] == [type(None) if n % 3 == 0 else IntegrityError for n in range(9)]
    async with engine.connect() as connection:
        chats = (await connection.execute(select(OUTBOX.c.chat_id).order_by(OUTBOX.c.chat_id))).scalars().all()
        residents = (await connection.execute(select(func.count()).select_from(ResidentRow.__table__))).scalar_one()
    assert chats == [100, 103, 106] and residents == 1


async def test_direct_statement_missing_a_value_is_refused_before_reaching_the_database(engine: AsyncEngine) -> None:
    async with transactions(engine).scope() as uow:
        with pytest.raises(ArgumentError, match="payload"):
            await _ADD_OUTBOX.run(uow.session, {"chat": 1, "now": NOW})
        await _ADD_OUTBOX.run(uow.session, {"chat": 1, "payload": {}, "now": NOW})
        await uow.commit()
    assert await outbox_rows(engine) == 1
