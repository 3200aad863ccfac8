"""Several workers (PostgreSQL + Redis): an intake and workers in one process, each with its own App."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot import workers
from bot.channels import redis_locks
from bot.sandbox.core import DEFAULT_TOKEN
from tests.support.workers import Cuttable, cluster

pytestmark = pytest.mark.postgres


async def test_residents_writing_at_once_are_answered_once_each_in_order(pg_database: str, tmp_path: Path) -> None:
    """Through the webhook intake: updates stored, announced, spread over three workers."""
    async with cluster(pg_database, tmp_path, residents=30, workers=3, webhook=True) as box:
        people = [box.person(uid) for uid in box.residents]
        commands = ["/points", "/help", "/mydata", "/points"]
        for person in people:
            for command in commands:
                person.send(command)

        async def answered(person_id: int) -> None:
            person = box.person(person_id)
            for _ in range(300):
                if len(person.bot_messages()) >= len(commands):
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"{person_id}: {len(person.bot_messages())} answers")

        await asyncio.gather(*(answered(p.user_id) for p in people))
        assert box.emulator.calls(method="getUpdates") == []  # all came by webhook
        rows = await _sql(box, "SELECT user_id, id, status, handled_at FROM inbox_update ORDER BY user_id, id")
        assert {r[2] for r in rows} == {"done"}
        by_user: dict[int, list[object]] = {}
        for user_id, _, _, handled_at in rows:
            by_user.setdefault(user_id, []).append(handled_at)
        for user_id, times in by_user.items():
            assert times == sorted(times), f"{user_id}: handled out of order"
        # One answer per command: the points balance twice, and nothing more.
        for person in people:
            texts = [str(m.get("text") or "") for m in person.bot_messages()]
            assert len(texts) == len(commands), texts
            assert texts[0] == texts[3]


async def _sql(box: object, query: str) -> list[tuple[object, ...]]:
    from sqlalchemy import text

    app = box.app  # type: ignore[attr-defined]
    async with app.engine.connect() as connection:
        return [tuple(r) for r in (await connection.execute(text(query))).fetchall()]


async def test_redis_down_updates_wait_and_are_answered_when_it_is_back(
    pg_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Announcements made while Redis was away are lost; the leader's sweep re-announces the rows, and a lock whose
    # release Redis did not hear lapses. Their production timings (rows 20 s old looked for every 5 s, locks lapsing
    # after 15 s) are shortened so the test waits seconds, not half a minute.
    monkeypatch.setattr(workers, "SWEEP_AGE", timedelta(seconds=4))
    monkeypatch.setattr(workers, "SWEEP_EVERY", 1.0)
    monkeypatch.setattr(redis_locks, "LEASE", 5.0)
    proxy = Cuttable()
    await proxy.start()
    async with cluster(pg_database, tmp_path, residents=5, workers=2, redis_url=proxy.url) as box:
        first = box.person(box.residents[0])
        first.send("/points")
        await first.wait_text("我的文明积分", within=30)
        await proxy.cut()
        people = [box.person(uid) for uid in box.residents]
        for person in people:
            person.send("/help")
        await asyncio.sleep(3)
        stored = await _sql(box, "SELECT COUNT(*) FROM inbox_update WHERE status = 'pending'")
        assert stored[0][0] >= len(people)  # taken in and kept while Redis is away
        assert any("Redis unavailable" in r.getMessage() for r in caplog.records)
        await proxy.start()
        for person in people:
            await person.wait(lambda m: "帮助" in str(m.get("text")), within=90, what="help")
        rows = await _sql(box, "SELECT status, COUNT(*) FROM inbox_update GROUP BY status")
        assert set(dict(rows)) == {"done"}  # nothing lost, nothing set aside


async def test_worker_without_redis_refuses_to_start_with_a_clear_error(pg_database: str) -> None:
    result = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from bot.cli import main; main()", "worker",
        env={**os.environ, "SICHENG_TELEGRAM__TOKEN": DEFAULT_TOKEN, "SICHENG_DATABASE__URL": pg_database,
             "SICHENG_REDIS__URL": "redis://127.0.0.1:1/0"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(result.communicate(), 120)
    assert result.returncode == 1
    message = err.decode()
    assert "Redis at redis://127.0.0.1:1/0 cannot be reached" in message, message
    assert "Traceback" not in message
    assert DEFAULT_TOKEN not in message + out.decode()


async def test_worker_on_sqlite_refuses_to_start_naming_postgresql(tmp_path: Path) -> None:
    result = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from bot.cli import main; main()", "worker",
        env={**os.environ, "SICHENG_TELEGRAM__TOKEN": DEFAULT_TOKEN,
             "SICHENG_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(result.communicate(), 120)
    assert result.returncode == 1
    assert "Several workers need PostgreSQL" in err.decode()


async def test_role_and_building_changed_in_one_worker_are_seen_by_the_next_update_in_any(
    pg_database: str, tmp_path: Path
) -> None:
    """Each worker caches residents; a change written by one worker (or the CLI) must be what the next update sees,
    whichever worker handles it. Repeated so both workers have the resident cached and handle the updates."""
    from bot.domain.roles import Role
    from bot.sandbox.demo import COMMUNITY

    async with cluster(pg_database, tmp_path, residents=2, workers=2) as box:
        me = box.person(box.residents[0])
        for _ in range(4):  # warm both workers' caches
            version = me.send("/settings")
            await me.wait_text("楼栋：", after=version, within=30)
        community = await box.app.services.communities.by_code(COMMUNITY)
        assert community is not None
        for round_ in range(6):
            writer = box.workers[round_ % 2].app
            organiser = round_ % 2 == 0
            change = writer.services.access.grant if organiser else writer.services.access.revoke
            assert await change(me.user_id, Role.ORGANISER, COMMUNITY, actor=None)
            version = me.send("/stats")
            reply = await me.wait(lambda m: True, after=version, within=30, what="/stats")
            refused = "只有社区工作人员" in str(reply.get("text"))
            assert refused is not organiser, f"round {round_}: organiser={organiser} but {reply.get('text')!r}"

            building = community.buildings[round_ % len(community.buildings)]
            await writer.services.residents.join(me.user_id, community.id, building.id)
            version = me.send("/settings")
            page = await me.wait_text("楼栋：", after=version, within=30)
            assert f"楼栋：{building.name}" in str(page.get("text")), f"round {round_}: {page.get('text')!r}"
