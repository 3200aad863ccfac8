"""Bot API methods called in-process: results and Telegram's exact errors."""

from __future__ import annotations

import json

import pytest

from bot.sandbox.clock import FakeClock
from bot.sandbox.emulator import Emulator
from bot.sandbox.errors import NOT_MODIFIED, ApiError
from bot.sandbox.models import SimUser
from tests.sandbox.helpers import call, drain, fails

KEYBOARD = json.dumps({"inline_keyboard": [[{"text": "好", "callback_data": "ok"}]]})


async def test_get_me_returns_bot_user(emu: Emulator) -> None:
    me = await call(emu, "getMe")
    assert me["is_bot"] is True
    assert me["id"] == emu.default_bot.id
    assert me["username"] == "sicheng_bot"


async def test_send_message_unknown_chat_fails_chat_not_found(emu: Emulator) -> None:
    error = await fails(emu, "sendMessage", chat_id=424242, text="hi")
    assert (error.code, error.description) == (400, "Bad Request: chat not found")


async def test_send_message_never_started_fails_forbidden(emu: Emulator) -> None:
    stranger = emu.create_user("陌生人")
    error = await fails(emu, "sendMessage", chat_id=stranger.id, text="hi")
    assert (error.code, error.description) == (403, "Forbidden: bot can't initiate conversation with a user")


async def test_send_message_blocked_user_fails_403(emu: Emulator, user: SimUser) -> None:
    emu.block(user.id)
    error = await fails(emu, "sendMessage", chat_id=user.id, text="hi")
    assert (error.code, error.description) == (403, "Forbidden: bot was blocked by the user")


@pytest.mark.parametrize("text", ["", "   "])
async def test_send_message_empty_text_fails_400(emu: Emulator, user: SimUser, text: str) -> None:
    error = await fails(emu, "sendMessage", chat_id=user.id, text=text)
    assert error.description == "Bad Request: message text is empty"


async def test_send_message_too_long_fails_400(emu: Emulator, user: SimUser) -> None:
    error = await fails(emu, "sendMessage", chat_id=user.id, text="字" * 4097)
    assert error.description == "Bad Request: message is too long"


async def test_send_message_html_length_counted_after_parsing_succeeds(emu: Emulator, user: SimUser) -> None:
    result = await call(emu, "sendMessage", chat_id=user.id, text=f"<b>{'a' * 4096}</b>", parse_mode="HTML")
    assert result["entities"] == [{"type": "bold", "offset": 0, "length": 4096}]


@pytest.mark.parametrize(
    ("html", "detail"),
    [
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<br>", 'Unsupported start tag "br" at byte offset 0'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ],
)
async def test_send_message_bad_html_fails_cant_parse(emu: Emulator, user: SimUser, html: str, detail: str) -> None:
    error = await fails(emu, "sendMessage", chat_id=user.id, text=html, parse_mode="HTML")
    assert error.description == f"Bad Request: can't parse entities: {detail}"


async def test_send_message_html_entities_decoded(emu: Emulator, user: SimUser) -> None:
    html = '<a href="https://x.cn/?a=1&amp;b=2">链接</a> &lt;3 &quot;q&quot; <tg-spoiler>s</tg-spoiler>'
    result = await call(emu, "sendMessage", chat_id=user.id, text=html, parse_mode="HTML")
    assert result["text"] == '链接 <3 "q" s'
    assert result["entities"][0] == {
        "type": "text_link",
        "url": "https://x.cn/?a=1&b=2",
        "offset": 0,
        "length": 2,
    }
    assert result["entities"][1]["type"] == "spoiler"


async def test_send_photo_long_caption_fails_400(emu: Emulator, user: SimUser) -> None:
    error = await fails(emu, "sendPhoto", chat_id=user.id, photo="AgAC-unknown", caption="c" * 1025)
    assert error.description == "Bad Request: message caption is too long"


@pytest.mark.parametrize("data", ["x" * 65, "数" * 22, ""])
async def test_send_message_bad_callback_data_fails_button_data_invalid(
    emu: Emulator, user: SimUser, data: str
) -> None:
    markup = json.dumps({"inline_keyboard": [[{"text": "b", "callback_data": data}]]})
    error = await fails(emu, "sendMessage", chat_id=user.id, text="t", reply_markup=markup)
    assert error.description == "Bad Request: BUTTON_DATA_INVALID"


async def test_send_message_64_byte_callback_data_succeeds(emu: Emulator, user: SimUser) -> None:
    markup = {"inline_keyboard": [[{"text": "b", "callback_data": "x" * 64}]]}
    result = await call(emu, "sendMessage", chat_id=user.id, text="t", reply_markup=markup)
    assert result["reply_markup"] == markup


async def test_edit_identical_content_fails_not_modified(emu: Emulator, user: SimUser) -> None:
    sent = await call(emu, "sendMessage", chat_id=user.id, text="<b>t</b>", parse_mode="HTML", reply_markup=KEYBOARD)
    same = {"text": "<b>t</b>", "parse_mode": "HTML", "reply_markup": KEYBOARD}
    error = await fails(emu, "editMessageText", chat_id=user.id, message_id=sent["message_id"], **same)
    assert error.description == f"Bad Request: {NOT_MODIFIED}"
    error = await fails(
        emu, "editMessageReplyMarkup", chat_id=user.id, message_id=sent["message_id"], reply_markup=KEYBOARD
    )
    assert error.description == f"Bad Request: {NOT_MODIFIED}"


async def test_edit_text_without_markup_removes_keyboard(emu: Emulator, user: SimUser) -> None:
    sent = await call(emu, "sendMessage", chat_id=user.id, text="t", reply_markup=KEYBOARD)
    edited = await call(emu, "editMessageText", chat_id=user.id, message_id=sent["message_id"], text="t")
    assert "reply_markup" not in edited
    assert edited["edit_date"] >= sent["date"]


async def test_edit_user_message_fails_cant_be_edited(emu: Emulator, user: SimUser) -> None:
    mine = emu.send_text(user.id, "hello")
    error = await fails(emu, "editMessageText", chat_id=user.id, message_id=mine["message_id"], text="x")
    assert error.description == "Bad Request: message can't be edited"
    error = await fails(emu, "editMessageText", chat_id=user.id, message_id=999, text="x")
    assert error.description == "Bad Request: message to edit not found"


async def test_delete_message_twice_fails_not_found(emu: Emulator, user: SimUser) -> None:
    sent = await call(emu, "sendMessage", chat_id=user.id, text="t")
    assert await call(emu, "deleteMessage", chat_id=user.id, message_id=sent["message_id"]) is True
    error = await fails(emu, "deleteMessage", chat_id=user.id, message_id=sent["message_id"])
    assert error.description == "Bad Request: message to delete not found"


async def test_answer_callback_twice_fails_query_too_old(emu: Emulator, user: SimUser) -> None:
    sent = await call(emu, "sendMessage", chat_id=user.id, text="t", reply_markup=KEYBOARD)
    query_id = emu.press_button(user.id, user.id, sent["message_id"], data="ok")
    assert await call(emu, "answerCallbackQuery", callback_query_id=query_id, text="收到") is True
    assert emu.callback_answer(query_id)["text"] == "收到"
    error = await fails(emu, "answerCallbackQuery", callback_query_id=query_id)
    assert "query is too old" in error.description


@pytest.mark.parametrize(
    ("question", "options", "detail"),
    [
        ("q" * 301, ["a", "b"], "poll question length must not exceed 300"),
        ("q", ["a"], "poll must have at least 2 option"),
        ("q", [str(i) for i in range(13)], "poll can't have more than 12 options"),
        ("q", ["a", "b" * 101], "poll options length must not exceed 100"),
    ],
)
async def test_send_poll_invalid_fails_400(
    emu: Emulator, user: SimUser, question: str, options: list[str], detail: str
) -> None:
    error = await fails(emu, "sendPoll", chat_id=user.id, question=question, options=json.dumps(options))
    assert error.description == f"Bad Request: {detail}"


async def test_send_quiz_legacy_correct_option_id_becomes_list(emu: Emulator, user: SimUser) -> None:
    options = [{"text": "对"}, {"text": "错"}]
    sent = await call(emu, "sendPoll", chat_id=user.id, question="q", options=options, type="quiz", correct_option_id=1)
    assert sent["poll"]["correct_option_ids"] == [1]
    assert "correct_option_id" not in sent["poll"]
    assert [o["text"] for o in sent["poll"]["options"]] == ["对", "错"]


async def test_stop_poll_closes_and_emits_poll_update(emu: Emulator, user: SimUser) -> None:
    sent = await call(emu, "sendPoll", chat_id=user.id, question="q", options=["a", "b"])
    await drain(emu)
    stopped = await call(emu, "stopPoll", chat_id=user.id, message_id=sent["message_id"])
    assert stopped["is_closed"] is True
    assert [u["poll"]["is_closed"] for u in await drain(emu)] == [True]
    error = await fails(emu, "stopPoll", chat_id=user.id, message_id=sent["message_id"])
    assert error.description == "Bad Request: poll has already been closed"


async def test_poll_open_period_closes_with_clock(emu: Emulator, user: SimUser, clock: FakeClock) -> None:
    sent = await call(emu, "sendPoll", chat_id=user.id, question="q", options=["a", "b"], open_period=10)
    clock.advance(11)
    assert emu.transcript(user.id)["messages"][-1]["poll"]["is_closed"] is True
    assert sent["poll"]["open_period"] == 10


async def test_set_my_commands_kept_per_scope_and_language(emu: Emulator) -> None:
    zh = [{"command": "start", "description": "开始"}]
    en = [{"command": "start", "description": "Start"}]
    await call(emu, "setMyCommands", commands=zh)
    await call(emu, "setMyCommands", commands=en, language_code="en", scope={"type": "all_private_chats"})
    assert await call(emu, "getMyCommands") == zh
    assert await call(emu, "getMyCommands", language_code="en", scope='{"type": "all_private_chats"}') == en
    assert await call(emu, "getMyCommands", language_code="en") == []
    error = await fails(emu, "setMyCommands", commands=[{"command": "Bad-Name", "description": "x"}])
    assert error.description == "Bad Request: BOT_COMMAND_INVALID"


async def test_get_chat_includes_required_full_info_fields(emu: Emulator, user: SimUser) -> None:
    info = await call(emu, "getChat", chat_id=user.id)
    assert info["type"] == "private"
    assert {"accent_color_id", "max_reaction_count", "accepted_gift_types"} <= info.keys()


async def test_get_chat_member_reports_creator_member_left(emu: Emulator, user: SimUser) -> None:
    other = emu.create_user("小红")
    group = emu.create_group("楼栋群", [user.id])
    statuses = [
        (await call(emu, "getChatMember", chat_id=group.id, user_id=uid))["status"] for uid in (user.id, other.id)
    ]
    assert statuses == ["creator", "left"]
    emu.add_member(group.id, other.id)
    assert (await call(emu, "getChatMember", chat_id=group.id, user_id=other.id))["status"] == "member"


async def test_unknown_method_fails_404(emu: Emulator) -> None:
    error = await fails(emu, "sendTelepathy", chat_id=1)
    assert (error.code, error.description) == (404, "Not Found")


async def test_unknown_token_fails_401(emu: Emulator) -> None:
    with pytest.raises(Exception, match="Unauthorized"):
        await emu.call_api("999:nope", "getMe")


async def test_send_message_reply_parameters_quote_target(emu: Emulator, user: SimUser) -> None:
    asked = emu.send_text(user.id, "几点开始?")
    result = await call(
        emu, "sendMessage", chat_id=user.id, text="九点", reply_parameters={"message_id": asked["message_id"]}
    )
    assert result["reply_to_message"]["text"] == "几点开始?"
    error = await fails(emu, "sendMessage", chat_id=user.id, text="x", reply_to_message_id=999)
    assert error.description == "Bad Request: message to be replied not found"


async def test_two_tokens_keep_separate_private_chats(clock: FakeClock) -> None:
    emu = Emulator(["111:first-token", "222:second-token"], clock=clock)
    resident = emu.create_user("小明")
    emu.send_text(resident.id, "/start", bot_id=222)
    sent = await emu.call_api("222:second-token", "sendMessage", {"chat_id": resident.id, "text": "hi"})
    assert sent["from"]["id"] == 222
    with pytest.raises(ApiError, match="can't initiate conversation"):
        await emu.call_api("111:first-token", "sendMessage", {"chat_id": resident.id, "text": "hi"})
    assert emu.transcript(resident.id, bot_id=111)["messages"] == []
    assert [m["text"] for m in emu.transcript(resident.id, bot_id=222)["messages"]] == ["/start", "hi"]
    await emu.close()
