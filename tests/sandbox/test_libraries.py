"""Both real client libraries talk to the emulator over HTTP, including their error classes."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import telegram
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from telegram import error as ptb_error

from bot.sandbox.emulator import Emulator
from bot.sandbox.files import tiny_png
from bot.sandbox.limits import Faults
from bot.sandbox.server import run_emulator

Served = tuple[Emulator, str]


@pytest.fixture
async def aiogram_bot(served: Served) -> AsyncIterator[Bot]:
    emu, base_url = served
    bot = Bot(emu.default_bot.token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
    yield bot
    await bot.session.close()


@pytest.fixture
async def ptb_bot(served: Served) -> AsyncIterator[telegram.Bot]:
    emu, base_url = served
    bot = telegram.Bot(emu.default_bot.token, base_url=f"{base_url}/bot", base_file_url=f"{base_url}/file/bot")
    async with bot:  # initialize() calls getMe
        yield bot


async def test_aiogram_bot_full_round_trip_succeeds(served: Served, aiogram_bot: Bot) -> None:
    emu, _ = served
    bot = aiogram_bot
    assert (await bot.get_me()).username == "sicheng_bot"
    user = emu.create_user("小明")
    emu.send_command(user.id, "start", "c1_b2")
    (update,) = await bot.get_updates(timeout=0)
    assert update.message is not None
    assert update.message.text == "/start c1_b2"
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="好", callback_data="ok")]])
    sent = await bot.send_message(user.id, "<b>活动</b>", parse_mode="HTML", reply_markup=keyboard)
    assert sent.text == "活动"
    assert sent.entities is not None
    photo = await bot.send_photo(user.id, BufferedInputFile(tiny_png(3, 2), "p.png"), caption="图")
    assert photo.photo is not None
    assert photo.photo[-1].width == 3
    file = await bot.get_file(photo.photo[-1].file_id)
    downloaded = await bot.download(file)
    assert downloaded is not None
    assert downloaded.read() == tiny_png(3, 2)
    poll = await bot.send_poll(user.id, "q", ["a", "b"], type="quiz", correct_option_ids=[1], is_anonymous=False)
    assert poll.poll is not None
    assert poll.poll.correct_option_ids == [1]
    query_id = emu.press_button(user.id, user.id, sent.message_id, data="ok")
    updates = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert updates[-1].callback_query is not None
    assert updates[-1].callback_query.id == query_id
    assert await bot.answer_callback_query(query_id, text="收到")
    edited = await bot.edit_message_text("v2", chat_id=user.id, message_id=sent.message_id)
    assert not isinstance(edited, bool)
    assert edited.text == "v2"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("v2", chat_id=user.id, message_id=sent.message_id)
    emu.block(user.id)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(user.id, "x")


async def test_ptb_bot_full_round_trip_succeeds(served: Served, ptb_bot: telegram.Bot) -> None:
    emu, _ = served
    bot = ptb_bot
    assert bot.username == "sicheng_bot"
    user = emu.create_user("小明")
    emu.send_command(user.id, "start", "c1_b2")
    (update,) = await bot.get_updates(timeout=0)
    assert update.message is not None
    assert update.message.text == "/start c1_b2"
    keyboard = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("好", callback_data="ok")]])
    sent = await bot.send_message(user.id, "<b>活动</b>", parse_mode="HTML", reply_markup=keyboard)
    assert sent.text == "活动"
    photo = await bot.send_photo(user.id, photo=tiny_png(3, 2), caption="图")
    file = await bot.get_file(photo.photo[-1].file_id)
    assert await file.download_as_bytearray() == bytearray(tiny_png(3, 2))
    poll = await bot.send_poll(
        user.id, "q", ["a", "b"], type=telegram.Poll.QUIZ, correct_option_ids=[1], is_anonymous=False
    )
    assert poll.poll is not None
    assert poll.poll.correct_option_ids == (1,)
    query_id = emu.press_button(user.id, user.id, sent.message_id, data="ok")
    updates = await bot.get_updates(offset=update.update_id + 1, timeout=0)
    assert updates[-1].callback_query is not None
    assert updates[-1].callback_query.id == query_id
    assert await bot.answer_callback_query(query_id, text="收到")
    edited = await bot.edit_message_text("v2", chat_id=user.id, message_id=sent.message_id)
    assert isinstance(edited, telegram.Message)
    assert edited.text == "v2"
    with pytest.raises(ptb_error.BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("v2", chat_id=user.id, message_id=sent.message_id)
    emu.block(user.id)
    with pytest.raises(ptb_error.Forbidden, match=r"(?i)blocked by the user"):
        await bot.send_message(user.id, "x")


async def test_both_libraries_see_429_as_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB's own RetryAfter warns unless opted in to timedelta values (the coming default).
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    async with run_emulator(faults=Faults(share_429=1.0, retry_after=3)) as (emu, base_url):
        user = emu.create_user("小明")
        emu.send_text(user.id, "/start")
        token = emu.default_bot.token
        aio = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
        try:
            with pytest.raises(TelegramRetryAfter) as aio_error:
                await aio.send_message(user.id, "x")
            assert aio_error.value.retry_after == 3
        finally:
            await aio.session.close()
        async with telegram.Bot(token, base_url=f"{base_url}/bot") as ptb:
            with pytest.raises(ptb_error.RetryAfter) as ptb_retry:
                await ptb.send_message(user.id, "x")
            assert ptb_retry.value.retry_after == dt.timedelta(seconds=3)
        assert [c.status for c in emu.calls(method="sendMessage")] == [429, 429]


async def test_aiogram_dispatcher_polling_echoes(served: Served, aiogram_bot: Bot) -> None:
    from aiogram import Dispatcher
    from aiogram.types import Message

    emu, _ = served
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    user = emu.create_user("小明")
    polling = asyncio.create_task(dp.start_polling(aiogram_bot, handle_signals=False, polling_timeout=1))
    try:
        emu.send_text(user.id, "你好")
        (reply,) = await emu.wait_bot_messages(user.id, within=5, after=0)
        assert reply["text"] == "echo: 你好"
    finally:
        await dp.stop_polling()
        await polling


async def test_ptb_application_polling_echoes(served: Served) -> None:
    from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

    emu, base_url = served

    async def echo(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    app = (
        ApplicationBuilder()
        .token(emu.default_bot.token)
        .base_url(f"{base_url}/bot")
        .base_file_url(f"{base_url}/file/bot")
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    user = emu.create_user("小明")
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=1)
        try:
            emu.send_text(user.id, "你好")
            (reply,) = await emu.wait_bot_messages(user.id, within=5, after=0)
            assert reply["text"] == "echo: 你好"
        finally:
            await app.updater.stop()
            await app.stop()


async def test_aiogram_bot_other_methods_parse(served: Served, aiogram_bot: Bot) -> None:
    from aiogram.types import BotCommand

    emu, _ = served
    bot = aiogram_bot
    user = emu.create_user("小明")
    emu.send_text(user.id, "/start")
    group = emu.create_group("楼栋群", [user.id])
    assert (await bot.get_chat(user.id)).accepted_gift_types is not None
    assert (await bot.get_chat(group.id)).title == "楼栋群"
    assert (await bot.get_chat_member(group.id, user.id)).status == "creator"
    assert await bot.set_my_commands([BotCommand(command="start", description="开始")], language_code="zh")
    assert [c.command for c in await bot.get_my_commands(language_code="zh")] == ["start"]
    assert (await bot.get_webhook_info()).url == ""
    place = await bot.send_location(group.id, 31.2, 121.5)
    assert place.location is not None
    doc = await bot.send_document(user.id, BufferedInputFile(b"%PDF-1.4", "notice.pdf"), caption="通知")
    assert doc.document is not None
    assert doc.document.file_name == "notice.pdf"
    poll = await bot.send_poll(group.id, "q", ["a", "b"], is_anonymous=False, open_period=60)
    stopped = await bot.stop_poll(group.id, poll.message_id)
    assert stopped.is_closed
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="x")]])
    marked = await bot.edit_message_reply_markup(chat_id=user.id, message_id=doc.message_id, reply_markup=keyboard)
    assert not isinstance(marked, bool)
    assert await bot.delete_message(user.id, doc.message_id)
    assert await bot.send_chat_action(user.id, "typing")
    assert await bot.close()


async def test_ptb_bot_other_methods_parse(served: Served, ptb_bot: telegram.Bot) -> None:
    emu, _ = served
    bot = ptb_bot
    user = emu.create_user("小明")
    emu.send_text(user.id, "/start")
    group = emu.create_group("楼栋群", [user.id])
    assert (await bot.get_chat(user.id)).accepted_gift_types is not None
    assert (await bot.get_chat_member(group.id, user.id)).status == "creator"
    assert await bot.set_my_commands([telegram.BotCommand("start", "开始")])
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert (await bot.get_webhook_info()).url == ""
    place = await bot.send_location(group.id, 31.2, 121.5)
    assert place.location is not None
    doc = await bot.send_document(user.id, document=b"%PDF-1.4", filename="notice.pdf", caption="通知")
    assert doc.document is not None
    assert doc.document.file_name == "notice.pdf"
    poll = await bot.send_poll(group.id, "q", ["a", "b"], is_anonymous=False)
    stopped = await bot.stop_poll(group.id, poll.message_id)
    assert stopped.is_closed
    assert await bot.delete_message(user.id, doc.message_id)
    assert await bot.send_chat_action(user.id, "typing")
