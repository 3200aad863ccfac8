"""The translator is the check of an update's shape: what the bot reads must have the Bot API's types, or the
update is refused as malformed (the inbox then sets it aside instead of handling garbage)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bot.channels.translate import Malformed, to_incoming
from bot.conversation.incoming import ChatType

USER = {"id": 7, "is_bot": False, "first_name": "小李", "language_code": "zh-hans"}
CHAT = {"id": 7, "type": "private", "first_name": "小李"}
MESSAGE = {"message_id": 3, "date": 1_765_000_000, "chat": CHAT, "from": USER, "text": "你好"}
TAP = {"id": "q1", "from": USER, "chat_instance": "1", "data": "m:open:settings", "message": MESSAGE}
ANSWER = {"poll_id": "p1", "user": USER, "option_ids": [0, 2]}


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    update = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = update
    for key in parents:
        node = node[key]
    node[last] = value
    return update


def test_well_formed_updates_translate_to_what_the_core_reads() -> None:
    tap = to_incoming({"update_id": 1, "callback_query": TAP})
    assert tap is not None
    assert (tap.user_id, tap.chat_id, tap.callback_id, tap.callback_data) == (7, 7, "q1", "m:open:settings")
    assert (tap.callback_message_id, tap.sent_at, tap.language_code) == (3, 1_765_000_000, "zh-hans")
    assert not tap.callback_on_photo
    photo = {"message_id": 4, "date": 1_765_000_000, "chat": CHAT, "photo": [{"file_id": "f", "width": 90}]}
    under_photo = to_incoming({"update_id": 4, "callback_query": _with(TAP, "message", photo)})
    assert under_photo is not None and under_photo.callback_on_photo  # its text is a caption
    answer = to_incoming({"update_id": 2, "poll_answer": ANSWER})
    assert answer is not None and answer.poll_answer is not None
    assert (answer.poll_answer.poll_id, answer.poll_answer.option_ids, answer.chat_id) == ("p1", (0, 2), 7)
    group = {
        **MESSAGE,
        "chat": {"id": -100, "type": "supergroup", "title": "3号楼"},
        "location": {"latitude": 31, "longitude": 121.5},
    }
    message = to_incoming({"update_id": 3, "message": group})
    assert message is not None and message.location is not None
    assert (message.chat_type, message.chat_title, message.location.latitude) == (ChatType.SUPERGROUP, "3号楼", 31.0)


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"update_id": "1", "message": MESSAGE}, "update_id"),
        ({"update_id": True, "message": MESSAGE}, "update_id"),
        ({"update_id": 1, "message": "hi"}, "message"),
        ({"update_id": 1, "message": _with(MESSAGE, "chat", "??")}, "message.chat"),
        ({"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": "??"}}, "message.chat"),
        ({"update_id": 1, "message": _with(MESSAGE, "chat.id", "7")}, "chat.id"),
        ({"update_id": 1, "message": _with(MESSAGE, "from.id", None)}, "from.id"),
        ({"update_id": 1, "message": _with(MESSAGE, "text", {"x": 1})}, "message.text"),
        ({"update_id": 1, "message": _with(MESSAGE, "entities", "bold")}, "message.entities"),
        ({"update_id": 1, "message": _with(MESSAGE, "photo", [{"file_id": 5}])}, "photo.file_id"),
        ({"update_id": 1, "message": _with(MESSAGE, "location", {"latitude": "N"})}, "location.latitude"),
        ({"update_id": 1, "message": _with(MESSAGE, "new_chat_members", [7])}, "message.new_chat_members"),
        ({"update_id": 1, "callback_query": _with(TAP, "data", 5)}, "callback_query.data"),
        ({"update_id": 1, "callback_query": _with(TAP, "from", [])}, "callback_query.from"),
        ({"update_id": 1, "callback_query": _with(TAP, "id", 9)}, "callback_query.id"),
        ({"update_id": 1, "poll_answer": _with(ANSWER, "option_ids", ["0"])}, "poll_answer.option_ids"),
        ({"update_id": 1, "poll_answer": _with(ANSWER, "poll_id", None)}, "poll_answer.poll_id"),
    ],
)
def test_wrongly_typed_field_is_refused_as_malformed(update: dict[str, Any], field: str) -> None:
    with pytest.raises(Malformed, match=field.replace(".", r"\.")):
        to_incoming(update)


def test_fields_the_bot_does_not_read_are_not_checked() -> None:
    odd = _with(MESSAGE, "via_bot", "not an object") | {"some_future_field": [1, {"x": None}]}
    incoming = to_incoming({"update_id": 4, "message": odd})
    assert incoming is not None and incoming.text == "你好"


def test_unknown_chat_kind_is_handled_as_private() -> None:
    incoming = to_incoming({"update_id": 5, "message": _with(MESSAGE, "chat.type", "monoforum")})
    assert incoming is not None and incoming.chat_type == ChatType.PRIVATE
