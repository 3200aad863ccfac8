"""The in-process caches (resident with roles, communities, dialog state) stay exact across processes.

Each test lets the bot's process cache what an update reads, changes it behind the bot's back — the CLI in another
process, a plain SQL statement through another engine, a second worker — and checks that the very next update
handled through the inbox sees the change. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.app import App, build_app
from bot.channels.inbox import Inbox
from bot.config import DatabaseSettings, Settings
from bot.conversation.context import Ctx
from bot.conversation.replies import OutMessage, SendText
from bot.conversation.router import Route
from bot.runner import make_dispatcher
from tests.integration.test_inbox import RecordingSender
from tests.support.points import FakeClock

USER = 8101
CHAT = USER
_updates = itertools.count(1)


def command(text_: str) -> dict[str, Any]:
    update_id = next(_updates)
    user = {"id": USER, "is_bot": False, "first_name": "小周", "language_code": "zh-hans"}
    entities = [{"type": "bot_command", "offset": 0, "length": len(text_.split()[0])}] if text_[0] == "/" else []
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_765_000_000,
            "chat": {"id": CHAT, "type": "private", "first_name": "小周"},
            "from": user,
            "text": text_,
            "entities": entities,
        },
    }


def tap(app: App, data: str) -> dict[str, Any]:
    update_id = next(_updates)
    user = {"id": USER, "is_bot": False, "first_name": "小周", "language_code": "zh-hans"}
    message = {"message_id": 5, "date": 1, "chat": {"id": CHAT, "type": "private"}, "text": "菜单"}
    query = {"id": str(update_id), "from": user, "chat_instance": "c", "data": data, "message": message}
    return {"update_id": update_id, "callback_query": query}


class Worker:
    """One bot process: an app and its inbox; ``send`` handles updates as the worker loop would."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.sender = RecordingSender()
        dispatcher = make_dispatcher(app, self.sender)
        self.inbox = Inbox(app.core, app.uow, app.transactions, dispatcher, lambda: datetime.now(UTC))

    async def send(self, update: dict[str, Any]) -> list[str]:
        """Handle one update through the inbox; the texts of the messages sent back."""
        before = len(self.sender.sent)
        await self.inbox.take([update])
        while await self.inbox.start_pending():
            await self.inbox.drain(10)
        await self.inbox.drain(10)
        return [m.text for m in self.sender.sent[before:] if isinstance(m, OutMessage)]

    async def settings_page(self) -> str:
        (page,) = await self.send(tap(self.app, self.app.router.codec.encode("menu", "open", "settings")))
        return page


async def make_app(db_url: str) -> App:
    return await build_app(Settings(database=DatabaseSettings(url=db_url)), clock=FakeClock(), bot_username="bot")


@pytest.fixture
async def worker(db_url: str) -> AsyncIterator[Worker]:
    app = await make_app(db_url)
    community = await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    await app.services.residents.give_consent(USER, "小周", "zh_Hans")
    await app.services.residents.join(USER, community.id, community.buildings[0].id)
    yield Worker(app)
    await app.aclose()


@pytest.fixture
async def elsewhere(db_url: str) -> AsyncIterator[AsyncEngine]:
    """Another process's connection to the same database: plain SQL, none of the bot's code."""
    engine = create_async_engine(db_url)
    yield engine
    await engine.dispose()


def rendered(app: App, template: str, **context: Any) -> str:
    return app.renderer.render("zh_Hans", template, context)


async def sicheng_cli(db_url: str, *args: str) -> str:
    """Run the ``sicheng`` command line in its own process against the same database."""
    env = {**os.environ, "SICHENG_DATABASE__URL": db_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from bot.cli import main; main()",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_role_granted_by_the_cli_applies_to_the_very_next_update(worker: Worker, db_url: str) -> None:
    forbidden = rendered(worker.app, "errors/forbidden", role="organiser")
    allowed = rendered(worker.app, "group/link_in_group")
    assert await worker.send(command("/linkgroup")) == [forbidden]  # the profile is cached now
    assert "granted" in await sicheng_cli(db_url, "admin", "grant", str(USER), "organiser", "--community", "demo")
    assert await worker.send(command("/linkgroup")) == [allowed]
    assert "revoked" in await sicheng_cli(db_url, "admin", "revoke", str(USER), "organiser", "--community", "demo")
    assert await worker.send(command("/linkgroup")) == [forbidden]


async def test_building_changed_elsewhere_shows_on_the_next_settings_page(
    worker: Worker, elsewhere: AsyncEngine
) -> None:
    assert "1号楼" in await worker.settings_page()
    async with elsewhere.begin() as conn:
        await conn.execute(
            text("UPDATE resident SET building_id = (SELECT id FROM building WHERE code = '2') WHERE telegram_id = :u"),
            {"u": USER},
        )
    page = await worker.settings_page()
    assert "2号楼" in page and "1号楼" not in page


async def test_community_renamed_elsewhere_shows_on_the_next_update(worker: Worker, elsewhere: AsyncEngine) -> None:
    assert "示范社区" in await worker.settings_page()
    async with elsewhere.begin() as conn:
        await conn.execute(text("UPDATE community SET name = '幸福社区' WHERE code = 'demo'"))
    assert "幸福社区" in await worker.settings_page()
    async with elsewhere.begin() as conn:  # a building renamed is a change of the communities too
        await conn.execute(text("UPDATE building SET name = '一号楼' WHERE code = '1'"))
    assert "一号楼" in await worker.settings_page()


async def test_dialog_state_deleted_elsewhere_is_not_resumed(worker: Worker, elsewhere: AsyncEngine) -> None:
    app, steps = worker.app, []

    async def ask(ctx: Ctx) -> list[Any]:
        await ctx.set_state("test.waiting")
        return [SendText("group/link_in_group")]

    async def answer(ctx: Ctx) -> list[Any]:
        steps.append(ctx.incoming.text)
        await ctx.clear_state()
        return []

    app.router.commands["ask"] = Route(ask, name="ask")
    app.router.steps["test.waiting"] = Route(answer, name="test.waiting")
    await worker.send(command("/ask"))
    await worker.send(command("first answer"))  # the state came from the cache (written by this process)
    assert steps == ["first answer"]
    await worker.send(command("/ask"))
    async with elsewhere.begin() as conn:
        await conn.execute(text("DELETE FROM dialog_state WHERE user_id = :u"), {"u": USER})
    await worker.send(command("second answer"))
    assert steps == ["first answer"], "the state deleted by another process is not resumed"


async def test_rolled_back_handler_leaves_the_cache_correct(worker: Worker) -> None:
    app = worker.app
    assert "语言：中文" in await worker.settings_page()

    async def half_done(ctx: Ctx) -> list[Any]:
        changed = await ctx.services.residents.set_locale(ctx.user_id, "en")  # read back inside the transaction
        assert changed.locale == "en"
        raise RuntimeError("boom")

    app.router.commands["boom"] = Route(half_done, name="boom")
    await worker.send(command("/boom"))
    assert "语言：中文" in await worker.settings_page(), "the language change was rolled back"
    profile = await app.services.residents.profile(USER)
    assert profile is not None and profile.locale == "zh_Hans"


async def test_writes_by_plain_sql_change_the_revisions(worker: Worker, elsewhere: AsyncEngine) -> None:
    """Triggers, not the bot's code, change the revisions: any writer keeps the caches exact."""
    await worker.send(command("/ask_nothing"))

    async def revisions() -> tuple[Any, ...]:
        async with elsewhere.connect() as conn:
            row = await conn.execute(
                text(
                    "SELECT (SELECT rev FROM resident WHERE telegram_id = :u),"
                    " (SELECT rev FROM cache_rev WHERE name = 'communities')"
                ),
                {"u": USER},
            )
            return tuple(row.one())

    seen = [await revisions()]
    statements = [
        "UPDATE resident SET locale = 'en' WHERE telegram_id = :u",
        "INSERT INTO role_grant (resident_id, role) SELECT id, 'volunteer' FROM resident WHERE telegram_id = :u",
        "DELETE FROM role_grant WHERE resident_id = (SELECT id FROM resident WHERE telegram_id = :u)",
        "UPDATE community SET timezone = 'Asia/Urumqi'",
        "INSERT INTO building (community_id, code, name) SELECT id, '9', '9号楼' FROM community",
    ]
    for statement in statements:
        async with elsewhere.begin() as conn:
            await conn.execute(text(statement), {"u": USER})
        seen.append(await revisions())
    residents = [s[0] for s in seen[:4]]
    communities = [s[1] for s in seen[3:]]
    assert None not in residents and len(set(residents)) == 4, "each write of the resident or its roles"
    assert None not in communities and len(set(communities)) == 3, "each write of a community or a building"
    async with elsewhere.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO dialog_state (user_id, chat_id, name, data, expires_at)"
                " VALUES (:u, :u, 'x', '{}', CURRENT_TIMESTAMP)"
            ),
            {"u": USER},
        )
        first = await conn.scalar(text("SELECT rev FROM dialog_state WHERE user_id = :u"), {"u": USER})
        await conn.execute(text("UPDATE dialog_state SET name = 'y' WHERE user_id = :u"), {"u": USER})
        second = await conn.scalar(text("SELECT rev FROM dialog_state WHERE user_id = :u"), {"u": USER})
    assert first is not None and second is not None and first != second


async def test_two_workers_on_one_database_stay_exact(worker: Worker, db_url: str) -> None:
    """A change made by one worker is seen by the other's very next update (the other had it cached)."""
    other_app = await make_app(db_url)
    try:
        other = Worker(other_app)
        assert "1号楼" in await worker.settings_page()
        assert "1号楼" in await other.settings_page()
        community = await other_app.services.communities.by_code("demo")
        assert community is not None
        building = community.building("2")
        assert building is not None
        await other.send(tap(other_app, other_app.router.codec.encode("set", "setbld", community.id, building.id)))
        assert "2号楼" in await worker.settings_page()
        await worker.send(tap(worker.app, worker.app.router.codec.encode("set", "setlang", "en")))
        assert "English" in await other.settings_page()
    finally:
        await other_app.aclose()


# ---- the transactions the caches rely on ------------------------------------------------------------------------


async def test_concurrent_scopes_keep_their_own_effects_when_others_fail(worker: Worker) -> None:
    """On SQLite scopes queued for the writer share one transaction (group commit), each in a savepoint of its own;
    on PostgreSQL each is its own transaction. Either way a failing scope, or a unit of work left without commit,
    takes back its own writes and nothing else's, and a committed scope's writes are durable once commit returns."""
    app = worker.app
    at = datetime.now(UTC)

    async def scope(n: int) -> int:
        async with app.transactions.scope() as uow:
            await uow.audit.add(at, n, f"scope{n}", True, {})
            async with app.uow() as inner:  # a service's unit of work inside the update's transaction
                await inner.audit.add(at, n, f"inner{n}", True, {})
                if n % 3 == 0:
                    await inner.commit()
            await asyncio.sleep(0)  # let the others queue for the writer
            if n % 4 == 1:
                raise RuntimeError("boom")
            if n % 5 == 2:
                return n  # left without commit
            await uow.commit()
        return n

    results = await asyncio.gather(*(scope(n) for n in range(12)), return_exceptions=True)
    assert [isinstance(r, RuntimeError) for r in results] == [n % 4 == 1 for n in range(12)]
    async with app.uow() as uow:
        kept = {row.action for row in await uow.audit.recent(100)}
    committed = [n for n in range(12) if n % 4 != 1 and n % 5 != 2]
    assert kept == {f"scope{n}" for n in committed} | {f"inner{n}" for n in committed if n % 3 == 0}
