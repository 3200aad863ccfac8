"""Operators at the command line: ``sicheng notices send|list|cancel|wait`` and ``sicheng outbox list|retry|cancel``
(typer's CliRunner on SQLite), and the outbox's operator queries on both backends."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import bot.cli
from bot.app import App, build_app
from bot.cli import app as cli
from bot.config import DatabaseSettings, Settings
from bot.conversation.replies import Outgoing, OutMessage
from bot.domain.campaigns import Audience, AudienceKind, Campaign, CampaignStatus, Draft
from bot.domain.errors import InvalidInput
from bot.domain.messaging import OutboxItem, OutboxStatus
from bot.domain.outbox_admin import ADMIN_BATCH, Selection
from bot.domain.roles import Role
from bot.services.outbox_admin import NoticeAdmin, OutboxAdmin
from storage.campaign_models import CampaignRow
from storage.models import AuditLogRow
from storage.uow import SqlUnitOfWork
from tests.conftest import sqlite_copy
from tests.support.campaigns import populate
from tests.support.outbox import FakeTelegram, dispatch_all, outbox_rows
from tests.support.points import FakeClock

T = TypeVar("T")
SHANGHAI = ZoneInfo("Asia/Shanghai")
BUILDING_1 = [1000, 1001, 1002, 1003]
BUILDING_2 = [2000, 2001, 2002]


def _settings(url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=url))


def on_app(url: str, work: Callable[[App], Awaitable[T]]) -> T:
    """Run ``work`` against the test database with an app of its own (outside the CLI's event loop)."""

    async def main() -> T:
        app = await build_app(_settings(url), bot_username="sicheng_bot")
        try:
            return await work(app)
        finally:
            await app.aclose()

    return asyncio.run(main())


@pytest.fixture
def cli_db(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database with community "demo": residents 1000–1003 in building 1, 2000–2002 in building 2."""
    url = sqlite_copy(sqlite_template, tmp_path / "cli.db")
    monkeypatch.setenv("SICHENG_DATABASE__URL", url)

    async def fill(app: App) -> None:
        await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
        now = datetime.now(UTC)
        await populate(app, BUILDING_1, now, building="1")
        await populate(app, BUILDING_2, now, building="2", locale="en")

    on_app(url, fill)
    return url


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input)


def campaigns(url: str) -> list[Campaign]:
    async def work(app: App) -> list[Campaign]:
        async with app.uow() as uow:
            assert isinstance(uow, SqlUnitOfWork)
            ids = (await uow.session.scalars(select(CampaignRow.id).order_by(CampaignRow.id))).all()
            found = [await uow.campaigns.get(i) for i in ids]
        return [c for c in found if c is not None]

    return on_app(url, work)


def rows(url: str) -> list[OutboxItem]:
    return on_app(url, outbox_rows)


def audit(url: str, action: str) -> list[tuple[int | None, dict[str, Any]]]:
    async def work(app: App) -> list[tuple[int | None, dict[str, Any]]]:
        async with app.uow() as uow:
            assert isinstance(uow, SqlUnitOfWork)
            found = await uow.session.scalars(
                select(AuditLogRow).where(AuditLogRow.action == action).order_by(AuditLogRow.id)
            )
            return [(r.actor_telegram_id, dict(r.details)) for r in found.all()]

    return on_app(url, work)


def notice_file(tmp_path: Path, text: str, name: str = "notice.html") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def tomorrow_at_nine() -> datetime:
    local = datetime.now(SHANGHAI) + timedelta(days=1)
    return local.replace(hour=9, minute=0, second=0, microsecond=0)


# ---- notices send ------------------------------------------------------------------------------------------------


def test_send_from_a_file_queues_the_notice_for_the_chosen_buildings(cli_db: str, tmp_path: Path) -> None:
    source = notice_file(tmp_path, "<b>周六上午</b>小区大扫除，欢迎参加！")
    result = invoke("notices", "send", source, "--community", "demo", "--buildings", "1", "--track", "sanitary")
    assert result.exit_code == 0, result.output
    (campaign,) = campaigns(cli_db)
    assert f"notice {campaign.id}: 4 recipient(s) in 示范社区 (demo), sending now" in result.output
    assert campaign.status is CampaignStatus.SENDING and campaign.author_id is None
    assert campaign.audience.kind is AudienceKind.BUILDINGS and campaign.track == "sanitary"
    assert campaign.body == "<b>周六上午</b>小区大扫除，欢迎参加！"
    queued = rows(cli_db)
    assert sorted(r.chat_id for r in queued) == BUILDING_1
    assert all(r.status is OutboxStatus.PENDING and r.kind == "notice" for r in queued)
    ((actor, details),) = audit(cli_db, "notice.create")
    assert actor is None and details["recipients"] == 4


def test_send_to_volunteers_reaches_only_volunteers(cli_db: str, tmp_path: Path) -> None:
    on_app(cli_db, lambda app: app.services.access.grant(2001, Role.VOLUNTEER, "demo", None))
    source = notice_file(tmp_path, "志愿者周日集合")
    result = invoke("notices", "send", source, "--community", "demo", "--audience", "volunteers")
    assert result.exit_code == 0, result.output
    assert [r.chat_id for r in rows(cli_db)] == [2001]
    (campaign,) = campaigns(cli_db)
    assert campaign.audience == Audience(AudienceKind.ROLE, role=Role.VOLUNTEER)


def test_send_from_stdin_at_a_local_time_is_scheduled_in_the_community_zone(cli_db: str) -> None:
    at = tomorrow_at_nine()
    text = at.strftime("%Y-%m-%d %H:%M")
    result = invoke("notices", "send", "-", "--community", "demo", "--at", text, "--urgent", input="明早停水检修")
    assert result.exit_code == 0, result.output
    (campaign,) = campaigns(cli_db)
    assert campaign.status is CampaignStatus.SCHEDULED and campaign.urgent
    assert campaign.send_at == at and campaign.body == "明早停水检修"
    assert f"goes out {text} (Asia/Shanghai)" in result.output
    assert rows(cli_db) == [], "nothing is queued before its time"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("第一行\n<b>没有闭合", "notice.html:2:1: unclosed_tag: <b> at character 5 is never closed"),
        ("请看 <div>这里</div>", "notice.html:1:4: unsupported_tag"),
        ("好" * 3801, "notice.html: too_long: 3801 characters after removing the tags; a notice may have at most 3800"),
        ("  <b> </b> ", "notice.html: empty"),
    ],
)
def test_send_with_a_bad_html_file_exits_2_and_queues_nothing(
    cli_db: str, tmp_path: Path, text: str, expected: str
) -> None:
    source = notice_file(tmp_path, text)
    result = invoke("notices", "send", source, "--community", "demo")
    assert result.exit_code == 2
    assert expected in result.output.replace(str(tmp_path) + "/", "")
    assert campaigns(cli_db) == [] and rows(cli_db) == []


def test_send_points_at_the_bad_tag_under_its_line(cli_db: str, tmp_path: Path) -> None:
    source = notice_file(tmp_path, "通知\n周六 <b>上午</i>")
    result = invoke("notices", "send", source, "--community", "demo")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if "unmatched_end_tag" in line)
    assert ":2:9:" in lines[at]
    assert lines[at + 1] == "  周六 <b>上午</i>"
    assert lines[at + 2] == "  " + " " * 12 + "^", "周六 and 上午 are two columns wide each"


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2020-01-01 09:00", "That time has passed: choose a time in the future."),
        ("明天早上", "I could not read that time."),
    ],
)
def test_send_at_a_past_or_unreadable_time_is_refused(cli_db: str, tmp_path: Path, at: str, expected: str) -> None:
    source = notice_file(tmp_path, "周末义务植树")
    result = invoke("notices", "send", source, "--community", "demo", "--at", at)
    assert result.exit_code == 2
    assert expected in result.output
    assert campaigns(cli_db) == [] and rows(cli_db) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--community", "nowhere"], "no community with code 'nowhere'"),
        (["--community", "demo", "--buildings", "9"], "demo has no building '9' (it has: 1, 2)"),
        (["--community", "demo", "--audience", "track"], "--audience track needs --track"),
        (["--community", "demo", "--audience", "everyone"], "--audience must be one of"),
        (["--community", "demo", "--buildings", "1", "--audience", "groups"], "--buildings goes with"),
        (["--community", "demo", "--audience", "groups"], "Nobody matches this audience"),
    ],
)
def test_send_to_an_impossible_audience_is_refused(cli_db: str, tmp_path: Path, args: list[str], expected: str) -> None:
    result = invoke("notices", "send", notice_file(tmp_path, "通知"), *args)
    assert result.exit_code == 2
    assert expected in result.output
    assert campaigns(cli_db) == []


def test_send_a_library_notice_weekly_needs_no_file(cli_db: str, tmp_path: Path) -> None:
    both = invoke("notices", "send", notice_file(tmp_path, "x"), "--community", "demo", "--template", "sorting_weekly")
    assert both.exit_code == 2 and "not both" in both.output
    unknown = invoke("notices", "send", "--community", "demo", "--template", "nothing")
    assert unknown.exit_code == 2 and "no library notice 'nothing'" in unknown.output
    at = tomorrow_at_nine().strftime("%Y-%m-%d %H:%M")
    args = ["--community", "demo", "--template", "sorting_weekly", "--weekly", "--at", at]
    result = invoke("notices", "send", *args)
    assert result.exit_code == 0, result.output
    (campaign,) = campaigns(cli_db)
    assert campaign.template == "sorting_weekly" and campaign.repeat_weekly and campaign.recipients == 7


def guard_wait(monkeypatch: pytest.MonkeyPatch, alive: Callable[[], bool] = lambda: True) -> None:
    """Ctrl-C for a waiting command when whatever delivers died or it takes too long: the test fails, not hangs."""
    deadline = time.monotonic() + 20
    state = NoticeAdmin.state

    async def guarded(admin: NoticeAdmin, campaign_id: int) -> Any:
        if not alive() or time.monotonic() > deadline:
            raise KeyboardInterrupt
        return await state(admin, campaign_id)

    monkeypatch.setattr(NoticeAdmin, "state", guarded)


class Deliverer:
    """The bot process, elsewhere on the same database: delivers and finishes campaigns until stopped."""

    def __init__(self, url: str, blocked: set[int]) -> None:
        self.url, self.telegram, self.stop = url, FakeTelegram(blocked=blocked), threading.Event()
        self.thread = threading.Thread(target=lambda: on_app(url, self._run), daemon=True)

    async def _run(self, app: App) -> None:
        while not self.stop.is_set():
            await dispatch_all(app, self.telegram)
            await app.services.campaigns.progress(datetime.now(UTC))
            await asyncio.sleep(0.05)

    def __enter__(self) -> Deliverer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def test_send_with_wait_shows_progress_until_every_delivery_is_settled(
    cli_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.cli, "POLL_SECONDS", 0.1)
    source = notice_file(tmp_path, "燃气管道检修，请勿开火")
    with Deliverer(cli_db, blocked={1002}) as deliverer:
        guard_wait(monkeypatch, deliverer.thread.is_alive)
        result = invoke("notices", "send", source, "--community", "demo", "--urgent", "--wait")
    assert result.exit_code == 0, result.output
    assert "(Ctrl-C stops waiting; the notice goes on)" in result.output
    assert result.output.splitlines()[-1].endswith(": sent 6 · skipped 1 · failed 0 · pending 0")
    assert len([o for o in deliverer.telegram.sent if isinstance(o, OutMessage)]) == 6
    assert {r.status for r in rows(cli_db)} == {OutboxStatus.SENT, OutboxStatus.SKIPPED}


def test_ctrl_c_while_waiting_stops_the_wait_not_the_notice(
    cli_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.cli, "POLL_SECONDS", 0.01)
    calls = 0
    state = NoticeAdmin.state

    async def interrupted(self: NoticeAdmin, campaign_id: int) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return await state(self, campaign_id)

    monkeypatch.setattr(NoticeAdmin, "state", interrupted)
    result = invoke("notices", "send", notice_file(tmp_path, "停电通知"), "--community", "demo", "--wait")
    assert result.exit_code == 0, result.output
    assert "stopped waiting; notice 1 goes on (sicheng notices wait 1)" in result.output
    (campaign,) = campaigns(cli_db)
    assert campaign.status is CampaignStatus.SENDING
    assert {r.status for r in rows(cli_db)} == {OutboxStatus.PENDING}


def test_wait_for_a_finished_notice_returns_at_once(
    cli_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = invoke("notices", "send", notice_file(tmp_path, "通知"), "--community", "demo", "--urgent")
    assert sent.exit_code == 0, sent.output

    async def deliver(app: App) -> None:
        await dispatch_all(app, FakeTelegram())
        await app.services.campaigns.progress(datetime.now(UTC))

    on_app(cli_db, deliver)
    guard_wait(monkeypatch)
    result = invoke("notices", "wait", "1")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "notice 1 done: sent 7 · skipped 0 · failed 0 · pending 0"
    assert invoke("notices", "wait", "99").exit_code == 2


# ---- notices list / cancel ---------------------------------------------------------------------------------------


def test_notices_list_shows_local_times_and_counts_and_cancel_stops_them(cli_db: str, tmp_path: Path) -> None:
    at = tomorrow_at_nine().strftime("%Y-%m-%d %H:%M")
    scheduled = invoke("notices", "send", notice_file(tmp_path, "明天<b>体检</b>"), "--community", "demo", "--at", at)
    assert scheduled.exit_code == 0, scheduled.output
    now = invoke(
        "notices", "send", notice_file(tmp_path, "今天停水", "b.html"), "--community", "demo", "--buildings", "2"
    )
    assert now.exit_code == 0, now.output

    listed = invoke("notices", "list", "--community", "demo")
    assert listed.exit_code == 0, listed.output
    header, *lines = listed.output.splitlines()
    assert header.split()[:5] == ["id", "community", "status", "send", "at"]
    assert lines[0].split()[:5] == ["1", "demo", "scheduled", *at.split()]
    assert lines[0].split()[5:] == ["7", "0", "0", "0", "0", "0", "明天体检"]
    assert lines[1].split()[:3] == ["2", "demo", "sending"] and lines[1].split()[5:11] == ["3", "0", "0", "0", "3", "0"]

    cancelled = invoke("notices", "cancel", "1")
    assert cancelled.exit_code == 0 and "notice 1 cancelled" in cancelled.output
    stopped = invoke("notices", "cancel", "2")
    assert stopped.exit_code == 0 and "notice 2 stopped: 3 waiting deliveries cancelled" in stopped.output
    first, second = campaigns(cli_db)
    assert first.status is CampaignStatus.CANCELLED and second.status is CampaignStatus.SENDING
    assert {r.status for r in rows(cli_db)} == {OutboxStatus.CANCELLED}
    assert [(actor, d["campaign"], d["stopped"]) for actor, d in audit(cli_db, "notice.cancel")] == [
        (None, 1, 0),
        (None, 2, 3),
    ]
    again = invoke("notices", "cancel", "1")
    assert again.exit_code == 2 and "cannot be cancelled" in again.output
    assert invoke("notices", "cancel", "42").exit_code == 2
    assert invoke("notices", "list", "--community", "nowhere").exit_code == 2


# ---- outbox list / retry / cancel --------------------------------------------------------------------------------


class Refusing(FakeTelegram):
    """Telegram refusing messages to some chats for good (a 400): their rows fail."""

    def __init__(self, refused: set[int]) -> None:
        super().__init__()
        self.refused = refused

    def _send(self, chat_id: int, item: Outgoing) -> int:
        if chat_id in self.refused:
            raise ValueError("Bad Request: chat not found")
        return super()._send(chat_id, item)


def sent_with_failures(url: str, tmp_path: Path, refused: set[int]) -> None:
    """Notice 1 to building 1 and notice 2 to building 2 (urgent: quiet hours hold neither), delivered with
    ``refused`` chats failing."""
    for text, building in (("一号楼通知", "1"), ("二号楼通知", "2")):
        source = notice_file(tmp_path, text, f"{building}.html")
        sent = invoke("notices", "send", source, "--community", "demo", "--buildings", building, "--urgent")
        assert sent.exit_code == 0, sent.output

    async def deliver(app: App) -> None:
        await dispatch_all(app, Refusing(refused))
        await app.services.campaigns.progress(datetime.now(UTC))

    on_app(url, deliver)


def test_outbox_list_shows_the_selected_rows_in_a_table(cli_db: str, tmp_path: Path) -> None:
    sent_with_failures(cli_db, tmp_path, refused={1001, 2002})
    result = invoke("outbox", "list", "--status", "failed")
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split() == [
        "id", "chat", "kind/template", "priority", "status", "attempts", "not", "before", "notice", "error",
    ]  # fmt: skip
    assert [line.split()[1] for line in lines] == ["2002", "1001"], "newest first"
    assert lines[0].split()[2:7] == ["notice:notices/campaign", "bulk", "failed", "0", "-"]
    assert lines[0].split()[7] == "2" and lines[0].endswith("Bad Request: chat not found")

    one_chat = invoke("outbox", "list", "--chat", "1001", "--status", "sent")
    assert one_chat.exit_code == 0 and "no outbox rows match" in one_chat.output
    of_campaign = invoke("outbox", "list", "--campaign", "2", "--status", "sent", "--limit", "1")
    assert of_campaign.exit_code == 0, of_campaign.output
    assert len(of_campaign.output.splitlines()) == 3 and "(the newest 1; --limit shows more)" in of_campaign.output
    assert invoke("outbox", "list", "--status", "lost").exit_code == 2


def test_outbox_retry_requeues_exactly_the_selected_failed_rows(cli_db: str, tmp_path: Path) -> None:
    sent_with_failures(cli_db, tmp_path, refused={1001, 1003, 2002})
    before = {r.id: r for r in rows(cli_db)}
    failed = sorted(i for i, r in before.items() if r.status is OutboxStatus.FAILED)
    assert len(failed) == 3
    first = next(i for i in failed if before[i].chat_id == 1001)

    result = invoke("outbox", "retry", "--id", str(first))
    assert result.exit_code == 0, result.output
    assert "1 failed message(s) waiting to be sent again" in result.output
    assert "notice(s) 1 sending again" in result.output
    after = {r.id: r for r in rows(cli_db)}
    assert after[first].status is OutboxStatus.PENDING and after[first].attempts == 0 and after[first].error is None
    assert {i for i, r in after.items() if r != before[i]} == {first}

    by_campaign = invoke("outbox", "retry", "--campaign", "2")
    assert by_campaign.exit_code == 0 and "1 failed message(s)" in by_campaign.output
    left = [r for r in rows(cli_db) if r.status is OutboxStatus.FAILED]
    assert [r.chat_id for r in left] == [1003]
    first_campaign, second_campaign = campaigns(cli_db)
    assert first_campaign.status is CampaignStatus.SENDING and second_campaign.status is CampaignStatus.SENDING

    everything = invoke("outbox", "retry", "--failed")
    assert everything.exit_code == 0 and "1 failed message(s)" in everything.output
    assert not [r for r in rows(cli_db) if r.status is OutboxStatus.FAILED]
    assert [(actor, d["changed"]) for actor, d in audit(cli_db, "outbox.retry")] == [(None, 1), (None, 1), (None, 1)]


def test_outbox_cancel_cancels_exactly_the_selected_waiting_rows(cli_db: str, tmp_path: Path) -> None:
    for name, building in (("a.html", "1"), ("b.html", "2")):
        sent = invoke(
            "notices", "send", notice_file(tmp_path, "通知", name), "--community", "demo", "--buildings", building
        )
        assert sent.exit_code == 0, sent.output
    before = {r.id: r for r in rows(cli_db)}

    result = invoke("outbox", "cancel", "--campaign", "1", "--chat", "1002")
    assert result.exit_code == 0, result.output
    assert "1 waiting message(s) cancelled" in result.output
    after = {r.id: r for r in rows(cli_db)}
    (changed,) = [i for i, r in after.items() if r != before[i]]
    assert after[changed].chat_id == 1002 and after[changed].status is OutboxStatus.CANCELLED
    assert after[changed].error == "cancelled by an operator"

    ids = sorted(i for i, r in after.items() if r.chat_id in (2000, 2001))
    listed = invoke("outbox", "cancel", "--id", f"{ids[0]},{ids[1]}", "--id", str(changed))
    assert listed.exit_code == 0, listed.output
    assert "2 waiting message(s) cancelled" in listed.output and "left alone" not in listed.output
    statuses = {r.chat_id: r.status for r in rows(cli_db)}
    assert [c for c, s in sorted(statuses.items()) if s is OutboxStatus.CANCELLED] == [1002, 2000, 2001]
    assert [(actor, d["matched"], d["changed"]) for actor, d in audit(cli_db, "outbox.cancel")] == [
        (None, 1, 1),
        (None, 2, 2),
    ]

    status = invoke("status")
    assert status.exit_code == 0 and "3 cancelled" in status.output
    figures = json.loads(invoke("status", "--json").output)
    assert figures["outbox"]["cancelled"] == 3 and figures["outbox"]["pending"] == 4


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["outbox", "retry"], "say which failed messages to send again: --failed (all), --id, --campaign or --chat"),
        (["outbox", "cancel"], "say which waiting messages to cancel: --id, --campaign or --chat"),
        (["outbox", "cancel", "--id", "x"], "--id takes outbox row ids (numbers), not 'x'"),
    ],
)
def test_outbox_changes_without_a_selector_are_refused(
    cli_db: str, tmp_path: Path, args: list[str], expected: str
) -> None:
    sent_with_failures(cli_db, tmp_path, refused={1001})
    before = rows(cli_db)
    result = invoke(*args)
    assert result.exit_code == 2
    assert expected in result.output
    assert rows(cli_db) == before
    assert audit(cli_db, "outbox.retry") == [] and audit(cli_db, "outbox.cancel") == []


def test_outbox_retry_of_many_rows_goes_in_batches_with_a_progress_bar(cli_db: str) -> None:
    count = ADMIN_BATCH * 2 + 100

    async def fill(app: App) -> None:
        now = datetime.now(UTC)
        async with app.uow() as uow:
            await uow.campaigns.add_deliveries(
                [
                    {"chat_id": 5_000 + i, "kind": "out.text", "payload": {"text": "x"}, "priority": 10,
                     "key": f"t:{i}", "status": "failed", "attempts": 8, "created_at": now, "error": "timeout"}
                    for i in range(count)
                ]
            )  # fmt: skip
            await uow.commit()

    on_app(cli_db, fill)
    result = invoke("outbox", "retry", "--failed")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "retrying"  # the bar's label (no terminal: no bar drawn)
    assert f"{count} failed message(s) waiting to be sent again" in result.output
    assert {(r.status, r.attempts) for r in rows(cli_db)} == {(OutboxStatus.PENDING, 0)}
    assert [d["changed"] for _, d in audit(cli_db, "outbox.retry")] == [ADMIN_BATCH, ADMIN_BATCH, 100]


# ---- the repository and the service on both backends -------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 7, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai


@pytest.fixture
async def app(db_url: str, clock: FakeClock) -> AsyncIterator[App]:
    app = await build_app(_settings(db_url), clock=clock, bot_username="sicheng_bot")
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    await populate(app, BUILDING_1, clock(), building="1")
    yield app
    await app.aclose()


async def _add(app: App, chat_id: int, now: datetime, status: OutboxStatus, **fields: Any) -> int:
    async with app.uow() as uow:
        item = await uow.outbox.add(chat_id, "notice", {"template": "reports/card"}, now=now, **fields)
        assert item is not None
        if status is not OutboxStatus.PENDING:
            await uow.outbox.finish(item, status, now, error="Bad Request" if status is OutboxStatus.FAILED else None)
        await uow.commit()
    return item


async def test_outbox_operator_queries_change_exactly_the_selected_rows(app: App, clock: FakeClock) -> None:
    now = clock()
    failed_a = await _add(app, 1000, now, OutboxStatus.FAILED)
    failed_b = await _add(app, 1001, now, OutboxStatus.FAILED)
    pending = await _add(app, 1000, now, OutboxStatus.PENDING)
    claimed = await _add(
        app, 1000, now, OutboxStatus.PENDING, claimed_by="d1", claimed_until=now + timedelta(minutes=1)
    )
    sent = await _add(app, 1000, now, OutboxStatus.SENT)

    async with app.uow() as uow:
        entries = await uow.outbox.entries(Selection(chat_id=1000), 10)
        assert [e.id for e in entries] == [sent, claimed, pending, failed_a]
        assert entries[-1].template == "reports/card" and entries[-1].error == "Bad Request"
        assert [e.id for e in await uow.outbox.entries(Selection(statuses=(OutboxStatus.FAILED,)), 1)] == [failed_b]
        picked = Selection(ids=(failed_a, pending, sent), statuses=(OutboxStatus.FAILED, OutboxStatus.PENDING))
        assert await uow.outbox.matching(picked) == [(failed_a, None), (pending, None)]

        assert await uow.outbox.requeue_failed([failed_a, pending, sent]) == [None]
        later = now + timedelta(seconds=5)
        assert await uow.outbox.cancel_pending([pending, claimed, sent, failed_b], later, "stop") == 1
        await uow.commit()

    async with app.uow() as uow:
        after = {i.id: i for i in await uow.outbox.items([failed_a, failed_b, pending, claimed, sent])}
    assert (after[failed_a].status, after[failed_a].attempts, after[failed_a].error) == (OutboxStatus.PENDING, 0, None)
    assert after[failed_b].status is OutboxStatus.FAILED
    assert after[pending].status is OutboxStatus.CANCELLED and after[pending].error == "stop"
    assert after[claimed].status is OutboxStatus.PENDING, "a row being sent right now is left alone"
    assert after[sent].status is OutboxStatus.SENT


async def test_retrying_a_finished_notice_sends_it_again_and_its_counts_follow(app: App, clock: FakeClock) -> None:
    demo = await app.services.communities.by_code("demo")
    assert demo is not None
    campaign = await app.services.campaigns.create(None, Draft(demo.id, "电梯检修", urgent=True))
    await dispatch_all(app, Refusing({1001, 1002}), clock)
    clock.advance(seconds=10)
    await app.services.campaigns.progress(clock())
    done = await NoticeAdmin(app.uow, clock).state(campaign.id)
    assert done.campaign.status is CampaignStatus.DONE and (done.counts.sent, done.counts.failed) == (2, 2)

    admin = OutboxAdmin(app.uow, clock)
    with pytest.raises(InvalidInput):
        await admin.retry(Selection())
    seen: list[tuple[int, int]] = []
    result = await admin.retry(Selection(campaign_id=campaign.id), progress=lambda d, t: seen.append((d, t)))
    assert (result.matched, result.changed, result.campaigns) == (2, 2, (campaign.id,)) and seen == [(2, 2)]
    again = await NoticeAdmin(app.uow, clock).state(campaign.id)
    assert again.campaign.status is CampaignStatus.SENDING and again.counts.pending == 2

    await dispatch_all(app, FakeTelegram(), clock)
    clock.advance(seconds=10)
    await app.services.campaigns.progress(clock())
    final = await NoticeAdmin(app.uow, clock).state(campaign.id)
    assert final.campaign.status is CampaignStatus.DONE and (final.counts.sent, final.counts.failed) == (4, 0)

    assert (await admin.cancel(Selection(campaign_id=campaign.id))).changed == 0
    lines = await NoticeAdmin(app.uow, clock).recent("demo")
    assert [(line.campaign.id, line.finished) for line in lines] == [(campaign.id, True)]
