"""Every kind of update the emulator emits parses with aiogram's and python-telegram-bot's own types."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiogram
import pytest
import telegram
from aiogram import types as ag
from pydantic import BaseModel

from bot.sandbox.emulator import DEFAULT_TOKEN, Emulator
from bot.sandbox.files import tiny_png
from tests.sandbox.helpers import call, drain


async def _emit_everything(emu: Emulator) -> dict[str, dict[str, Any]]:
    """Drive one of each update kind and return them by a descriptive name."""
    kinds: dict[str, dict[str, Any]] = {}
    user = emu.create_user("小明", last_name="王", username="xiaoming")

    def take(name: str, updates: list[dict[str, Any]]) -> None:
        for i, update in enumerate(updates):
            kinds[f"{name}#{i}" if len(updates) > 1 else name] = update

    emu.send_command(user.id, "start", "c1_b2")
    take("start_with_payload", await drain(emu))
    emu.send_text(user.id, "你好")
    take("private_text", await drain(emu))
    emu.send_text(user.id, "/help")
    take("command", await drain(emu))
    keyboard = {"inline_keyboard": [[{"text": "好", "callback_data": "ok"}, {"text": "链接", "url": "https://x.cn"}]]}
    sent = await call(emu, "sendMessage", chat_id=user.id, text="<b>活动</b>", parse_mode="HTML", reply_markup=keyboard)
    emu.send_text(user.id, "回复", reply_to_message_id=sent["message_id"])
    take("reply", await drain(emu))
    emu.press_button(user.id, user.id, sent["message_id"], data="ok")
    take("callback_query", await drain(emu))
    emu.send_photo(user.id, tiny_png(), caption="/report 垃圾")
    take("photo", await drain(emu))
    emu.send_location(user.id, 31.23, 121.47)
    take("location", await drain(emu))
    quiz = await call(
        emu,
        "sendPoll",
        chat_id=user.id,
        question="q",
        options=json.dumps(["a", "b"]),
        type="quiz",
        is_anonymous="false",
        correct_option_ids="[1]",
        explanation="因为",
        open_period=60,
    )
    emu.answer_poll(user.id, quiz["poll"]["id"], [1])
    take("poll_answer_and_poll", await drain(emu))
    other = emu.create_user("小红", language_code="en")
    group = emu.create_group("楼栋群", [user.id])
    take("my_chat_member_group", await drain(emu))
    emu.add_member(group.id, other.id)
    take("new_chat_members", await drain(emu))
    emu.send_text(other.id, "/checkin", chat_id=group.id)
    take("group_command", await drain(emu))
    emu.block(user.id)
    take("my_chat_member_blocked", await drain(emu))
    return kinds


@pytest.fixture
async def updates() -> AsyncIterator[dict[str, dict[str, Any]]]:
    emu = Emulator()
    yield await _emit_everything(emu)
    await emu.close()


def _aiogram_extras(obj: Any, path: str = "update") -> list[str]:
    """Field names aiogram did not recognise (its models allow extras silently)."""
    found: list[str] = []
    if isinstance(obj, BaseModel):
        found += [f"{path}.{key}" for key in (obj.model_extra or {})]
        for name in type(obj).model_fields:
            found += _aiogram_extras(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            found += _aiogram_extras(item, f"{path}[{i}]")
    return found


def _ptb_extras(obj: Any, path: str = "update") -> list[str]:
    """Field names PTB did not recognise (it parks them in api_kwargs)."""
    found: list[str] = []
    if isinstance(obj, telegram.TelegramObject):
        found += [f"{path}.{key}" for key in obj.api_kwargs]
        for name, value in obj._get_attrs(recursive=False).items():
            found += _ptb_extras(value, f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            found += _ptb_extras(item, f"{path}[{i}]")
    return found


async def test_every_update_kind_is_emitted(updates: dict[str, dict[str, Any]]) -> None:
    payload_kinds = {next(k for k in u if k != "update_id") for u in updates.values()}
    assert payload_kinds == {"message", "callback_query", "poll_answer", "poll", "my_chat_member"}
    assert len(updates) >= 13


async def test_updates_parse_with_aiogram_without_unknown_fields(updates: dict[str, dict[str, Any]]) -> None:
    bot = aiogram.Bot(DEFAULT_TOKEN)
    try:
        for name, data in updates.items():
            parsed = ag.Update.model_validate(data, context={"bot": bot})
            assert parsed.event_type != "unknown", name
            assert _aiogram_extras(parsed) == [], name
    finally:
        await bot.session.close()


async def test_updates_parse_with_ptb_without_unknown_fields(updates: dict[str, dict[str, Any]]) -> None:
    bot = telegram.Bot(DEFAULT_TOKEN)
    for name, data in updates.items():
        parsed = telegram.Update.de_json(data, bot)
        assert parsed.update_id == data["update_id"], name
        assert _ptb_extras(parsed) == [], name


async def test_parsed_updates_keep_meaning(updates: dict[str, dict[str, Any]]) -> None:
    bot = telegram.Bot(DEFAULT_TOKEN)
    start = telegram.Update.de_json(updates["start_with_payload"], bot)
    assert start.message is not None
    assert start.message.parse_entities([telegram.MessageEntity.BOT_COMMAND]) != {}
    answer = telegram.Update.de_json(updates["poll_answer_and_poll#0"], bot).poll_answer
    assert answer is not None
    assert answer.option_persistent_ids == (
        updates["poll_answer_and_poll#0"]["poll_answer"]["option_persistent_ids"][0],
    )
    joined = ag.Update.model_validate(updates["new_chat_members"])
    assert joined.message is not None
    assert joined.message.new_chat_members
