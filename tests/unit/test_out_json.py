"""Rendered replies wait in the outbox as JSON: every kind comes back exactly as it was queued."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from bot.conversation.replies import (
    OutButton,
    OutCallbackAnswer,
    OutDocument,
    OutEdit,
    Outgoing,
    OutMessage,
    OutPhoto,
    OutPoll,
    out_from_json,
    out_to_json,
)

KEYBOARD = (
    (OutButton("设置", callback_data="menu:open:settings"), OutButton("积分", callback_data="menu:open:points")),
    (OutButton("指南", url="https://example.org/guide"),),
)
REPLY_KEYBOARD = ((OutButton("发送位置", request_location=True),),)

SAMPLES: list[Outgoing] = [
    OutMessage(1000002, "<b>设置</b>", inline_keyboard=KEYBOARD),
    OutMessage(1000003, "Where is it?", reply_keyboard=REPLY_KEYBOARD, paid=True),
    OutMessage(-100123, "通知", remove_reply_keyboard=True, parse_mode="HTML"),
    OutEdit(1000002, 42, "已更新", inline_keyboard=KEYBOARD),
    OutCallbackAnswer("cb-1", "已收到", alert=True),
    OutPhoto(1000005, "reports/1/a.jpg", caption="随手拍 #12", inline_keyboard=KEYBOARD),
    OutDocument(1000004, "/tmp/cert.pdf", "志愿服务记录证明.pdf", caption="证明"),
    OutPoll(
        -100123, "垃圾分类：电池属于？", ("有害垃圾", "其他垃圾"), (0,), explanation="电池含重金属", open_period=30
    ),
]


@pytest.mark.parametrize("item", SAMPLES, ids=lambda item: type(item).__name__)
def test_queued_reply_comes_back_from_the_outbox_unchanged(item: Outgoing) -> None:
    kind, payload = out_to_json(item)
    stored = json.loads(json.dumps(payload, ensure_ascii=False))  # what the outbox row holds
    assert stored == json.loads(json.dumps(asdict(item)))  # the same document as before (rows already queued)
    assert out_from_json(kind, stored) == item
