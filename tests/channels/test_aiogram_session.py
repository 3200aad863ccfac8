"""The aiogram channel's HTTP calls (JSON bodies under aiogram's BaseSession): what reaches the Bot API for each kind
of reply, that uploads still go as multipart, and that failures surface as aiogram's errors — which the send gate
classifies — without the URL (which holds the bot token)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramForbiddenError, TelegramNetworkError
from aiogram.methods import TelegramMethod

from bot.channels.aiogram_channel import AiogramSender, make_bot
from bot.channels.aiogram_session import JsonSession
from bot.channels.gate import GateLimits, Kind, SendGate
from bot.conversation.replies import OutButton, OutCallbackAnswer, OutEdit, OutMessage, OutPhoto

TOKEN = "4242:TEST-token_for-offline-tests"
Api = tuple[str, list[dict[str, Any]]]


def sender(base: str) -> AiogramSender:
    return AiogramSender(make_bot(TOKEN, base, SendGate(GateLimits.from_rates(1000.0, 1000))))


def ungated(base: str) -> AiogramSender:
    """Without the gate, which would retry a transient failure with backoff: the session's own error is seen."""
    return AiogramSender(Bot(TOKEN, session=JsonSession(api=TelegramAPIServer.from_base(base))))


async def close(aiogram: AiogramSender) -> None:
    await aiogram.bot.session.close()


async def test_send_message_posts_json_with_the_keyboard_as_an_object(api: Api) -> None:
    base, calls = api
    aiogram = sender(base)
    keyboard = (
        (OutButton("设置", callback_data="1|menu.open|settings"), OutButton("地图", url="https://example.org/map")),
    )
    try:
        message_id = await aiogram.message(OutMessage(1000002, "你好，<b>王阿姨</b>", inline_keyboard=keyboard))
    finally:
        await close(aiogram)
    assert message_id == 7
    call = calls[-1]
    assert call["method"] == "sendMessage" and call["type"] == "application/json"
    assert "你好，<b>王阿姨</b>".encode() in call["raw"]  # UTF-8, not \u escapes
    assert call["params"] == {
        "chat_id": 1000002,
        "text": "你好，<b>王阿姨</b>",
        "parse_mode": "HTML",
        "reply_markup": {
            "inline_keyboard": [
                [
                    {"text": "设置", "callback_data": "1|menu.open|settings"},
                    {"text": "地图", "url": "https://example.org/map"},
                ]
            ]
        },
    }


async def test_reply_keyboards_are_sent_as_the_bot_api_shapes(api: Api) -> None:
    base, calls = api
    aiogram = sender(base)
    location = ((OutButton("📍 发送位置", request_location=True), OutButton("跳过")),)
    try:
        await aiogram.message(OutMessage(1000002, "在哪里？", parse_mode=None, reply_keyboard=location))
        await aiogram.message(OutMessage(1000002, "好的", parse_mode=None, remove_reply_keyboard=True))
    finally:
        await close(aiogram)
    asked, removed = (call["params"] for call in calls[-2:])
    assert asked["reply_markup"] == {
        "keyboard": [[{"text": "📍 发送位置", "request_location": True}, {"text": "跳过"}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
    }
    assert "parse_mode" not in asked
    assert removed["reply_markup"] == {"remove_keyboard": True}


async def test_answers_and_edits_post_only_what_was_set(api: Api) -> None:
    base, calls = api
    aiogram = sender(base)
    try:
        await aiogram.answer(OutCallbackAnswer("q1", "此按钮已失效", alert=True))
        await aiogram.answer(OutCallbackAnswer("q2"))
        await aiogram.edit(OutEdit(1000002, 55, "已更新", inline_keyboard=((OutButton("返回", "1|menu.main"),),)))
        await aiogram.edit_caption(OutEdit(1000002, 56, "照片说明"))
    finally:
        await close(aiogram)
    assert [call["method"] for call in calls] == [
        "answerCallbackQuery",
        "answerCallbackQuery",
        "editMessageText",
        "editMessageCaption",
    ]
    assert all(call["type"] == "application/json" for call in calls)
    alert, plain, edit, caption = (call["params"] for call in calls)
    assert alert == {"callback_query_id": "q1", "text": "此按钮已失效", "show_alert": True}
    assert plain == {"callback_query_id": "q2"}
    assert edit == {
        "chat_id": 1000002,
        "message_id": 55,
        "text": "已更新",
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": [[{"text": "返回", "callback_data": "1|menu.main"}]]},
    }
    assert caption == {"chat_id": 1000002, "message_id": 56, "caption": "照片说明", "parse_mode": "HTML"}


async def test_photo_from_disk_is_uploaded_as_multipart_and_a_file_id_goes_as_json(api: Api, tmp_path: Path) -> None:
    base, calls = api
    picture = tmp_path / "二维码.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    aiogram = sender(base)
    keyboard = ((OutButton("核销", "1|rw.verify|7"),),)
    try:
        uploaded = await aiogram.photo(OutPhoto(1000007, str(picture), "兑换码", inline_keyboard=keyboard))
        by_id = await aiogram.photo(OutPhoto(1000007, "AgACAgUAAxkBAAI", "随手拍照片"))
    finally:
        await close(aiogram)
    assert uploaded == by_id == 7
    upload, reuse = calls
    assert upload["type"] == "multipart/form-data"
    assert upload["params"]["caption"] == "兑换码"
    attached = str(upload["params"]["photo"]).removeprefix("attach://")
    assert upload["params"][attached].filename == "二维码.png"
    assert reuse["type"] == "application/json"
    assert reuse["params"] == {
        "chat_id": 1000007,
        "photo": "AgACAgUAAxkBAAI",
        "caption": "随手拍照片",
        "parse_mode": "HTML",
    }


async def test_refusal_is_aiograms_own_error_and_the_gate_sees_a_blocked_chat(api: Api) -> None:
    base, _ = api
    aiogram = sender(base)
    try:
        with pytest.raises(TelegramForbiddenError) as caught:
            await aiogram.message(OutMessage(403, "你好"))
    finally:
        await close(aiogram)
    assert aiogram.classify(caught.value).kind is Kind.FORBIDDEN


class _Slow(TelegramMethod[bool]):
    __returning__ = bool
    __api_method__ = "slowMethod"


async def test_slow_answer_raises_a_network_error(api: Api) -> None:
    base, _ = api
    aiogram = ungated(base)
    try:
        with pytest.raises(TelegramNetworkError) as caught:
            await aiogram.bot(_Slow(), request_timeout=1)
    finally:
        await close(aiogram)
    assert aiogram.classify(caught.value).kind is Kind.TRANSIENT  # retried with backoff by the gate


async def test_unreachable_server_raises_network_error_without_the_token() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    aiogram = ungated(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(TelegramNetworkError) as caught:
            await aiogram.bot.get_me()
    finally:
        await close(aiogram)
    error = caught.value
    assert "connect" in str(error).lower()  # the operator learns why
    shown = f"{error} {error!r} {error.__cause__!r} {error.__context__!r}"
    assert TOKEN not in shown and TOKEN.split(":")[1] not in shown
