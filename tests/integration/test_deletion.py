"""/deleteme leaves nothing that points to the person, on SQLite and PostgreSQL: every table is dumped and the file
store walked, and neither the Telegram id, nor the name, nor the words of their report are found anywhere — while the
report stays in the ledger, the points still add up and the audit log keeps what was done."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import App, build_app
from bot.channels.inbox import Inbox
from bot.config import DatabaseSettings, FilesSettings, Settings
from bot.conversation.incoming import ChatType
from bot.domain.campaigns import Draft
from bot.domain.erasure import REDACTED
from bot.domain.messaging import KEEP_FINISHED
from bot.domain.rewards import Reward
from bot.domain.roles import Role
from bot.domain.volunteers import ShiftDraft, checkin_code
from bot.runner import make_dispatcher
from bot.services.points_reminders import KIND as EXPIRING
from storage.db import make_sessionmaker
from storage.models import AuditLogRow
from storage.schema import metadata
from tests.support.outbox import FakeTelegram, dispatch_all
from tests.support.quiz import answer_current
from tests.support.reports import Clock, FakeDownloader, jpeg_with_gps, png
from tests.support.transcript import FakeChat

# A real-looking Telegram id: ten digits, so that finding it anywhere is finding it.
PERSON, NAME = 7_345_608_123, "王小明"
DESCRIPTION = "3号楼下水道堵了好几天，联系我 13812345678"
PHONE = "13812345678"
WORKER, ORGANISER, NEIGHBOUR = 5_100_200_301, 5_100_200_302, 5_100_200_303
STAFF_GROUP = -1_009_998_887


@dataclass
class World:
    app: App
    clock: Clock
    media: Path

    def chat(self, user_id: int, name: str) -> FakeChat:
        return FakeChat(self.app.core, user_id=user_id, first_name=name, chat_type=ChatType.PRIVATE)


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    clock, files = Clock(), FakeDownloader()
    files.add("p1", jpeg_with_gps())
    files.add("p2", png())
    files.add("not-fixed", jpeg_with_gps(colour=(90, 90, 200)))
    files.add("after", jpeg_with_gps(colour=(20, 160, 40)))
    files.add("draft", png((40, 40)))
    media = tmp_path / "media"
    settings = Settings(database=DatabaseSettings(url=db_url), files=FilesSettings(root=media))
    app = await build_app(settings, clock=clock, bot_username="sicheng_bot", downloader=files)
    yield World(app, clock, media)
    await app.aclose()


async def dump(app: App) -> dict[str, list[str]]:
    """Every row of every table, each value as text (JSON with its characters as they are)."""

    def text(value: Any) -> str:
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False, default=str)
        return str(value)

    tables: dict[str, list[str]] = {}
    async with app.engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = (await connection.execute(select(table))).all()
            tables[table.name] = [" | ".join(text(v) for v in row) for row in rows]
    return tables


def found(tables: dict[str, list[str]], needles: list[str]) -> list[tuple[str, str, str]]:
    return [(name, needle, row) for name, rows in tables.items() for row in rows for needle in needles if needle in row]


def stored_files(media: Path) -> dict[str, bytes]:
    return {p.relative_to(media).as_posix(): p.read_bytes() for p in media.rglob("*") if p.is_file()}


async def live_a_little(world: World) -> tuple[int, int]:
    """Everything a resident leaves behind in a few weeks, through the real core where a person would act:
    a report with photos (and the staff card naming them), staff handling it with a note naming them, "not fixed"
    with a photo, a quiz answer, points with a note naming them, a redemption, a notice, a refused forged button, a
    pending reminder, and the raw updates in the inbox. Returns (report id, resident id)."""
    app, s = world.app, world.app.services
    await s.communities.add("demo", "示范社区", [("1", "1号楼"), ("3", "3号楼")])
    demo = await s.communities.by_code("demo")
    assert demo is not None
    for telegram_id, name in ((WORKER, "张网格"), (ORGANISER, "刘书记"), (NEIGHBOUR, "赵阿姨")):
        await s.residents.give_consent(telegram_id, name, "zh_Hans")
        await s.residents.join(telegram_id, demo.id, demo.buildings[0].id)
    await s.access.grant(WORKER, Role.GRID_WORKER, "demo", None)
    await s.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    await s.communities.link_group(STAFF_GROUP, "demo", "示范社区工作群", "staff")

    person = world.chat(PERSON, NAME)
    await person.send("/start cdemo_b3")
    await person.press("中文")
    await person.press("同意")
    await person.send("/report")
    await person.press("乱扔垃圾")
    await person.send_photo("p1", as_file=True)
    await person.send_photo("p2")
    await person.press("照片发完了")
    await person.send_location(31.2304, 121.4737)
    await person.send(DESCRIPTION)
    await person.press("显示我的称呼")
    await person.press("确认提交")
    report = (await s.reports.mine(PERSON)).reported[0]
    me = await s.residents.profile(PERSON)
    worker = await s.residents.profile(WORKER)
    assert me is not None and worker is not None

    await s.report_desk.accept(ORGANISER, report.id, worker.id)
    after = await s.reports.photos.take("after")
    await s.report_desk.resolve(WORKER, report.id, after, f"已疏通，{NAME}家门口也清理了")
    not_fixed = await s.reports.photos.take("not-fixed")
    await s.report_desk.reopen(PERSON, report.id, not_fixed)

    await person.send("/quiz")
    await person.press("国家园林城市")
    await person.press("开始答题（5 题）")
    await answer_current(person, app, right=True)
    await s.points.grant(ORGANISER, PERSON, 30, f"感谢{NAME}清理楼道", "grant-1")
    async with app.uow() as uow:
        reward = await uow.rewards.add(Reward(0, demo.id, "haircut", {"zh_Hans": "理发券", "en": "Haircut"}, 10, 5, 2))
        await uow.commit()
    await s.redemptions.redeem(PERSON, reward.id, request=f"{PERSON}:55:1765000000")
    await s.campaigns.create(ORGANISER, Draft(demo.id, "周六上午停水，请提前储水"))
    await person.press_data(f"1|rs.take|{report.id}")  # refused, audited with their id
    expires = (world.clock() + timedelta(days=7)).isoformat()
    reminder = {"telegram_id": PERSON, "points": 5, "expires": expires}
    await s.jobs.schedule(EXPIRING, world.clock() + timedelta(days=3), reminder, f"{EXPIRING}:{PERSON}:x")
    user = {"id": PERSON, "is_bot": False, "first_name": NAME, "language_code": "zh-hans"}
    organiser = {"id": ORGANISER, "is_bot": False, "first_name": "刘书记"}
    updates = [
        private_message(1, user, DESCRIPTION),  # what they typed, phone number and all
        private_message(2, organiser, f"/grant {PERSON} 5 谢谢"),  # somebody else's update naming them
    ]
    async with app.uow() as uow:
        await uow.inbox.add(updates, world.clock())
        for item in await uow.inbox.pending(world.clock(), 10):
            await uow.inbox.start(item.id, world.clock())
        await uow.commit()
    await dispatch_all(app, FakeTelegram(), lambda: world.clock().astimezone(UTC))
    await person.send("/report")  # a second report, left unfinished with a photo in the draft
    await person.press("乱扔垃圾")
    await person.send_photo("draft")
    await volunteer_a_little(world)
    return report.id, me.id


async def volunteer_a_little(world: World) -> None:
    """A volunteer with skills naming their phone, one served shift approved (points, a certificate with their
    name) and a place booked on a coming shift."""
    s = world.app.services
    await s.volunteers.register(PERSON, f"会修电脑，电话{PHONE}", "周末上午")
    activity = await s.volunteer_desk.create_activity(ORGANISER, title="桶边督导", description="", place="3号楼",
                                                      contact="刘书记")  # fmt: skip
    start = world.clock() + timedelta(hours=1)
    weekly = ShiftDraft(start, start + timedelta(hours=2), 1, 2, "", 0, 2)
    served, coming = await s.volunteer_desk.add_shifts(ORGANISER, activity.id, weekly)
    await s.volunteers.book(PERSON, served.id)
    await s.volunteers.book(PERSON, coming.id)
    world.clock.advance(hours=1)
    await s.volunteers.check_in(PERSON, served.id, code=checkin_code(served.secret, served.id, world.clock()))
    world.clock.advance(hours=2)
    await s.volunteer_desk.approve_all(ORGANISER, served.id)
    await s.volunteers.issue_certificate(PERSON)


def private_message(update_id: int, sender: dict[str, Any], text: str) -> dict[str, Any]:
    chat = {"id": sender["id"], "type": "private", "first_name": sender["first_name"]}
    message = {"message_id": update_id, "date": 1_765_000_000 + update_id, "chat": chat, "from": sender, "text": text}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


async def test_deleteme_leaves_no_trace_in_any_table_or_file(world: World) -> None:
    report_id, resident_id = await live_a_little(world)
    needles = [str(PERSON), NAME, DESCRIPTION, PHONE]
    before = found(await dump(world.app), needles)
    seen_in = {table for table, _, _ in before}
    # The search can fail: before the deletion the person is all over the database.
    assert {"resident", "report", "audit_log", "outbox_message", "inbox_update", "points_entry", "job"} <= seen_in
    assert {"volunteer_profile", "volunteer_certificate"} <= seen_in
    files_before = stored_files(world.media)
    assert len(files_before) == 5  # two report photos, "not fixed", the worker's after-photo, the draft's photo

    person = world.chat(PERSON, NAME)
    await person.send("/deleteme")
    (done,) = await person.press("确认删除我的数据")
    assert "您的个人信息已删除" in done

    assert found(await dump(world.app), needles) == []
    files = stored_files(world.media)
    assert len(files) == 1  # only the after-photo: the staff's record of the fix
    for key, data in files.items():
        assert not any(n in key or n.encode() in data for n in needles)

    # What stays still adds up: the report in the ledger, the points, and the audit log of what was done.
    report, history = await world.app.services.reports.detail(ORGANISER, report_id)
    assert (report.description, report.anonymous, report.photos, report.ticket) == (REDACTED, True, (), "R-2026-000001")
    assert [e.action for e in history] == ["submit", "accept", "resolve", "reopen"]
    assert report.after_photo is not None and report.after_photo in files
    assert await world.app.services.points.check() == []
    pseudonym = f"deleted:{resident_id}"
    async with make_sessionmaker(world.app.engine)() as session:
        audit = (await session.scalars(select(AuditLogRow).order_by(AuditLogRow.id))).all()
    theirs = [r for r in audit if r.details.get("actor") == pseudonym]
    assert [(r.action, r.allowed, r.actor_telegram_id) for r in theirs] == [
        ("rs.take", False, None),
        ("volunteer.register", True, None),
        ("volunteer.check_in", True, None),
        ("volunteer.certificate", True, None),
    ]
    grant = next(r for r in audit if r.action == "points.manual_grant")
    assert grant.actor_telegram_id == ORGANISER and grant.details["target"] == pseudonym
    assert grant.details["note"] == f"感谢{REDACTED}清理楼道"


async def test_through_the_inbox_only_the_answer_to_the_deletion_stays_until_the_purge(world: World) -> None:
    """In production each update is stored raw and the bot's answer is queued in the outbox: the deletion empties
    the updates the person sent (the one asking for it included); the answer itself ("your data was deleted") must
    reach their chat, so its row names the chat until the routine purge of sent messages."""
    await world.app.services.communities.add("demo", "示范社区", [("1", "1号楼")])
    demo = await world.app.services.communities.by_code("demo")
    assert demo is not None
    await world.app.services.residents.give_consent(PERSON, NAME, "zh_Hans")
    await world.app.services.residents.join(PERSON, demo.id, demo.buildings[0].id)
    inbox = Inbox(world.app.core, world.app.uow, world.app.transactions, make_dispatcher(world.app, FakeTelegram()),
                  lambda: datetime.now(UTC))  # fmt: skip
    user = {"id": PERSON, "is_bot": False, "first_name": NAME, "language_code": "zh-hans"}
    ask = private_message(1, user, "/deleteme")
    question = {"message_id": 2, "date": 1_765_000_002, "chat": ask["message"]["chat"], "text": "确定要删除吗？"}
    tap = {"id": "cb1", "from": user, "chat_instance": "1", "data": "1|priv.delete|1", "message": question}
    press = {"update_id": 2, "callback_query": tap}
    for update in (ask, press):
        await inbox.take([update])
        while await inbox.start_pending():
            await inbox.drain(10)
        await inbox.drain(10)
    assert await world.app.services.residents.profile(PERSON) is None

    left = found(await dump(world.app), [str(PERSON), NAME])
    assert left and {table for table, _, _ in left} == {"outbox_message"}
    # The answer to the deletion (the tap answered, the message edited) names the chat, nothing more: a reply
    # forgets its text once sent.
    rows = [row for _, _, row in left]
    assert len(rows) == 2 and any("out.answer" in r for r in rows) and any("out.edit" in r for r in rows)
    assert all(" | {} | " in r and NAME not in r for r in rows)
    await world.app.purge_messaging(datetime.now(UTC) + KEEP_FINISHED + timedelta(hours=1))
    assert found(await dump(world.app), [str(PERSON), NAME]) == []


async def test_deleting_twice_or_someone_unknown_is_harmless(world: World) -> None:
    await live_a_little(world)
    assert await world.app.services.residents.delete(PERSON)
    assert not await world.app.services.residents.delete(PERSON)
    assert not await world.app.services.residents.delete(4242)
