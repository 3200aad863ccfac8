"""Metrics and structured logs as an operator sees them: counters move when updates are handled through the inbox,
``GET /metrics`` serves Prometheus' text format with the database figures, and JSON log lines name the update."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import logs, metrics
from bot.app import App, build_app
from bot.channels.gate import Kind, SendGate, Verdict
from bot.config import DatabaseSettings, MetricsSettings, Settings
from bot.conversation.context import Ctx
from bot.conversation.core import Deferred
from bot.conversation.router import Route
from bot.domain.notices import Notice
from tests.conftest import sqlite_copy
from tests.integration.test_inbox import USER, RecordingSender, handle_all, make_inbox, start_update
from tests.support.outbox import queue_notices
from tests.support.points import FakeClock

TOKEN = "123456789:AAH-metrics-test-token-secret"


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def updates(kind: str, outcome: str) -> float:
    return sample("sicheng_updates_total", kind=kind, outcome=outcome)


@pytest.fixture
def metrics_db(tmp_path: Path, sqlite_template: Path) -> str:
    return sqlite_copy(sqlite_template, tmp_path / "metrics.db")


@pytest.fixture
async def app(metrics_db: str) -> AsyncIterator[App]:
    built = await build_app(
        Settings(database=DatabaseSettings(url=metrics_db)),
        clock=FakeClock(),
        bot_username="sicheng_bot",
    )
    await built.services.communities.add("demo", "示范社区", [("1", "1号楼")])
    yield built
    await built.aclose()


def _configured(fmt: str) -> Iterator[io.StringIO]:
    """The handler ``sicheng`` installs, writing to a buffer; the root logger as it was afterwards."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = logs.configure(logging.INFO, [TOKEN], fmt=fmt, stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)  # type: ignore[arg-type]
        root.setLevel(level)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    yield from _configured("json")


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---- counters ------------------------------------------------------------------------------------------------------


async def test_handled_updates_are_counted_by_kind_and_outcome(app: App, json_log: io.StringIO) -> None:
    async def broken(ctx: Ctx) -> list[Any]:
        raise RuntimeError("boom")

    async def not_yet(ctx: Ctx) -> list[Any]:
        raise Deferred(60, "the poll is not stored yet")

    app.router.commands["boom"] = Route(broken, name="boom")
    app.router.commands["later"] = Route(not_yet, name="later")
    ok, error, deferred = updates("command", "ok"), updates("command", "error"), updates("command", "deferred")
    timed, sent = sample("sicheng_update_seconds_count"), sample("sicheng_outbox_sent_total")
    inbox = make_inbox(app, RecordingSender())
    await inbox.take([start_update(1), start_update(2, text="/boom"), start_update(3, text="/later")])
    await handle_all(inbox)
    assert updates("command", "ok") == ok + 1
    assert updates("command", "error") == error + 1  # the handler failed: the person got an apology
    assert updates("command", "deferred") == deferred + 1
    assert sample("sicheng_update_seconds_count") == timed + 2  # committed ones only
    assert sample("sicheng_outbox_sent_total") >= sent + 2  # the welcome and the apology reached "Telegram"


async def test_refused_sends_are_counted_as_failed(app: App) -> None:
    sender = RecordingSender()
    sender.fail = ConnectionError("refused by the fake")  # classified as a refusal by Telegram (fatal)
    failed = sample("sicheng_outbox_failed_total", reason="telegram")
    await handle_all_of(app, sender, [start_update(10)])
    assert sample("sicheng_outbox_failed_total", reason="telegram") > failed


async def handle_all_of(app: App, sender: RecordingSender, updates_: list[dict[str, Any]]) -> None:
    inbox = make_inbox(app, sender)
    await inbox.take(updates_)
    await handle_all(inbox)


async def test_gate_counts_429_and_403() -> None:
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)

    gate = SendGate(sleep=nap)
    answers: list[Exception | str] = [RuntimeError("429"), "ok"]

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def flood(_: BaseException) -> Verdict:
        return Verdict(Kind.RETRY_AFTER, 3.0)

    before_429, before_403 = sample("sicheng_telegram_429_total"), sample("sicheng_telegram_403_total")
    assert await gate.run("sendMessage", 5, call, flood, "same") == "ok"
    with pytest.raises(RuntimeError):
        await gate.run("sendMessage", 5, _raise, lambda _: Verdict(Kind.FORBIDDEN), "same")
    assert sample("sicheng_telegram_429_total") == before_429 + 1
    assert sample("sicheng_telegram_403_total") == before_403 + 1


async def _raise() -> str:
    raise RuntimeError("403 blocked")


# ---- the endpoint --------------------------------------------------------------------------------------------------


async def test_metrics_endpoint_serves_text_format_with_database_figures(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "REFRESH_SECONDS", 0.0)  # read the database on this scrape
    inbox = make_inbox(app, RecordingSender())
    await inbox.take([start_update(20), start_update(21, text="/help")])  # stored, not handled
    await queue_notices(app, [Notice(USER, "errors/generic"), Notice(USER, "errors/generic")])
    await app.services.jobs.schedule("report.remind", datetime.now(UTC) - timedelta(minutes=3), {"report": 1})
    settings = Settings(metrics=MetricsSettings(port=free_port()))
    server = await metrics.start_metrics_server(settings, app.uow)
    try:
        assert server.url is not None
        async with aiohttp.ClientSession() as session, session.get(server.url) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
    finally:
        await server.stop()
    values = _parse(text)
    for name in (
        'sicheng_updates_total{kind="callback",outcome="ok"}',
        'sicheng_update_seconds_bucket{le="0.005"}',
        "sicheng_update_seconds_count",
        "sicheng_outbox_sent_total",
        'sicheng_outbox_failed_total{reason="render"}',
        "sicheng_telegram_429_total",
        "sicheng_telegram_403_total",
    ):
        assert name in values, name
    assert values["sicheng_inbox_pending"] == 2
    assert values['sicheng_outbox_backlog{priority="notice"}'] == 2
    assert values['sicheng_outbox_backlog{priority="bulk"}'] == 0
    assert 170 < values["sicheng_job_lag_seconds"] < 600  # due three minutes ago, never run


async def test_metrics_are_off_by_default() -> None:
    server = await metrics.start_metrics_server(Settings())
    assert server.url is None
    await server.stop()


async def test_database_figures_are_read_at_most_every_few_seconds(app: App) -> None:
    assert await metrics.refresh_figures(app.uow, every=0.0)
    assert not await metrics.refresh_figures(app.uow)  # just read: the endpoint answers from memory


def _parse(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


# ---- structured logs -----------------------------------------------------------------------------------------------


async def test_json_log_lines_name_the_update_being_handled(app: App, json_log: io.StringIO) -> None:
    chatty = logging.getLogger("handlers.chatty")

    async def talk(ctx: Ctx) -> list[Any]:
        chatty.info("handling a command with %s", TOKEN)
        await asyncio.sleep(0)
        try:
            raise ValueError(f"https://api.telegram.org/bot{TOKEN}/getMe failed")
        except ValueError:
            chatty.exception("and failing")
        return []

    app.router.commands["talk"] = Route(talk, name="talk")
    chatty.info("before any update")
    await handle_all_of(app, RecordingSender(), [start_update(40, text="/talk")])
    lines = json_lines(json_log)  # every line is one JSON object
    assert TOKEN not in json_log.getvalue() and TOKEN.split(":")[1] not in json_log.getvalue()
    mine = [line for line in lines if line["logger"] == "handlers.chatty"]
    assert [m["message"] for m in mine] == ["before any update", f"handling a command with {logs.MASK}", "and failing"]
    assert "update_id" not in mine[0] and "user_id" not in mine[0]
    assert all(m["update_id"] == 40 and m["user_id"] == USER for m in mine[1:])
    assert mine[2]["level"] == "ERROR" and "ValueError" in mine[2]["exception"] and "/bot***/" in mine[2]["exception"]
    assert {"time", "level", "logger", "message"} <= set(mine[0])
    datetime.fromisoformat(mine[0]["time"])


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        logs.configure("INFO", fmt="xml", stream=io.StringIO())
