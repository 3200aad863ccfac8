"""Storage on both backends: migrations from empty, repositories, unit of work, dialog state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from bot.conversation.state import DialogState
from bot.domain.errors import InvalidInput, NotFound
from bot.domain.roles import Role
from bot.services.access import AccessService
from bot.services.communities import CommunityService
from bot.services.residents import ResidentService
from storage.db import current_revision, head_revision, make_engine, make_sessionmaker, upgrade_async
from storage.state_store import SqlStateStore
from storage.uow import uow_factory
from tests.conftest import PG_ADMIN_URL


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def services(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    uow = uow_factory(sessions)
    clock = Clock()
    yield ResidentService(uow, clock), CommunityService(uow), AccessService(uow, clock), sessions, clock
    await engine.dispose()


async def test_migrations_from_empty_reach_head_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {
        "community",
        "building",
        "resident",
        "role_grant",
        "group_chat",
        "dialog_state",
        "audit_log",
    } <= tables
    assert await current_revision(engine) == head_revision()
    await engine.dispose()


@pytest.mark.postgres
async def test_migrations_from_empty_reach_head_on_postgres() -> None:
    from tests.conftest import skip_or_fail
    from tests.support.pg import create_database, drop_database

    name = f"sicheng_mig_{uuid.uuid4().hex[:8]}"
    try:
        url = await create_database(PG_ADMIN_URL, name)
    except OSError as error:
        skip_or_fail(f"PostgreSQL not reachable: {error}")
        return
    try:
        await upgrade_async(url)
        engine = make_engine(url)
        assert await current_revision(engine) == head_revision()
        await engine.dispose()
        await upgrade_async(url, "base")  # downgrades work too
        await upgrade_async(url)
    finally:
        await drop_database(PG_ADMIN_URL, name)


async def test_community_with_buildings_round_trips(services) -> None:  # type: ignore[no-untyped-def]
    _, communities, *_ = services
    created = await communities.add("east-1", "东湖社区", [("1", "1栋"), ("2A", "2A栋")])
    assert [b.code for b in created.buildings] == ["1", "2A"]
    await communities.add_building("east-1", "3", "3栋")
    again = await communities.by_code("east-1")
    assert again is not None and [b.name for b in again.buildings] == ["1栋", "2A栋", "3栋"]


async def test_duplicate_or_bad_community_code_is_refused(services) -> None:  # type: ignore[no-untyped-def]
    _, communities, *_ = services
    await communities.add("demo", "示范社区")
    with pytest.raises(InvalidInput):
        await communities.add("demo", "另一个")
    with pytest.raises(InvalidInput):
        await communities.add("Bad_Code", "下划线不行")  # '_' would break the c<community>_b<building> link


async def test_consent_join_and_delete_keep_anonymous_row(services) -> None:  # type: ignore[no-untyped-def]
    residents, communities, access, _, _ = services
    community = await communities.add("demo", "示范社区", [("1", "1号楼")])
    await residents.set_locale(77, "en")
    await residents.give_consent(77, "Wang", "en")
    joined = await residents.join(77, community.id, community.buildings[0].id)
    assert joined.is_registered
    await access.grant(77, Role.VOLUNTEER, "demo", actor=1)
    assert await residents.delete(77)
    assert await residents.profile(77) is None
    data = await residents.my_data(77)
    assert data == {}


async def test_join_unknown_building_is_refused(services) -> None:  # type: ignore[no-untyped-def]
    residents, communities, *_ = services
    community = await communities.add("demo", "示范社区", [("1", "1号楼")])
    await residents.give_consent(5, "Li", "zh_Hans")
    with pytest.raises(NotFound):
        await residents.join(5, community.id, 99999)


async def test_roles_grant_check_revoke_and_audit(services) -> None:  # type: ignore[no-untyped-def]
    residents, communities, access, sessions, _ = services
    community = await communities.add("demo", "示范社区")
    await residents.give_consent(9, "Zhao", "zh_Hans")
    await residents.join(9, community.id, None)
    assert not await access.check(9, Role.ORGANISER, "linkgroup")
    assert await access.grant(9, Role.ORGANISER, "demo", actor=None)
    assert not await access.grant(9, Role.ORGANISER, "demo", actor=None)  # already held
    assert await access.check(9, Role.ORGANISER, "linkgroup")
    assert await access.check(9, Role.GRID_WORKER, "triage")  # organisers act as grid workers
    staff = await access.staff_of(community.id, Role.GRID_WORKER)
    assert [r.telegram_id for r in staff] == [9]
    assert await access.revoke(9, Role.ORGANISER, "demo", actor=None)
    assert not await access.check(9, Role.ORGANISER, "linkgroup")
    from storage.repositories import SqlAuditRepository

    async with sessions() as session:
        entries = await SqlAuditRepository(session).recent()
    refused = [e for e in entries if not e.allowed]
    assert len(refused) == 2 and all(e.actor_telegram_id == 9 for e in refused)


async def test_dialog_state_survives_new_store_and_expires(services) -> None:  # type: ignore[no-untyped-def]
    *_, sessions, clock = services
    store = SqlStateStore(sessions, clock)
    await store.set(1, 1, DialogState("report.photo", {"category": "litter"}), ttl=60)
    assert await SqlStateStore(sessions, clock).get(1, 1) == DialogState("report.photo", {"category": "litter"})
    await store.set(1, 1, DialogState("report.place", {"n": 2}), ttl=60)
    assert (await store.get(1, 1)) == DialogState("report.place", {"n": 2})
    clock.now += timedelta(seconds=61)
    assert await store.get(1, 1) is None
    assert await store.purge_expired() == 1


async def test_last_seen_is_written_at_most_hourly(services) -> None:  # type: ignore[no-untyped-def]
    residents, _, _, _, clock = services
    await residents.give_consent(3, "Sun", "zh_Hans")
    first = await residents.profile(3)
    clock.now += timedelta(minutes=10)
    second = await residents.profile(3)
    assert first is not None and second is not None
    clock.now += timedelta(hours=1)
    await residents.profile(3)
    third = await residents.profile(3)
    assert third is not None and third.last_seen_at == clock.now
    assert second.last_seen_at == first.last_seen_at
