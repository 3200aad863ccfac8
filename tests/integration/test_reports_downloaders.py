"""Both channels' photo downloaders fetch a resident's upload through getFile from the sandbox emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.channels.files import AiogramDownloader, PtbDownloader
from bot.sandbox.emulator import Emulator
from bot.sandbox.server import run_emulator
from bot.services.files import strip_metadata
from tests.support.reports import jpeg_with_gps


@pytest.fixture
async def uploaded() -> AsyncIterator[tuple[Emulator, str, str, bytes]]:
    """The emulator over HTTP, with a photo a resident sent (file id) and its bytes."""
    async with run_emulator() as (emu, base_url):
        user = emu.create_user("小明")
        data = jpeg_with_gps()
        message = emu.send_photo(user.id, data)
        yield emu, base_url, message["photo"][-1]["file_id"], data


async def test_aiogram_downloader(uploaded: tuple[Emulator, str, str, bytes]) -> None:
    emu, base_url, file_id, data = uploaded
    bot = Bot(emu.default_bot.token, session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
    try:
        got = await AiogramDownloader(bot).download(file_id)
    finally:
        await bot.session.close()
    assert got == data and strip_metadata(got)[1].value == "jpeg"


async def test_ptb_downloader(uploaded: tuple[Emulator, str, str, bytes]) -> None:
    emu, base_url, file_id, data = uploaded
    bot = telegram.Bot(emu.default_bot.token, base_url=f"{base_url}/bot", base_file_url=f"{base_url}/file/bot")
    async with bot:
        assert await PtbDownloader(bot).download(file_id) == data
