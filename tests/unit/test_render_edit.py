"""Editing the message under a pressed button: a photo's caption when the button is under a photo (Telegram refuses
to edit the text of a message that has none), the message's text otherwise."""

from __future__ import annotations

from dataclasses import replace

from bot.app import build_renderer
from bot.config import Settings
from bot.conversation.incoming import Incoming
from bot.conversation.render import CAPTION_LIMIT, ActionRenderer
from bot.conversation.replies import EditText, OutCallbackAnswer, OutEdit

PRESS = Incoming(update_id=1, user_id=7, chat_id=7, callback_id="q1", callback_data="x", callback_message_id=30)
CONTEXT = {"role": "reporter", "ticket": "R-1", "category": "乱扔垃圾", "note": "已清运" * 400, "answer": "fixed"}


def _edit(action: EditText, incoming: Incoming) -> OutEdit:
    out = ActionRenderer(build_renderer(Settings())).render([action], incoming, "zh_Hans")
    assert isinstance(out[0], OutCallbackAnswer)
    assert isinstance(out[1], OutEdit)
    return out[1]


def test_edit_under_a_photo_edits_its_caption_clipped_to_telegram_limit() -> None:
    edit = _edit(EditText("reports/notify/resolved", CONTEXT), replace(PRESS, callback_on_photo=True))
    assert edit.caption and edit.message_id == 30 and edit.inline_keyboard == ()
    assert len(edit.text) == CAPTION_LIMIT and edit.text.startswith("✅ 您报告的问题 <b>R-1</b>")


def test_edit_under_a_text_message_edits_its_text() -> None:
    edit = _edit(EditText("reports/notify/resolved", CONTEXT), PRESS)
    assert not edit.caption and len(edit.text) > CAPTION_LIMIT


def test_edit_of_another_message_says_itself_whether_it_is_a_photo() -> None:
    under_photo = replace(PRESS, callback_on_photo=True)
    assert not _edit(EditText("reports/notify/resolved", CONTEXT, message_id=12), under_photo).caption
    assert _edit(EditText("reports/notify/resolved", CONTEXT, message_id=12, caption=True), PRESS).caption
