"""Photo downloads through the Bot API (getFile), one small adapter per library; the core sees only bytes.

Telegram serves files up to 20 MB through getFile; the intake refuses anything over 10 MB after download.
"""

from __future__ import annotations

import io
from typing import Any


class AiogramDownloader:
    """``bot.download(file_id)`` resolves the path with getFile and streams the file."""

    def __init__(self, bot: Any) -> None:
        self._bot = bot

    async def download(self, file_id: str) -> bytes:
        buffer = io.BytesIO()
        await self._bot.download(file_id, destination=buffer)
        return buffer.getvalue()


class PtbDownloader:
    """python-telegram-bot: getFile, then the File object downloads itself."""

    def __init__(self, bot: Any) -> None:
        self._bot = bot

    async def download(self, file_id: str) -> bytes:
        file = await self._bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())
