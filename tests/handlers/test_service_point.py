"""Dialog transcripts of a service point's counter: its own menu, a bare code verified, the resident told."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.app import App
from bot.domain.roles import Role
from tests.support.notices import Notices
from tests.support.transcript import FakeChat, Message

DEMO = Path(__file__).parents[2] / "content" / "rewards" / "demo.yaml"
CODE = re.compile(r"<code>([A-Z0-9]{4}-[A-Z0-9]{4})</code>")
RESIDENT, ORGANISER, COUNTER = 1001, 9000, 7000


async def _join(chat: FakeChat, language: str) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press(language)
    await chat.press("同意" if language == "中文" else "I agree")


async def _counter(app: App, language: str) -> FakeChat:
    """The demo catalogue, an organiser, and a service point (the barber's room) speaking ``language``."""
    await app.services.rewards.import_rewards(DEMO, "demo")
    organiser = FakeChat(app.core, user_id=ORGANISER, first_name="王主任")
    code = "zh-hans" if language == "中文" else "en"
    counter = FakeChat(app.core, user_id=COUNTER, first_name="理发室", language_code=code)
    await _join(organiser, "中文")
    await _join(counter, language)
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    await app.services.access.grant(COUNTER, Role.SERVICE_POINT, "demo", ORGANISER)
    return counter


async def _redeem(app: App, chat: FakeChat, reward: str, confirm: str) -> str:
    """Give the resident points, redeem ``reward`` from the points screen; returns the code shown.

    The reward's card becomes the redemption card (with its cancel button); the QR image follows it."""
    await app.services.points.grant(ORGANISER, chat.user_id, 100, "参加楼道清洁", f"test:{chat.user_id}:{reward}")
    await chat.send("/points")
    await chat.press("🎁")
    await chat.press(reward)
    replies = await chat.press(confirm)
    found = CODE.search(replies[0])
    assert found, replies
    return found.group(1)


def _card(chat: FakeChat, code: str) -> Message:
    """The redemption card: the message whose cancel button names ``code``."""
    return next(m for m in chat.messages.values() if any(code in label for label in chat.labels(m)))


@pytest.fixture
async def counter(app: App) -> FakeChat:
    return await _counter(app, "中文")


async def test_service_point_menu_offers_counter_buttons_first(counter: FakeChat) -> None:
    replies = await counter.send("/menu")
    assert "服务点核销台" in replies[0] and "直接把兑换码发给我" in replies[0]
    assert counter.labels()[:2] == ["🔍 核销兑换码", "📋 今日核销"]
    assert "🏅 文明积分" in counter.labels()  # their own resident features stay reachable


async def test_bare_code_from_service_point_is_verified_and_resident_told(
    app: App, chat: FakeChat, counter: FakeChat
) -> None:
    await _join(chat, "中文")
    code = await _redeem(app, chat, "理发 · 30 分", "确认兑换")
    card = _card(chat, code)
    assert any(f"取消兑换 {code}" in label for label in chat.labels(card))

    replies = await counter.send(code.lower().replace("-", " "))  # as read aloud and typed: "abcd 2345"
    assert "核销成功：<b>理发</b>" in replies[0] and "请把奖励交给居民" in replies[0]
    told = await Notices(app).last(RESIDENT)
    assert f"您的兑换码 <code>{code}</code> 已于" in told.text and "「社区服务中心一楼便民理发室」核销" in told.text
    assert "「理发」已领取" in told.text and told.locale == "zh_Hans"

    replies = await chat.press(f"取消兑换 {code}", card.message_id)
    assert f"兑换码 {code} 已于" in replies[0] and "奖励已领取，不能再取消" in replies[0]
    assert chat.answers[-1].alert
    assert "✅ 已领取：<b>理发</b>" in chat.messages[card.message_id].text
    assert not any("取消兑换" in label for label in chat.labels(chat.messages[card.message_id]))
    assert (await app.services.points.overview(RESIDENT)).balance == 70, "nothing was refunded"


async def test_code_typed_by_resident_is_not_verified(app: App, chat: FakeChat, counter: FakeChat) -> None:
    await _join(chat, "中文")
    code = await _redeem(app, chat, "停车券 · 15 分", "确认兑换")
    replies = await chat.send(code)
    assert "核销" not in replies[0] and "主菜单" in replies[1]
    replies = await chat.send("/myredemptions")
    assert "待领取" in replies[0]


async def test_verify_button_asks_for_code_and_today_lists_it(app: App, chat: FakeChat, counter: FakeChat) -> None:
    await _join(chat, "中文")
    code = await _redeem(app, chat, "停车券 · 15 分", "确认兑换")
    await counter.send("/menu")
    replies = await counter.press("核销兑换码")
    assert "请发送居民出示的兑换码" in replies[0]
    replies = await counter.send("你好")
    assert "这不像兑换码" in replies[0]
    replies = await counter.send("ABCD-2345")
    assert "没有找到兑换码 ABCD2345" in replies[0]
    replies = await counter.send(code)
    assert "核销成功：<b>停车券</b>" in replies[0]
    replies = await counter.press("今日核销")
    assert "今日核销</b>（1 笔）" in replies[0] and f"停车券　<code>{code}</code>" in replies[0]
    replies = await counter.send(code)
    assert f"兑换码 {code} 已于" in replies[0] and "不能重复使用" in replies[0]


async def test_today_without_verifications_says_none_yet(counter: FakeChat) -> None:
    await counter.send("/menu")
    replies = await counter.press("今日核销")
    assert "今日核销</b>（0 笔）" in replies[0] and "今天还没有核销记录" in replies[0]


async def test_reward_at_per_person_limit_shows_why_without_confirm(
    app: App, chat: FakeChat, counter: FakeChat
) -> None:
    await _join(chat, "中文")
    code = await _redeem(app, chat, "理发 · 30 分", "确认兑换")
    await counter.send(code)
    await chat.send("/points")
    await chat.press("兑换奖励")
    replies = await chat.press("理发 · 30 分")
    assert "每人限兑：1 次（您已兑换 1 次）" in replies[0]
    assert "每人最多兑换 1 次，您已达到上限，不能再兑换" in replies[0] and "确认兑换吗" not in replies[0]
    assert chat.labels() == ["↩️ 返回"]


async def test_service_point_in_english_verifies_and_resident_is_told_in_english(app: App) -> None:
    counter = await _counter(app, "English")
    resident = FakeChat(app.core, user_id=2002, first_name="Anna", language_code="en")
    await _join(resident, "English")
    replies = await counter.send("/menu")
    assert "service point counter" in replies[0]
    assert counter.labels()[:2] == ["🔍 Verify a code", "📋 Today's verifications"]

    code = await _redeem(app, resident, "Haircut · 30 points", "Confirm")
    card = _card(resident, code)
    replies = await counter.send(code)
    assert "Verified: <b>Haircut</b>" in replies[0]
    told = await Notices(app).last(2002)
    assert f"Your code <code>{code}</code> was used at" in told.text and "“Haircut” has been collected" in told.text

    replies = await resident.press(f"Cancel {code}", card.message_id)
    assert "the reward has been collected and can no longer be cancelled" in replies[0]
    assert "✅ Collected: <b>Haircut</b>" in resident.messages[card.message_id].text
    replies = await counter.press("Today's verifications")
    assert "Today's verifications</b> (1)" in replies[0] and f"Haircut  <code>{code}</code>" in replies[0]

    await resident.send("/points")
    await resident.press("Rewards")
    replies = await resident.press("Haircut")
    assert "you have reached that limit" in replies[0] and "Redeem it?" not in replies[0]


async def test_points_short_in_english_shows_why_without_confirm(app: App) -> None:
    await _counter(app, "中文")
    resident = FakeChat(app.core, user_id=2002, first_name="Anna", language_code="en")
    await _join(resident, "English")
    await resident.send("/points")
    await resident.press("Rewards")
    replies = await resident.press("Small appliance repair")
    assert "You need 50 more points to redeem this" in replies[0]
    assert not any("Confirm" in label for label in resident.labels())
