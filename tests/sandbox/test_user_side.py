"""The resident side: buttons, polls, blocking, groups, transcripts and change events."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.sandbox.emulator import Emulator
from bot.sandbox.errors import SandboxError
from bot.sandbox.files import tiny_png
from bot.sandbox.models import SimUser
from tests.sandbox.helpers import call, drain

KEYBOARD = {"inline_keyboard": [[{"text": "报名", "callback_data": "join:1"}, {"text": "官网", "url": "https://x.cn"}]]}


async def test_send_start_with_payload_carries_bot_command_entity(emu: Emulator) -> None:
    resident = emu.create_user("小明")
    message = emu.send_command(resident.id, "start", "c1_b2")
    assert message["text"] == "/start c1_b2"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]


async def test_press_button_on_message_emits_callback_with_message(emu: Emulator, user: SimUser) -> None:
    sent = await call(emu, "sendMessage", chat_id=user.id, text="活动", reply_markup=KEYBOARD)
    await drain(emu)
    query_id = emu.press_button(user.id, user.id, sent["message_id"], text="报名")
    (update,) = await drain(emu)
    query = update["callback_query"]
    assert (query["id"], query["data"]) == (query_id, "join:1")
    assert query["message"]["message_id"] == sent["message_id"]


@pytest.mark.parametrize(("data", "text"), [("join:2", None), (None, "官网")])
async def test_press_button_not_on_message_fails(
    emu: Emulator, user: SimUser, data: str | None, text: str | None
) -> None:
    sent = await call(emu, "sendMessage", chat_id=user.id, text="活动", reply_markup=KEYBOARD)
    with pytest.raises(SandboxError):
        emu.press_button(user.id, user.id, sent["message_id"], data=data, text=text)


async def test_press_raw_forges_any_data(emu: Emulator, user: SimUser) -> None:
    await drain(emu)
    emu.press_raw(user.id, "v1:admin:delete_all")
    (update,) = await drain(emu)
    assert update["callback_query"]["data"] == "v1:admin:delete_all"
    assert "message" not in update["callback_query"]


async def test_answer_poll_emits_poll_answer_with_persistent_ids(emu: Emulator, user: SimUser) -> None:
    sent = await call(
        emu,
        "sendPoll",
        chat_id=user.id,
        question="垃圾分类?",
        options=["a", "b", "c"],
        type="quiz",
        is_anonymous=False,
        correct_option_ids=[2],
        explanation="因为",
    )
    await drain(emu)
    emu.answer_poll(user.id, sent["poll"]["id"], [2])
    answer, state = await drain(emu)
    assert answer["poll_answer"]["option_ids"] == [2]
    assert answer["poll_answer"]["option_persistent_ids"] == [sent["poll"]["options"][2]["persistent_id"]]
    assert state["poll"]["total_voter_count"] == 1
    with pytest.raises(SandboxError, match="does not allow changing"):
        emu.answer_poll(user.id, sent["poll"]["id"], [1])


async def test_answer_anonymous_poll_sends_no_poll_answer(emu: Emulator, user: SimUser) -> None:
    sent = await call(emu, "sendPoll", chat_id=user.id, question="q", options=["a", "b"])
    await drain(emu)
    emu.answer_poll(user.id, sent["poll"]["id"], [0])
    assert [next(k for k in u if k != "update_id") for u in await drain(emu)] == ["poll"]


async def test_block_emits_my_chat_member_and_writing_unblocks(emu: Emulator, user: SimUser) -> None:
    await drain(emu)
    emu.block(user.id)
    emu.send_text(user.id, "/start")
    updates = await drain(emu)
    assert updates[0]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    assert updates[1]["my_chat_member"]["new_chat_member"]["status"] == "member"
    assert updates[2]["message"]["text"] == "/start"
    assert await call(emu, "sendMessage", chat_id=user.id, text="欢迎回来")


async def test_add_member_emits_new_chat_members(emu: Emulator, user: SimUser) -> None:
    group = emu.create_group("楼栋群", [user.id])
    newcomer = emu.create_user("小红")
    await drain(emu)
    emu.add_member(group.id, newcomer.id)
    (update,) = await drain(emu)
    assert update["message"]["new_chat_members"][0]["id"] == newcomer.id
    assert update["message"]["chat"]["type"] == "supergroup"


async def test_send_photo_stores_file_reachable_by_get_file(emu: Emulator, user: SimUser) -> None:
    message = emu.send_photo(user.id, tiny_png(4, 3), caption="垃圾桶满了")
    photo = message["photo"][-1]
    assert (photo["width"], photo["height"]) == (4, 3)
    info = await call(emu, "getFile", file_id=photo["file_id"])
    assert emu.files.by_path(info["file_path"]) is not None
    with pytest.raises(SandboxError, match="IMAGE_PROCESS_FAILED"):
        emu.send_photo(user.id, b"not an image")


async def test_transcript_shows_edits_applied_and_deletions_removed(emu: Emulator, user: SimUser) -> None:
    first = await call(emu, "sendMessage", chat_id=user.id, text="v1", reply_markup=KEYBOARD)
    second = await call(emu, "sendMessage", chat_id=user.id, text="bye")
    before = emu.transcript(user.id)["version"]
    await call(
        emu,
        "editMessageText",
        chat_id=user.id,
        message_id=first["message_id"],
        text="v2",
        reply_markup=json.dumps({"inline_keyboard": [[{"text": "完成", "callback_data": "done"}]]}),
    )
    await call(emu, "deleteMessage", chat_id=user.id, message_id=second["message_id"])
    full = emu.transcript(user.id)
    assert [m["text"] for m in full["messages"]] == ["/start", "v2"]
    assert full["messages"][1]["edited"] is True
    assert full["messages"][1]["inline_keyboard"][0][0]["text"] == "完成"
    changes = emu.transcript(user.id, after=before)
    assert [m["message_id"] for m in changes["messages"]] == [first["message_id"]]
    assert changes["deleted"] == [second["message_id"]]


async def test_transcript_tracks_reply_keyboard(emu: Emulator, user: SimUser) -> None:
    keyboard = {"keyboard": [[{"text": "发送位置", "request_location": True}]], "one_time_keyboard": True}
    await call(emu, "sendMessage", chat_id=user.id, text="在哪?", reply_markup=keyboard)
    assert emu.transcript(user.id)["reply_keyboard"]["keyboard"][0][0]["request_location"] is True
    emu.send_location(user.id, 31.23, 121.47)
    transcript = emu.transcript(user.id)
    assert transcript["reply_keyboard"] is None
    assert transcript["messages"][-1]["location"] == {"latitude": 31.23, "longitude": 121.47}


async def test_wait_events_returns_when_something_changes(emu: Emulator, user: SimUser) -> None:
    version = emu.events.version
    waiter = asyncio.create_task(emu.wait_events(version, wait=5))
    await asyncio.sleep(0.01)
    await call(emu, "sendMessage", chat_id=user.id, text="hi")
    result = await asyncio.wait_for(waiter, 1)
    assert [e["kind"] for e in result["events"]] == ["message"]
    assert (await emu.wait_events(result["version"], wait=0.01))["events"] == []


async def test_wait_bot_messages_returns_new_bot_messages(emu: Emulator, user: SimUser) -> None:
    async def reply_later() -> None:
        await asyncio.sleep(0.01)
        await call(emu, "sendMessage", chat_id=user.id, text="一")
        await call(emu, "sendMessage", chat_id=user.id, text="二")

    task = asyncio.create_task(reply_later())
    messages = await emu.wait_bot_messages(user.id, 2, within=1)
    await task
    assert [m["text"] for m in messages] == ["一", "二"]
    with pytest.raises(TimeoutError):
        await emu.wait_bot_messages(user.id, within=0.02)
