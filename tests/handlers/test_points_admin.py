"""Dialog transcripts of /grant and /deduct (by reply in a group, by name, by id) and of adding a reward."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import App
from bot.channels.translate import to_incoming
from bot.conversation.incoming import ChatType
from bot.conversation.replies import OutMessage
from bot.domain.roles import Role
from tests.support.transcript import FakeChat

DEMO = Path(__file__).parents[2] / "content" / "rewards" / "demo.yaml"
GROUP = -100555
ORGANISER = 9000


async def _join(chat: FakeChat, language: str) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press(language)
    await chat.press("同意" if language == "中文" else "I agree")


async def _reply(chat: FakeChat, text: str, to: int) -> list[OutMessage]:
    """Send a command as a reply to a message of ``to``; returns the messages the bot sent (to any chat)."""
    command, _, args = text[1:].partition(" ")
    before = len(chat.sent)
    await chat._run(replace(chat._incoming(), command=command, args=args, text=text, reply_to_user_id=to))
    return [o for o in chat.sent[before:] if isinstance(o, OutMessage)]


@pytest.fixture
async def organiser(app: App) -> FakeChat:
    """An organiser of ``demo`` and two residents, 小李 (1001, building 1) and 李小明 (1002)."""
    await app.services.rewards.import_rewards(DEMO, "demo")
    organiser = FakeChat(app.core, user_id=ORGANISER, first_name="王主任")
    await _join(organiser, "中文")
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    for uid, name in ((1001, "小李"), (1002, "李小明")):
        await _join(FakeChat(app.core, user_id=uid, first_name=name), "中文")
    return organiser


def _in_group(app: App, user_id: int = ORGANISER) -> FakeChat:
    return FakeChat(app.core, user_id=user_id, first_name="王主任", chat_id=GROUP, chat_type=ChatType.SUPERGROUP)


async def test_grant_by_reply_in_group_thanks_there_and_confirms_privately_with_name(
    app: App, organiser: FakeChat
) -> None:
    group = _in_group(app)
    sent = await _reply(group, "/grant 5 参加楼道清洁", to=1002)
    public = [o.text for o in sent if o.chat_id == GROUP]
    private = [o.text for o in sent if o.chat_id == ORGANISER]
    assert public == ["👏 感谢 李小明（参加楼道清洁），获得文明积分 5 分！"]
    assert private == ["✅ 已给 <b>李小明</b>（1号楼）发放文明积分 5 分（参加楼道清洁），对方现有 5 分。此操作已记录。"]
    assert (await app.services.points.overview(1002)).balance == 5


async def test_deduct_by_reply_in_group_is_not_announced(app: App, organiser: FakeChat) -> None:
    group = _in_group(app)
    await _reply(group, "/grant 10 参加楼道清洁", to=1001)
    sent = await _reply(group, "/deduct 3 重复发放，予以扣回", to=1001)
    assert [o.chat_id for o in sent] == [ORGANISER]
    assert "已扣回 <b>小李</b>（1号楼）的文明积分 3 分（重复发放，予以扣回），对方现有 7 分" in sent[0].text


async def test_grant_by_reply_to_someone_not_registered_is_refused(app: App, organiser: FakeChat) -> None:
    sent = await _reply(_in_group(app), "/grant 5 参加楼道清洁", to=4242)
    assert any("没有找到这位居民" in o.text for o in sent)


async def test_grant_by_resident_in_group_is_forbidden(app: App, organiser: FakeChat) -> None:
    sent = await _reply(_in_group(app, 1001), "/grant 5 自己给自己", to=1001)
    assert any("只有社区工作人员" in o.text for o in sent)
    assert (await app.services.points.overview(1001)).balance == 0


async def test_grant_by_name_lists_residents_and_confirms_with_name_once(app: App, organiser: FakeChat) -> None:
    replies = await organiser.send("/grant 李 8 垃圾分类督导")
    assert "找到 2 位名字里有「李」的居民" in replies[0] and "发放 8 分（垃圾分类督导）" in replies[0]
    assert organiser.labels() == ["小李 · 1号楼", "李小明 · 1号楼", "✖️ 取消"]
    replies = await organiser.press("李小明")
    assert "给<b>李小明</b>（1号楼）发放文明积分 8 分，原因：垃圾分类督导" in replies[0]
    card = organiser.last()
    confirm = next(d for row in card.buttons for label, d in row if "确认发放" in label and d)
    replies = await organiser.press_data(confirm, card.message_id)
    assert "✅ 已给 <b>李小明</b>（1号楼）发放文明积分 8 分（垃圾分类督导），对方现有 8 分" in replies[0]
    replies = await organiser.press_data(confirm, card.message_id)  # a second tap before the card changed
    assert "按钮已失效" in replies[0]
    assert (await app.services.points.overview(1002)).balance == 8


async def test_grant_by_name_can_be_dropped(app: App, organiser: FakeChat) -> None:
    await organiser.send("/grant 小李 8 垃圾分类督导")
    await organiser.press("小李")
    replies = await organiser.press("取消")
    assert "已取消，没有变动任何积分" in replies[0]
    assert (await app.services.points.overview(1001)).balance == 0


async def test_grant_by_name_without_match_says_so(organiser: FakeChat) -> None:
    replies = await organiser.send("/grant 赵 8 垃圾分类督导")
    assert "没有找到名字里有「赵」的本社区居民" in replies[0]


async def test_grant_by_id_confirms_with_name(app: App, organiser: FakeChat) -> None:
    replies = await organiser.send("/grant 1001 12 参加楼道清洁")
    assert "已给 <b>小李</b>（1号楼）发放文明积分 12 分（参加楼道清洁），对方现有 12 分" in replies[0]


async def test_deduct_usage_example_reads_like_a_deduction(organiser: FakeChat) -> None:
    replies = await organiser.send("/deduct")
    assert "在居民群里<b>回复</b>居民的消息" in replies[0] and "/deduct 名字 积分 原因" in replies[0]
    assert "例如：<code>/deduct 王 10 重复发放，予以扣回</code>" in replies[0] and "楼道清洁" not in replies[0]
    replies = await organiser.send("/grant")
    assert "例如：<code>/grant 王 10 参加楼道清洁</code>" in replies[0]


async def test_deduct_by_name_in_english(app: App) -> None:
    await app.services.rewards.import_rewards(DEMO, "demo")
    organiser = FakeChat(app.core, user_id=ORGANISER, first_name="Grace", language_code="en")
    await _join(organiser, "English")
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    await _join(FakeChat(app.core, user_id=2002, first_name="Anna Lee", language_code="en"), "English")
    await app.services.points.grant(ORGANISER, 2002, 20, "stairwell clean-up", "test:anna")
    replies = await organiser.send("/deduct")
    assert "For example: <code>/deduct Wang 10 given twice by mistake</code>" in replies[0]
    replies = await organiser.send("/deduct lee 5 given twice by mistake")
    assert "1 resident with “lee” in their name. Pick the one to take back 5 points" in replies[0]
    replies = await organiser.press("Anna Lee · 1号楼")
    assert "Take back 5 civility points from <b>Anna Lee</b> (1号楼), reason: given twice by mistake" in replies[0]
    replies = await organiser.press("Confirm, take back")
    took_back = "✅ Took back 5 civility points from <b>Anna Lee</b> (1号楼) (given twice by mistake); they now have 15"
    assert took_back in replies[0]
    sent = await _reply(_in_group(app), "/grant 3 helped at the fair", to=2002)
    assert [o.text for o in sent if o.chat_id == GROUP] == [
        "👏 Thank you, Anna Lee (helped at the fair): 3 civility points!"
    ]


async def test_add_reward_asks_place_description_and_limit(organiser: FakeChat) -> None:
    await organiser.send("/rewardsadmin")
    await organiser.press("新增奖励")
    await organiser.send("洗车")
    await organiser.send("Car wash")
    await organiser.send("25")
    replies = await organiser.send("10")
    assert "请发送领取地点" in replies[0] and "跳过" not in organiser.labels()
    assert "输入无效" in (await organiser.send(" "))[0]
    replies = await organiser.send("小区东门洗车点")
    assert "请发送一句说明" in replies[0] and organiser.labels() == ["⏭ 跳过"]
    replies = await organiser.send("周末上午，凭兑换码免费洗车一次")
    assert "每人最多可兑换几次" in replies[0]
    assert "输入无效" in (await organiser.send("0"))[0]
    replies = await organiser.send("2")
    assert "已保存" in replies[0] and "周末上午，凭兑换码免费洗车一次" in replies[0]
    assert "领取地点：小区东门洗车点" in replies[0] and "每人限兑：2 次" in replies[0] and "库存：10" in replies[0]


async def test_add_reward_in_english_skips_optional_questions(app: App) -> None:
    organiser = FakeChat(app.core, user_id=ORGANISER, first_name="Grace", language_code="en")
    await _join(organiser, "English")
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    resident = FakeChat(app.core, user_id=2002, first_name="Anna", language_code="en")
    await _join(resident, "English")
    await organiser.send("/rewardsadmin")
    await organiser.press("Add a reward")
    for answer in ("洗车", "Car wash", "25", "-"):
        await organiser.send(answer)
    replies = await organiser.send("East gate car wash")
    assert "send one line describing it" in replies[0]
    asked = organiser.last()
    skip_description = next(d for row in asked.buttons for label, d in row if "Skip" in label and d)
    replies = await organiser.press("Skip")
    assert "(skipped)" in replies[0] and "how many times may each person redeem it" in replies[1]
    assert organiser.labels(organiser.messages[asked.message_id]) == []
    replies = await organiser.press_data(skip_description, asked.message_id)  # the same skip again: stale now
    assert "no longer valid" in replies[0]
    replies = await organiser.press("Skip")
    assert "Saved." in replies[-1] and "Collect at: East gate car wash" in replies[-1]
    assert "Limit per person: none" in replies[-1]

    await app.services.points.grant(ORGANISER, 2002, 30, "stairwell clean-up", "test:anna")
    await resident.send("/points")
    await resident.press("Rewards")
    replies = await resident.press("Car wash")
    assert "Collect at: East gate car wash" in replies[0] and "Redeem it? 25 points" in replies[0]


def test_reply_to_a_message_carries_its_author() -> None:
    message = {
        "message_id": 7,
        "date": 1_765_000_000,
        "chat": {"id": GROUP, "type": "supergroup", "title": "示范社区居民群"},
        "from": {"id": ORGANISER, "first_name": "王主任"},
        "text": "/grant 5 参加楼道清洁",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        "reply_to_message": {"message_id": 6, "date": 1, "chat": {"id": GROUP}, "from": {"id": 1002}},
    }
    incoming = to_incoming({"update_id": 1, "message": message})
    assert incoming is not None and incoming.reply_to_user_id == 1002 and incoming.args == "5 参加楼道清洁"
    topic = {**message, "reply_to_message": {**message["reply_to_message"], "forum_topic_created": {"name": "t"}}}
    incoming = to_incoming({"update_id": 2, "message": topic})
    assert incoming is not None and incoming.reply_to_user_id is None
