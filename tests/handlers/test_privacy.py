"""/mydata and /deleteme transcripts (zh-Hans and English), and every refused attempt audited exactly once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App, build_app
from bot.config import DatabaseSettings, FilesSettings, Settings
from bot.conversation.incoming import ChatType
from bot.domain.campaigns import Draft
from bot.domain.rewards import Reward
from bot.domain.roles import Role
from storage.db import make_sessionmaker
from storage.models import AuditLogRow
from tests.support.quiz import answer_current
from tests.support.reports import Clock, FakeDownloader, copy_db, jpeg_with_gps
from tests.support.transcript import FakeChat

RESIDENT, NEIGHBOUR, WORKER, ORGANISER = 1001, 1002, 2001, 2002
OTHER_ORGANISER, OTHER_WORKER = 3001, 3002
STAFF_GROUP, RESIDENTS_GROUP = -100777, -100888
DESCRIPTION = "3号楼下水道堵了好几天，联系我 13812345678"


@dataclass
class World:
    app: App
    clock: Clock
    report_id: int = 0
    campaign_id: int = 0

    def chat(
        self, user_id: int, name: str = "王小明", *, locale: str = "zh-hans", group: int | None = None
    ) -> FakeChat:
        kind = ChatType.SUPERGROUP if group else ChatType.PRIVATE
        return FakeChat(self.app.core, user_id=user_id, first_name=name, language_code=locale, chat_id=group,
                        chat_type=kind)  # fmt: skip

    async def refusals(self, actor: int) -> list[AuditLogRow]:
        async with make_sessionmaker(self.app.engine)() as session:
            query = select(AuditLogRow).where(AuditLogRow.allowed.is_(False), AuditLogRow.actor_telegram_id == actor)
            return list((await session.scalars(query.order_by(AuditLogRow.id))).all())

    async def refusal_count(self) -> int:
        async with make_sessionmaker(self.app.engine)() as session:
            query = select(func.count()).select_from(AuditLogRow).where(AuditLogRow.allowed.is_(False))
            return int(await session.scalar(query) or 0)


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[World]:
    db = copy_db(sqlite_template, tmp_path / "privacy.db")
    clock, files = Clock(), FakeDownloader()  # 2026-11-26 02:00 UTC = 10:00 in Shanghai
    files.add("p1", jpeg_with_gps())
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{db}"), files=FilesSettings(root=tmp_path))
    app = await build_app(settings, clock=clock, bot_username="sicheng_bot", downloader=files)
    s = app.services
    await s.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    await s.communities.add("other", "邻近社区", [("1", "1栋")])
    demo = await s.communities.by_code("demo")
    other = await s.communities.by_code("other")
    assert demo is not None and other is not None
    people = [
        (RESIDENT, "王小明", demo),
        (NEIGHBOUR, "赵阿姨", demo),
        (WORKER, "张网格", demo),
        (ORGANISER, "刘书记", demo),
        (OTHER_ORGANISER, "陈主任", other),
        (OTHER_WORKER, "孙网格", other),
    ]
    for telegram_id, name, community in people:
        await s.residents.give_consent(telegram_id, name, "zh_Hans")
        await s.residents.join(telegram_id, community.id, community.buildings[0].id)
    await s.access.grant(WORKER, Role.GRID_WORKER, "demo", None)
    await s.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    await s.access.grant(OTHER_ORGANISER, Role.ORGANISER, "other", None)
    await s.access.grant(OTHER_WORKER, Role.GRID_WORKER, "other", None)
    await s.communities.link_group(STAFF_GROUP, "demo", "示范社区工作群", "staff")
    await s.communities.link_group(RESIDENTS_GROUP, "demo", "示范社区居民群", "residents")
    world = World(app, clock)
    await report(world.chat(RESIDENT))
    world.report_id = (await s.reports.mine(RESIDENT)).reported[0].id
    later = clock() + timedelta(days=1)
    world.campaign_id = (await s.campaigns.create(ORGANISER, Draft(demo.id, "周六停水通知", send_at=later))).id
    yield world
    await app.aclose()


async def report(chat: FakeChat) -> None:
    await chat.send("/report")
    await chat.press("乱扔垃圾")
    await chat.send_photo("p1")
    await chat.press("照片发完了")
    await chat.send_location(31.2304, 121.4737)
    await chat.send(DESCRIPTION)
    await chat.press("显示我的称呼")
    await chat.press("确认提交")


async def some_history(world: World, chat: FakeChat) -> None:
    """A quiz answer, points, a redemption and a followed track, as a resident gathers them."""
    await chat.send("/quiz")
    await chat.press("国家园林城市")
    await chat.press("开始答题（5 题）")
    await answer_current(chat, world.app, right=True)
    await world.app.services.points.grant(ORGANISER, RESIDENT, 30, "楼道清扫志愿服务", "k1")
    demo = await world.app.services.communities.by_code("demo")
    assert demo is not None
    async with world.app.uow() as uow:
        reward = await uow.rewards.add(Reward(0, demo.id, "haircut", {"zh_Hans": "理发券", "en": "Haircut"}, 10, 5, 2))
        await uow.commit()
    await world.app.services.redemptions.redeem(RESIDENT, reward.id)


# ---- /mydata ------------------------------------------------------------------------------------------------------


async def test_mydata_lists_everything_held_in_shanghai_time(world: World) -> None:
    chat = world.chat(RESIDENT)
    await some_history(world, chat)
    world.clock.advance(hours=3)  # 13:00 in Shanghai: "last seen" is written again (it is kept to the hour)
    (text,) = await chat.send("/mydata")
    assert "（以下时间均为北京时间）" in text and "UTC" not in text
    assert "Telegram ID：1001" in text and "显示名称：王小明" in text and "社区：示范社区" in text
    assert "楼栋：1号楼" in text and "语言：简体中文" in text
    assert "同意告知版本：" in text and "（同意于 2026-11-26 10:00）" in text
    assert "注册时间：2026-11-26 10:00" in text
    assert "最近使用：2026-11-26 13:00（每 60 分钟最多记录一次）" in text
    assert "通知：接收；免打扰：22:00–08:00；订阅板块：无" in text
    assert "<b>随手拍</b>：提交 1 条，关注（+1）0 条" in text
    assert "• R-2026-000001　2026-11-26 10:00　已提交，待受理" in text
    assert "<b>文明积分</b>：余额 " in text and "+30 分　社区奖励" in text and "-10 分　兑换奖励" in text
    assert "+1 分　答题" in text
    assert "<b>兑换</b>：共 1 次" in text and "理发券" in text and "待领取" in text
    assert "<b>知识答题</b>：共作答 1 题" in text and "🌳 园林城市　答对　+1 分" in text
    assert "\n\n<b>满意度测评</b>：已提交 0 份\n\n<b>居民提案</b>：提交 0 个，支持 0 个，投票 0 次\n" in text
    assert "每类只列出最近" not in text  # nothing was cut
    assert text.rstrip().endswith("如需删除，请发送 /deleteme。")


async def test_mydata_in_english_names_the_zone_and_cuts_long_lists(world: World) -> None:
    chat = world.chat(RESIDENT, locale="en")
    await world.app.services.residents.set_locale(RESIDENT, "en")
    for n in range(12):
        await world.app.services.points.grant(ORGANISER, RESIDENT, 1, "thanks", f"many{n}")
    (text,) = await chat.send("/mydata")
    assert "(All times are China time (UTC+8).)" in text
    assert "Telegram ID: 1001" in text and "Language: English" in text
    assert "Registered: 2026-11-26 10:00" in text and "Last seen: 2026-11-26 10:00" in text
    assert "<b>Civility points</b>: balance 12, 12 entries" in text
    assert text.count("+1  community award") == 10
    assert "Only the latest 10 of each kind are listed; ask your community's staff for an export" in text
    assert "<b>Reports</b>: 1 sent, 0 followed (+1)" in text


async def test_mydata_of_someone_never_seen_says_only_the_id(world: World) -> None:
    (text,) = await world.chat(4242, "路人").send("/mydata")
    assert "除了您的 Telegram ID（4242）外，我们没有保存任何信息。" in text


# ---- /deleteme ----------------------------------------------------------------------------------------------------


async def test_deleteme_explains_what_goes_and_what_stays_then_erases(world: World) -> None:
    chat = world.chat(RESIDENT)
    (ask,) = await chat.send("/deleteme")
    assert "确定要删除您的个人信息吗" in ask
    assert "照片、问题描述和您写的说明" in ask and "（已应居民要求删除）" in ask
    assert chat.labels() == ["确认删除我的数据", "取消"]
    (done,) = await chat.press("确认删除我的数据")
    assert "您的个人信息已删除" in done and "保留的记录已匿名化" in done
    (again,) = await chat.send("/mydata")
    assert "我们没有保存任何信息" in again
    report, _ = await world.app.services.reports.detail(ORGANISER, world.report_id)
    assert report.description == "（已应居民要求删除）" and report.anonymous and report.photos == ()


async def test_deleteme_kept_changes_nothing(world: World) -> None:
    chat = world.chat(RESIDENT)
    await chat.send("/deleteme")
    (kept,) = await chat.press("取消")
    assert "您的信息保持不变" in kept
    (text,) = await chat.send("/mydata")
    assert "显示名称：王小明" in text


async def test_deleteme_in_english(world: World) -> None:
    await world.app.services.residents.set_locale(RESIDENT, "en")
    chat = world.chat(RESIDENT, locale="en")
    (ask,) = await chat.send("/deleteme")
    assert "Delete your personal data?" in ask and "the photos, descriptions and notes you sent" in ask
    assert chat.labels() == ["Yes, delete my data", "Cancel"]
    (done,) = await chat.press("Yes, delete my data")
    assert "Your personal data has been erased" in done and "records that stay are anonymous" in done


# ---- refusals: each audited exactly once ---------------------------------------------------------------------------


async def test_every_refused_attempt_is_audited_exactly_once(world: World) -> None:
    rid, cid = world.report_id, world.campaign_id
    resident, neighbour = world.chat(RESIDENT), world.chat(NEIGHBOUR, "赵阿姨")
    in_group = world.chat(RESIDENT, group=RESIDENTS_GROUP)
    outsider, outside_worker = world.chat(OTHER_ORGANISER, "陈主任"), world.chat(OTHER_WORKER, "孙网格")
    attempts = [
        # staff commands by a resident (the route's role check)
        (resident, RESIDENT, "send", "/grant 1002 5 帮忙", "grant"),
        (resident, RESIDENT, "send", "/deduct 1002 5 扣分", "deduct"),
        (resident, RESIDENT, "send", "/stats", "stats"),
        (resident, RESIDENT, "send", "/verify", "verify"),
        (resident, RESIDENT, "send", "/notice", "notice"),
        (in_group, RESIDENT, "send", "/linkgroup demo", "linkgroup"),
        (in_group, RESIDENT, "send", "/groupquiz", "groupquiz"),
        # forged staff buttons (refused inside handlers and services)
        (resident, RESIDENT, "press", "1|nb.mine", "notice.list"),
        (resident, RESIDENT, "press", f"1|nb.open|{cid}", "nb.open"),
        (resident, RESIDENT, "press", f"1|nb.cancelok|{cid}", "nb.cancelok"),
        (resident, RESIDENT, "press", "1|nb.compose", "nb.compose"),
        (resident, RESIDENT, "press", f"1|nt.stop|{cid}", "notice.cancel"),
        (resident, RESIDENT, "press", f"1|rs.take|{rid}", "rs.take"),
        (resident, RESIDENT, "press", f"1|rs.reject|{rid}", "rs.reject"),
        (neighbour, NEIGHBOUR, "press", f"1|rf.show|{rid}", "rf.show"),
        # cross-community: staff of 邻近社区 acting on 示范社区's notice and report
        (outsider, OTHER_ORGANISER, "press", f"1|nt.stop|{cid}", "notice.cancel"),
        (outsider, OTHER_ORGANISER, "press", f"1|nb.open|{cid}", "nb.open"),
        (outside_worker, OTHER_WORKER, "press", f"1|rs.take|{rid}", "rs.take"),
    ]
    for chat, actor, how, what, action in attempts:
        before = await world.refusal_count()
        replies = await (chat.send(what) if how == "send" else chat.press_data(what))
        assert len(replies) == 1 and replies[0].startswith("🚫"), (what, replies)  # refused, not an apology
        assert await world.refusal_count() == before + 1, f"{what}: {await world.refusal_count() - before} rows"
        newest = (await world.refusals(actor))[-1]
        assert (newest.actor_telegram_id, newest.action) == (actor, action), what
    # What the core writes says what was tried and why it was refused.
    take = next(r for r in await world.refusals(OTHER_WORKER) if r.action == "rs.take")
    assert take.details["callback"] == f"1|rs.take|{rid}" and take.details["refusal"] == "NotYours"
    grant = next(r for r in await world.refusals(RESIDENT) if r.action == "grant")
    assert grant.details["role"] == "organiser"


async def test_a_refusal_is_audited_inside_the_updates_transaction(world: World) -> None:
    """Through the inbox's ambient transaction (one per update), the audit row commits with the update."""
    chat = world.chat(OTHER_WORKER, "孙网格")
    incoming = chat._incoming()
    from dataclasses import replace

    forged = replace(incoming, callback_id="cb-x", callback_data=f"1|rs.take|{world.report_id}", callback_message_id=1)
    before = await world.refusal_count()
    async with world.app.transactions.scope() as uow:
        out = await world.app.core.process(forged)
        await uow.commit()
    assert out and await world.refusal_count() == before + 1
