"""The inbox in-process: a redelivered update is handled once, a malformed one is set aside and the next one handled,
a failing handler leaves nothing half done, and replies wait in the outbox until the channel took them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import App, build_app
from bot.channels.gate import Kind, Verdict
from bot.channels.inbox import Inbox
from bot.config import DatabaseSettings, Settings
from bot.conversation.context import Ctx
from bot.conversation.replies import OutCallbackAnswer, OutDocument, OutEdit, OutMessage, OutPhoto, OutPoll
from bot.conversation.router import Route
from bot.runner import make_dispatcher
from storage.messaging_models import InboxRow, OutboxRow
from tests.support.points import FakeClock

USER = 7001
_messages = itertools.count(1)


class RecordingSender:
    """A channel that records what it was asked to send (and can refuse with an error)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.fail: Exception | None = None

    async def message(self, item: OutMessage) -> int:
        return self._record(item)

    async def edit(self, item: OutEdit) -> None:
        self._record(item)

    async def edit_caption(self, item: OutEdit) -> None:
        self._record(item)

    async def answer(self, item: OutCallbackAnswer) -> None:
        self._record(item)

    async def photo(self, item: OutPhoto) -> int:
        return self._record(item)

    async def document(self, item: OutDocument) -> int:
        return self._record(item)

    async def poll(self, item: OutPoll) -> tuple[str, int]:
        return "poll-1", self._record(item)

    def classify(self, error: BaseException) -> Verdict:
        return Verdict(Kind.FATAL)

    def _record(self, item: Any) -> int:
        if self.fail is not None:
            raise self.fail
        self.sent.append(item)
        return next(_messages)


def start_update(update_id: int, text: str = "/start", date: int = 1_765_000_000) -> dict[str, Any]:
    user = {"id": USER, "is_bot": False, "first_name": "小李", "language_code": "zh-hans"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": date,
            "chat": {"id": USER, "type": "private", "first_name": "小李"},
            "from": user,
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


@pytest.fixture
def db_path(tmp_path: Path, sqlite_template: Path) -> Path:
    path = tmp_path / "inbox.db"
    path.write_bytes(sqlite_template.read_bytes())
    return path


@pytest.fixture
async def app(db_path: Path) -> AsyncIterator[App]:
    path = db_path
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
    app = await build_app(settings, clock=FakeClock(), bot_username="sicheng_bot")  # the SQL dialog-state store
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼")])
    yield app
    await app.aclose()


def make_inbox(app: App, sender: RecordingSender) -> Inbox:
    return Inbox(app.core, app.uow, app.transactions, make_dispatcher(app, sender), lambda: datetime.now(UTC))


async def handle_all(inbox: Inbox) -> None:
    """Handle everything pending, as the worker loop would."""
    while await inbox.start_pending():
        await inbox.drain(10)
    await inbox.drain(10)


async def statuses(app: App) -> list[tuple[int, str]]:
    async with app.uow() as uow:
        rows = await uow.session.execute(select(InboxRow.update_id, InboxRow.status).order_by(InboxRow.id))
        return [(int(u), str(s)) for u, s in rows.all()]


async def test_redelivered_update_is_handled_once(app: App) -> None:
    sender = RecordingSender()
    inbox = make_inbox(app, sender)
    update = start_update(10)
    assert await inbox.take([update]) == 1
    assert await inbox.take([update]) == 0  # Telegram sent it again (not confirmed yet): kept once
    await handle_all(inbox)
    once = len(sender.sent)
    assert once >= 1
    await inbox.take([update])  # and once more after it was handled
    await handle_all(inbox)
    assert len(sender.sent) == once
    assert await statuses(app) == [(10, "done")]


async def test_reused_update_id_with_new_content_is_a_new_update(app: App) -> None:
    """Telegram picks ids afresh after a week without updates (and a restarted emulator starts at 1 again)."""
    sender = RecordingSender()
    inbox = make_inbox(app, sender)
    await inbox.take([start_update(1, date=1_765_000_000)])
    await handle_all(inbox)
    first = len(sender.sent)
    await inbox.take([start_update(1, text="/help", date=1_766_000_000)])
    await handle_all(inbox)
    assert len(sender.sent) > first
    assert await statuses(app) == [(1, "done"), (1, "done")]


async def test_malformed_update_is_set_aside_and_next_one_handled(app: App) -> None:
    sender = RecordingSender()
    inbox = make_inbox(app, sender)
    broken = {"update_id": 20, "message": {"message_id": 1, "chat": "not a chat", "from": {"id": USER}}}
    await inbox.take([broken, start_update(21)])
    await handle_all(inbox)
    assert await statuses(app) == [(20, "set_aside"), (21, "done")]
    assert sender.sent, "the update after the malformed one was answered"
    async with app.uow() as uow:
        kept = await uow.session.scalar(select(InboxRow.payload).where(InboxRow.update_id == 20))
    assert kept == broken  # kept for inspection


async def test_failing_handler_rolls_back_its_effects_and_apologises(app: App) -> None:
    """A handler that changed the dialog state and scheduled a job, then crashed: neither is kept."""
    sender = RecordingSender()
    inbox = make_inbox(app, sender)

    async def half_done(ctx: Ctx) -> list[Any]:
        await ctx.set_state("boom.step", answer=42)
        await ctx.services.jobs.schedule("report.remind", datetime.now(UTC), {"report": 1}, key="boom")
        raise RuntimeError("boom")

    app.router.commands["boom"] = Route(half_done, name="boom")
    await inbox.take([start_update(30, text="/boom")])
    await handle_all(inbox)
    assert await statuses(app) == [(30, "done")]
    assert await app.core.store.get(USER, USER) is None
    async with app.uow() as uow:
        assert await uow.jobs.due(datetime.now(UTC), 10, ["report.remind"]) == []
    assert any("30" in getattr(m, "text", "") for m in sender.sent), "the apology names the update"


async def test_reply_not_taken_by_telegram_stays_in_outbox_and_is_sent_later(app: App) -> None:
    sender = RecordingSender()
    inbox = make_inbox(app, sender)
    sender.fail = ConnectionError("network down")  # classified fatal by this fake: the row fails visibly
    await inbox.take([start_update(40)])
    await handle_all(inbox)
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(OutboxRow.status, OutboxRow.error))).all()
    assert rows and all(status == "failed" and "network down" in (error or "") for status, error in rows)


def test_status_command_shows_waiting_and_set_aside_updates(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import json

    from typer.testing import CliRunner

    from bot.cli import app as cli

    url = f"sqlite+aiosqlite:///{db_path}"

    async def fill() -> None:
        app = await build_app(Settings(database=DatabaseSettings(url=url)), bot_username="sicheng_bot")
        try:
            inbox = make_inbox(app, RecordingSender())
            await inbox.take(
                [{"update_id": 5, "message": {"message_id": 1, "chat": "?", "from": {"id": USER}}}, start_update(6)]
            )
            await inbox.start_pending()
            await inbox.drain(10)
            await inbox.take([start_update(7)])  # stored, not handled yet
        finally:
            await app.aclose()

    asyncio.run(fill())
    monkeypatch.setenv("SICHENG_DATABASE__URL", url)
    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["inbox"] == {"done": 1, "set_aside": 1, "pending": 1}
    assert figures["set_aside"][0]["update_id"] == 5 and "malformed" in figures["set_aside"][0]["reason"]
    assert figures["outbox"].get("sent", 0) >= 1
    human = CliRunner().invoke(cli, ["status"])
    assert "1 to handle" in human.output and "1 set aside" in human.output


def test_sandbox_on_a_taken_port_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from typer.testing import CliRunner

    from bot.cli import app as cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("SICHENG_SANDBOX__DATABASE", f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}")
        monkeypatch.setenv("SICHENG_FILES__ROOT", str(tmp_path / "media"))
        result = CliRunner().invoke(cli, ["sandbox", "--port", str(port)])
    assert result.exit_code == 1
    assert f"Port {port} on 127.0.0.1 is taken" in result.output and f"--port {port + 1}" in result.output
    assert "Traceback" not in result.output


async def test_one_persons_updates_are_handled_in_the_order_sent(app: App) -> None:
    """A photo still downloading is not overtaken by the next message of the same person."""
    import asyncio

    order: list[int] = []
    process = app.core.process

    async def recording(incoming: Any) -> Any:
        order.append(incoming.update_id)
        return await process(incoming)

    async def slow_download(incoming: Any) -> None:
        if incoming.photo_file_ids:
            await asyncio.sleep(0.3)

    app.core.process = recording  # type: ignore[method-assign]
    inbox = Inbox(
        app.core, app.uow, app.transactions, make_dispatcher(app, RecordingSender()), lambda: datetime.now(UTC),
        prefetch=slow_download,
    )  # fmt: skip
    photo = start_update(50, text="/help")
    photo["message"].pop("text"), photo["message"].pop("entities")
    photo["message"]["photo"] = [{"file_id": "f1", "file_unique_id": "u1", "width": 9, "height": 9}]
    await inbox.take([photo, start_update(51, text="/help"), start_update(52, text="/menu")])
    await handle_all(inbox)
    assert order == [50, 51, 52]


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("10.0.0.5", False)],
)
def test_sandbox_host_outside_this_machine_is_recognised_for_the_warning(host: str, local: bool) -> None:
    from bot.cli import _loopback

    assert _loopback(host) is local


async def test_handled_update_and_sent_reply_keep_no_content(app: App) -> None:
    """What a person sent and what the bot answered them are not kept once handled and sent (data minimisation:
    an anonymous survey's answer must not stay in the inbox next to its sender); a redelivery is still caught."""
    sender = RecordingSender()
    inbox = make_inbox(app, sender)
    update = start_update(30, text="/help")
    await inbox.take([update])
    await handle_all(inbox)
    assert sender.sent, "the update was answered"
    async with app.uow() as uow:
        kept = (await uow.session.execute(select(InboxRow.payload, InboxRow.user_id))).all()
        replies = (await uow.session.execute(select(OutboxRow.kind, OutboxRow.status, OutboxRow.payload))).all()
    assert [tuple(row) for row in kept] == [({}, USER)]
    assert replies and all(status == "sent" and payload == {} for _, status, payload in replies)
    assert await inbox.take([update]) == 0  # the digest still recognises the redelivery
    await handle_all(inbox)
    assert await statuses(app) == [(30, "done")]


async def test_reply_that_failed_keeps_its_content_for_the_operator(app: App) -> None:
    sender = RecordingSender()
    sender.fail = RuntimeError("refused")
    inbox = make_inbox(app, sender)
    await inbox.take([start_update(31, text="/help")])
    await handle_all(inbox)
    async with app.uow() as uow:
        rows = (await uow.session.execute(select(OutboxRow.status, OutboxRow.payload))).all()
    assert rows and all(status == "failed" and payload for status, payload in rows)
