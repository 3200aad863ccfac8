"""Dialog transcripts of points: grant, redeem with confirmation, verify once, cancel, rankings, admin dialog."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.app import App
from bot.conversation.replies import OutPhoto
from bot.domain.roles import Role
from tests.support.transcript import FakeChat

DEMO = Path(__file__).parents[2] / "content" / "rewards" / "demo.yaml"
CODE = re.compile(r"<code>([A-Z0-9]{4}-[A-Z0-9]{4})</code>")


async def _join(chat: FakeChat, language: str) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press(language)
    await chat.press("同意" if language == "中文" else "I agree")


@pytest.fixture
async def staff(app: App) -> tuple[FakeChat, FakeChat]:
    """An organiser and a service point of ``demo``, and the demo rewards catalogue."""
    await app.services.rewards.import_rewards(DEMO, "demo")
    organiser = FakeChat(app.core, user_id=9000, first_name="王主任")
    counter = FakeChat(app.core, user_id=7000, first_name="理发室")
    for person in (organiser, counter):
        await _join(person, "中文")
    await app.services.access.grant(9000, Role.ORGANISER, "demo", None)
    await app.services.access.grant(7000, Role.SERVICE_POINT, "demo", 9000)
    return organiser, counter


async def test_redeem_verify_cancel_flow_in_chinese(app: App, chat: FakeChat, staff: tuple[FakeChat, FakeChat]) -> None:
    organiser, counter = staff
    await _join(chat, "中文")
    replies = await organiser.send("/grant 1001 60 参加楼道清洁")
    assert "已给 <b>小李</b>（1号楼）发放文明积分 60 分（参加楼道清洁），对方现有 60 分" in replies[0]

    replies = await chat.press("文明积分")
    assert "我的文明积分</b>：60 分" in replies[0] and "社区奖励　+60（参加楼道清洁）" in replies[0]
    replies = await chat.press("兑换奖励")
    assert "您有 60 分" in replies[0] and "理发 · 30 分" in chat.labels()
    replies = await chat.press("理发 · 30 分")
    assert "确认兑换吗？确认后将扣除 30 分" in replies[0]
    replies = await chat.press("确认兑换")
    assert "兑换成功：<b>理发</b>" in replies[0] and "剩余 30 分" in replies[0]
    assert any(isinstance(out, OutPhoto) and out.photo.endswith(".png") for out in chat.sent)
    code = CODE.search(replies[0]).group(1)  # type: ignore[union-attr]

    replies = await counter.send(f"/verify {code.lower()}")
    assert "核销成功：<b>理发</b>" in replies[0]
    replies = await counter.send(f"/verify {code}")
    assert f"兑换码 {code} 已于" in replies[0] and "核销过，不能重复使用" in replies[0]

    await chat.send("/points")
    await chat.press("兑换奖励")
    await chat.press("生活用品 · 20 分")
    replies = await chat.press("确认兑换")
    second = CODE.search(replies[0]).group(1)  # type: ignore[union-attr]
    valid = re.search(r"有效期至 (\d{4}-\d{2}-\d{2})（含当天）", replies[0])  # a whole day, not a minute
    assert valid is not None
    replies = await chat.send("/myredemptions")
    assert "已领取" in replies[0] and "待领取" in replies[0]
    assert f"请于 {valid.group(1)}（含当天）前领取" in replies[0]
    replies = await chat.press(f"取消兑换 {second}")
    assert "已取消兑换「生活用品」" in replies[0] and "20 分已退回，当前共 30 分" in replies[0]
    replies = await counter.send(f"/verify {second}")
    assert "这笔兑换已取消" in replies[0]


async def test_redeem_verify_cancel_flow_in_english(app: App, staff: tuple[FakeChat, FakeChat]) -> None:
    organiser, counter = staff
    chat = FakeChat(app.core, user_id=2002, first_name="Anna", language_code="en")
    await _join(chat, "English")
    await organiser.send("/grant 2002 50 stairwell clean-up")
    replies = await chat.send("/points")
    assert "My civility points</b>: 50" in replies[0] and "community award  +50 (stairwell clean-up)" in replies[0]
    await chat.press("Rewards")
    replies = await chat.press("Small appliance repair · 50 points")
    assert "Redeem it? 50 points will be taken" in replies[0]
    replies = await chat.press("Confirm")
    assert "Redeemed: <b>Small appliance repair</b>" in replies[0] and "0 left" in replies[0]
    assert re.search(r"by the end of \d{2} [A-Z][a-z]{2} \d{4}\.", replies[0])
    code = CODE.search(replies[0]).group(1)  # type: ignore[union-attr]
    replies = await chat.press(f"Cancel {code}")
    assert "points are back, you now have 50" in replies[0]
    replies = await counter.send(f"/verify {code}")
    assert "这笔兑换已取消" in replies[0]  # the service point reads Chinese
    await chat.send("/points")
    await chat.press("Rewards")
    await chat.press("Haircut")
    replies = await chat.press("Confirm")
    code = CODE.search(replies[0]).group(1)  # type: ignore[union-attr]
    await counter.send(f"/verify {code}")
    replies = await chat.send("/myredemptions")
    assert "collected" in replies[0] and "cancelled" in replies[0]


async def test_redeem_without_enough_points_shows_why_without_confirm(
    chat: FakeChat, staff: tuple[FakeChat, FakeChat]
) -> None:
    await _join(chat, "中文")
    await chat.send("/points")
    await chat.press("兑换奖励")
    replies = await chat.press("理发 · 30 分")
    assert "积分还不够，还差 30 分" in replies[0]
    assert not any("确认兑换" in label for label in chat.labels())


async def test_rank_hides_resident_who_opted_out(app: App, chat: FakeChat, staff: tuple[FakeChat, FakeChat]) -> None:
    organiser, _ = staff
    await _join(chat, "中文")
    await organiser.send("/grant 1001 12 垃圾分类督导")
    replies = await chat.send("/rank")
    assert "1. 小**　12 分　← 我" in replies[0] and "1. 1号楼　12 分" in replies[0]
    await chat.send("/points")
    replies = await chat.press("不参加排名")
    assert "已退出排行榜" in replies[0] and "👀 参加排名" in chat.labels()
    replies = await chat.send("/rank")
    assert "小**" not in replies[0] and "1. 1号楼　12 分" in replies[0]


async def test_verify_and_grant_by_resident_are_forbidden(chat: FakeChat, staff: tuple[FakeChat, FakeChat]) -> None:
    await _join(chat, "中文")
    assert "只有社区工作人员" in (await chat.send("/verify ABCD-2345"))[0]
    assert "只有社区工作人员" in (await chat.send("/grant 1001 100 me"))[0]


async def test_admin_adds_reward_and_sets_stock_in_dialog(staff: tuple[FakeChat, FakeChat]) -> None:
    organiser, _ = staff
    await organiser.send("/rewardsadmin")
    assert "理发" in organiser.labels()
    await organiser.press("新增奖励")
    await organiser.send("洗车")
    await organiser.send("Car wash")
    assert "输入无效" in (await organiser.send("zero"))[0]
    await organiser.send("25")
    await organiser.send("-")
    await organiser.send("社区服务中心门口")
    await organiser.press("跳过")
    replies = await organiser.press("跳过")
    assert "已保存" in replies[-1] and "洗车</b> / Car wash" in replies[-1] and "库存：不限" in replies[-1]
    await organiser.press("设库存")
    replies = await organiser.send("5")
    assert "库存：5" in replies[0]
    replies = await organiser.press("停用")
    assert "状态：已停用" in replies[0]


async def test_deduct_reverses_points_and_never_goes_below_zero(
    app: App, chat: FakeChat, staff: tuple[FakeChat, FakeChat]
) -> None:
    organiser, _ = staff
    await _join(chat, "中文")
    await organiser.send("/grant 1001 10 参加楼道清洁")
    replies = await organiser.send("/deduct 1001 4 重复发放")
    assert "已扣回 <b>小李</b>（1号楼）的文明积分 4 分（重复发放），对方现有 6 分" in replies[0]
    replies = await organiser.send("/deduct 1001 50 重复发放")
    assert "现有 6 分" not in replies[0]
    assert (await app.services.points.overview(1001)).balance == 6
    replies = await organiser.send("/deduct 1001")
    assert "/deduct 123456789 积分 原因" in replies[0]


async def test_double_tap_on_confirm_redeems_once(app: App, chat: FakeChat, staff: tuple[FakeChat, FakeChat]) -> None:
    organiser, _ = staff
    await _join(chat, "中文")
    await organiser.send("/grant 1001 90 参加楼道清洁")
    await chat.press("文明积分")
    await chat.press("兑换奖励")
    await chat.press("停车券 · 15 分")
    card = max(chat.messages.values(), key=lambda m: m.message_id)
    data = next(d for row in card.buttons for label, d in row if "确认兑换" in label and d)
    first = await chat.press_data(data, card.message_id)
    second = await chat.press_data(data, card.message_id)  # the same button again before the card changed
    code = CODE.search(first[0]).group(1)  # type: ignore[union-attr]
    assert code in second[0], "the second tap shows the same redemption"
    assert (await app.services.points.overview(1001)).balance == 75
    assert len(await app.services.redemptions.mine(1001)) == 1
    # A new card (a new tap on the reward) is a new redemption.
    await chat.send("/points")
    await chat.press("兑换奖励")
    await chat.press("停车券 · 15 分")
    await chat.press("确认兑换")
    assert (await app.services.points.overview(1001)).balance == 60
    assert len(await app.services.redemptions.mine(1001)) == 2
