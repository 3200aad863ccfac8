"""Bad input gets a clear, localised answer; nothing crashes the update loop."""

from __future__ import annotations

import logging

import pytest

from bot.app import App
from bot.conversation.incoming import ChatType
from bot.conversation.replies import OutCallbackAnswer
from bot.domain.roles import Role
from tests.support.transcript import FakeChat


async def _register(chat: FakeChat) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press("中文")
    await chat.press("同意")


async def test_unknown_command_points_to_help(chat: FakeChat) -> None:
    replies = await chat.send("/frobnicate now")
    assert replies == ["没有 /frobnicate 这个命令。发送 /help 查看可用命令。"]


async def test_oversized_text_is_refused_politely(chat: FakeChat) -> None:
    replies = await chat.send("长" * 5000)
    assert "消息太长了（最多 4096 字）" in replies[0]


@pytest.mark.parametrize(
    "data",
    [
        "",
        "garbage",
        "1|onb.lang",
        "1|onb.lang|zh_Hans|extra",
        "2|onb.lang|en",
        "1|onb.building|x|1",
        "1|nope.nope|1",
        "1|onb.lang|" + "a" * 70,
        "1|onb.lang|<b>",
    ],
)
async def test_forged_or_stale_callback_data_gets_an_alert(chat: FakeChat, data: str) -> None:
    replies = await chat.press_data(data)
    assert replies == ["这个按钮已失效，请重新打开菜单（/menu）。"]
    assert chat.answers[-1].alert


async def test_forged_building_of_unknown_community_is_refused(chat: FakeChat) -> None:
    await _register(chat)
    replies = await chat.press_data("1|onb.building|987654|1")
    assert "没有找到该社区" in replies[0]


async def test_building_press_before_consent_needs_registration(chat: FakeChat) -> None:
    replies = await chat.press_data("1|onb.building|1|1")
    assert "需要先加入社区" in replies[0]


async def test_resident_calling_organiser_command_is_refused_and_audited(app: App) -> None:
    group = FakeChat(app.core, user_id=3003, chat_id=-100500, chat_type=ChatType.SUPERGROUP)
    replies = await group.send("/linkgroup demo")
    assert replies == ["🚫 抱歉，只有社区工作人员可以使用这个功能。如需开通，请联系社区。"]
    from storage.db import make_sessionmaker
    from storage.repositories import SqlAuditRepository

    async with make_sessionmaker(app.engine)() as session:
        entry = (await SqlAuditRepository(session).recent(1))[0]
    assert (entry.actor_telegram_id, entry.action, entry.allowed) == (3003, "linkgroup", False)


async def test_organiser_links_group_and_newcomers_get_deep_link(app: App) -> None:
    organiser = FakeChat(app.core, user_id=4004)
    await _register(organiser)
    await app.services.access.grant(4004, Role.ORGANISER, "demo", actor=None)
    group = FakeChat(app.core, user_id=4004, chat_id=-100600, chat_type=ChatType.SUPERGROUP)
    replies = await group.send("/linkgroup demo")
    assert "本群已关联到 示范社区（居民群）" in replies[0]
    replies = await group.join_group([(5005, "小王"), (5006, "小赵")])
    assert "欢迎 小王、小赵 加入「示范社区」居民群" in replies[0]
    assert group.last().buttons[0][0][1] == "https://t.me/sicheng_bot?start=cdemo"


async def test_organiser_of_another_community_cannot_take_over_a_linked_group(app: App) -> None:
    await app.services.communities.add("east", "东湖社区", [("1", "1栋")])
    owner, intruder = FakeChat(app.core, user_id=4101), FakeChat(app.core, user_id=4102)
    await _register(owner)
    await intruder.send("/start ceast_b1")  # lives in, and organises, the other community
    await intruder.press("中文")
    await intruder.press("同意")
    await app.services.access.grant(4101, Role.ORGANISER, "demo", actor=None)
    await app.services.access.grant(4102, Role.ORGANISER, "east", actor=None)
    await FakeChat(app.core, user_id=4101, chat_id=-100610, chat_type=ChatType.SUPERGROUP).send("/linkgroup demo")

    taking = FakeChat(app.core, user_id=4102, chat_id=-100610, chat_type=ChatType.SUPERGROUP)
    replies = await taking.send("/linkgroup east")
    assert "本群已关联到 示范社区" in replies[0] and "两个社区" in replies[0]
    linked = await app.services.communities.community_of_group(-100610)
    assert linked is not None and linked.code == "demo"
    from storage.db import make_sessionmaker
    from storage.repositories import SqlAuditRepository

    async with make_sessionmaker(app.engine)() as session:
        entry = (await SqlAuditRepository(session).recent(1))[0]
    assert (entry.actor_telegram_id, entry.action, entry.allowed) == (4102, "linkgroup", False)

    # Someone who organises both may move it.
    await app.services.access.grant(4102, Role.ORGANISER, "demo", actor=None)
    replies = await taking.send("/linkgroup east")
    assert "本群已关联到 东湖社区" in replies[0]


async def test_private_only_command_in_group_explains(app: App) -> None:
    group = FakeChat(app.core, user_id=6006, chat_id=-100700, chat_type=ChatType.SUPERGROUP)
    replies = await group.send("/mydata")
    assert "只能在与我的私聊中使用" in replies[0]


async def test_handler_crash_is_logged_with_update_id_and_loop_continues(
    chat: FakeChat, app: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(app.services.residents, "my_data", broken)
    with caplog.at_level(logging.ERROR):
        replies = await chat.send("/mydata")
    assert "您的信息没有丢失" in replies[0]
    assert any("failed" in r.getMessage() and "update" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    replies = await chat.send("/help")
    assert "帮助" in replies[0]


async def test_crash_on_button_press_answers_the_callback(
    chat: FakeChat, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("boom")

    await chat.send("/start")
    monkeypatch.setattr(app.services.residents, "set_locale", broken)
    await chat.press("中文")
    assert isinstance(chat.answers[-1], OutCallbackAnswer) and chat.answers[-1].alert


def test_too_long_reply_is_split_into_several_messages() -> None:
    from bot.conversation.render import split_text

    text = "\n".join(["第" + str(i) + "行" + "字" * 100 for i in range(100)])
    parts = split_text(text, 4096)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert "".join(p + "\n" for p in parts).strip() == text
