"""Dialog transcripts of every onboarding path, through the real core with a fake channel."""

from __future__ import annotations

from bot.app import App
from tests.support.transcript import FakeChat


async def test_start_without_deep_link_asks_language_then_consent_then_community(chat: FakeChat, app: App) -> None:
    replies = await chat.send("/start")
    assert "请选择语言" in replies[0]
    assert chat.labels() == ["中文", "English"]

    replies = await chat.press("中文")
    assert "个人信息保护告知" in replies[-1]
    resident = await app.services.residents.profile(chat.user_id)
    assert resident is not None and resident.display_name is None and resident.community_id is None

    replies = await chat.press("同意")
    assert "请选择您所在的社区" in replies[-1]
    replies = await chat.press("示范社区")
    assert "请选择您居住的楼栋" in replies[-1]
    assert chat.labels()[:3] == ["1号楼", "2号楼", "3号楼"]

    replies = await chat.press("2号楼")
    assert "欢迎加入 <b>示范社区</b> · 2号楼" in replies[0]
    assert "主菜单" in replies[1]
    resident = await app.services.residents.profile(chat.user_id)
    assert resident is not None and resident.is_registered and resident.display_name == "小李"


async def test_start_with_deep_link_skips_community_and_building(chat: FakeChat) -> None:
    await chat.send("/start cdemo_b3")
    await chat.press("中文")
    replies = await chat.press("同意")
    assert "欢迎加入 <b>示范社区</b> · 3号楼" in replies[0]
    assert "主菜单" in replies[1]


async def test_start_with_community_only_link_asks_building(chat: FakeChat) -> None:
    await chat.send("/start cdemo")
    await chat.press("English")
    replies = await chat.press("I agree")
    assert "示范社区: which building" in replies[-1]
    replies = await chat.press("Skip building")
    assert "Welcome to <b>示范社区</b>!" in replies[0]


async def test_start_with_unknown_link_says_so_and_lists_communities(chat: FakeChat) -> None:
    await chat.send("/start cnowhere_b9")
    await chat.press("中文")
    replies = await chat.press("同意")
    assert "没有找到" in replies[-1]
    assert "示范社区" in chat.labels()


async def test_start_with_malformed_link_is_ignored(chat: FakeChat) -> None:
    replies = await chat.send("/start <script>")
    assert "请选择语言" in replies[0]


async def test_consent_refused_keeps_no_personal_data_and_menu_works(chat: FakeChat, app: App) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press("中文")
    replies = await chat.press("暂不同意")
    assert "不会保存您的个人信息" in replies[0]
    assert "您还没有加入社区" in replies[1]
    resident = await app.services.residents.profile(chat.user_id)
    assert resident is not None
    assert (resident.display_name, resident.community_id, resident.consent_at) == (None, None, None)
    replies = await chat.press("随手拍")
    # A landed feature asks to join first; one still being built says so.
    assert "需要先加入社区" in replies[-1] or "正在建设中" in replies[-1]
    replies = await chat.send("/mydata")
    assert "同意告知版本:未同意" in replies[0].replace("：", ":")


async def test_language_switch_changes_every_following_reply(chat: FakeChat) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press("中文")
    await chat.press("同意")
    await chat.send("/settings")
    await chat.press("语言")
    replies = await chat.press("English")
    assert replies[0] == "✅ Language set to English."
    assert "main menu" in replies[1]
    replies = await chat.send("/help")
    assert "Help" in replies[0]


async def test_english_telegram_user_is_greeted_in_english_after_choice(app: App) -> None:
    chat = FakeChat(app.core, user_id=2002, first_name="Anna", language_code="en")
    await chat.send("/start")
    replies = await chat.press("English")
    assert "Privacy notice" in replies[-1]


async def test_deleteme_erases_personal_data_and_keeps_anonymous_row(chat: FakeChat, app: App) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press("中文")
    await chat.press("同意")
    replies = await chat.send("/deleteme")
    assert "确定要删除" in replies[0]
    replies = await chat.press("确认删除")
    assert "已删除" in replies[0]
    assert await app.services.residents.profile(chat.user_id) is None
    replies = await chat.send("/mydata")
    assert "没有保存任何信息" in replies[0]
    replies = await chat.send("/start")
    assert "请选择语言" in replies[0]


async def test_deleteme_cancel_keeps_data(chat: FakeChat, app: App) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press("中文")
    await chat.press("同意")
    await chat.send("/deleteme")
    replies = await chat.press("取消")
    assert "保持不变" in replies[0]
    assert await app.services.residents.profile(chat.user_id) is not None


async def test_registered_resident_start_shows_menu(chat: FakeChat) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press("中文")
    await chat.press("同意")
    replies = await chat.send("/start cdemo_b2")
    assert "主菜单" in replies[0]


async def test_settings_change_building(chat: FakeChat, app: App) -> None:
    await chat.send("/start cdemo_b1")
    await chat.press("中文")
    await chat.press("同意")
    await chat.send("/settings")
    await chat.press("更换楼栋")
    replies = await chat.press("3号楼")
    assert "3号楼" in replies[0]
    data = await app.services.residents.my_data(chat.user_id)
    assert data["building"] == "3号楼"
