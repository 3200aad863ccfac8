"""The outbox on both backends: several dispatchers (as several processes would) never send a row twice, each chat's
messages keep their order, a notice is rendered in its recipient's language, an edit waits for its original."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.replies import OutEdit, OutMessage
from bot.domain.messaging import OutboxStatus
from bot.domain.notices import Notice
from tests.support.outbox import FakeTelegram, dispatch_all, outbox_rows, queue_notices


@pytest.fixture
async def app(db_url: str) -> AsyncIterator[App]:
    app = await build_app(Settings(database=DatabaseSettings(url=db_url)), bot_username="sicheng_bot")
    yield app
    await app.aclose()


async def test_two_dispatchers_never_send_a_row_twice_and_keep_each_chats_order(app: App, db_url: str) -> None:
    chats = [1000 + i for i in range(30)]
    notices = [
        Notice(chat, "errors/unknown_command", {"command": f"c{n}"}, "zh_Hans", key=f"t:{chat}:{n}")
        for n in range(6)
        for chat in chats
    ]
    await queue_notices(app, notices)
    # A second process: its own engine, transactions and dispatcher on the same database.
    other = await build_app(Settings(database=DatabaseSettings(url=db_url)), bot_username="sicheng_bot")
    try:
        shared: list[OutMessage] = []  # one Telegram, two processes sending to it
        first, second = FakeTelegram(log=shared), FakeTelegram(log=shared)
        await asyncio.gather(dispatch_all(app, first), dispatch_all(other, second))
    finally:
        await other.aclose()
    rows = await outbox_rows(app)
    assert len(rows) == 180 and all(r.status is OutboxStatus.SENT for r in rows)
    sent = first.sent + second.sent
    assert len(sent) == 180, "every row sent exactly once"
    per_chat = Counter(o.chat_id for o in sent if isinstance(o, OutMessage))
    assert set(per_chat.values()) == {6}
    for chat in chats:  # a chat's messages went out in the order they were queued, whichever process sent them
        order = [o.text.split("/")[1][:2] for o in shared if o.chat_id == chat]
        assert order == sorted(order), (chat, order)


async def test_notice_is_rendered_in_the_recipients_language(app: App) -> None:
    await queue_notices(app, [Notice(1, "errors/generic", locale="en"), Notice(2, "errors/generic", locale="zh_Hans")])
    telegram = FakeTelegram()
    await dispatch_all(app, telegram)
    texts = {o.chat_id: o.text for o in telegram.sent if isinstance(o, OutMessage)}
    assert texts[1] != texts[2] and "重试" in texts[2] and "again" in texts[1].lower()


async def test_edit_of_a_sent_card_edits_that_message(app: App) -> None:
    card = Notice(-100, "errors/generic", locale="en", ref="card:1")
    await queue_notices(app, [card])
    telegram = FakeTelegram()
    await dispatch_all(app, telegram)
    (original,) = telegram.sent
    await queue_notices(app, [Notice(-100, "errors/internal", {"update_id": 7}, "en", ref="card:1", edit=True)])
    await dispatch_all(app, telegram)
    edit = telegram.sent[-1]
    assert isinstance(edit, OutEdit) and isinstance(original, OutMessage)
    rows = await outbox_rows(app)
    assert edit.message_id == rows[0].message_id and "7" in edit.text


async def test_edit_of_a_card_never_delivered_posts_the_current_card(app: App) -> None:
    telegram = FakeTelegram(blocked=set())
    await queue_notices(app, [Notice(-100, "errors/generic", locale="en", ref="card:2", edit=True)])
    await dispatch_all(app, telegram)
    assert isinstance(telegram.sent[-1], OutMessage)
