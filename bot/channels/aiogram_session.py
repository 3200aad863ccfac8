"""aiogram's Bot API calls with JSON bodies, through aiogram's own extension point for sessions (``BaseSession``).

Why: aiogram's ``AiohttpSession`` sends every call as a form — each field JSON-encoded on its own, then the form
encoded by aiohttp — after dumping the method's pydantic model with its nested keyboard models. With the sender's
slim methods (``aiogram_channel``) a settings page sent with its keyboard costs 0.29–0.37 ms of CPU as one JSON body,
against 0.58–0.67 ms aiogram's way (``bench.aiogram_send``, docs/benchmarks.md). The Bot API accepts
``application/json`` for every method; a call that uploads a file (a photo or a certificate from disk) still goes as
``multipart/form-data``, by aiogram's own code.

What stays aiogram's: the ``Bot``, its methods and defaults (``prepare_value`` resolves them as before), its session
middlewares (the send gate), response parsing and its exceptions (``check_response``), file downloads. Transport
failures become aiogram's ``TelegramNetworkError`` named by class and system reason only: several aiohttp errors
print the request's URL, which holds the bot token.

Bodies are written, and answers read by aiogram's ``check_response``, with orjson (``bot.jsonio``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout
from yarl import URL

from bot.channels.base import transport_failure
from bot.jsonio import dumps, loads

if TYPE_CHECKING:
    from aiogram import Bot

JSON_HEADERS = {"Content-Type": "application/json"}


class JsonSession(AiohttpSession):
    """``AiohttpSession`` that posts a JSON body unless the call uploads a file."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("json_loads", loads)  # aiogram's check_response, for the answers it still reads
        super().__init__(**kwargs)
        self._urls: dict[tuple[str, str], URL] = {}  # parsed once per token and method, not by aiohttp per call

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's BaseSession signature
    ) -> TelegramType:
        files: dict[str, InputFile] = {}
        body: dict[str, Any] = {}
        for name, value in method:
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None and prepared != "":  # what aiogram's form leaves out, left out here too
                body[name] = prepared
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self._urls.get((bot.token, method.__api_method__))
        if url is None:
            url = URL(self.api.api_url(token=bot.token, method=method.__api_method__))
            self._urls[bot.token, method.__api_method__] = url
        try:
            async with session.post(
                url,
                data=dumps(body),
                headers=JSON_HEADERS,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                content = await response.read()
        except (TimeoutError, asyncio.TimeoutError) as error:  # noqa: UP041 (aiohttp raises either)
            raise TelegramNetworkError(method=method, message="Request timeout error") from error
        except ClientError as error:  # never the URL: it holds the token
            raise TelegramNetworkError(method=method, message=transport_failure(error)) from None
        text = content.decode("utf-8", errors="replace")
        checked = self.check_response(bot=bot, method=method, status_code=response.status, content=text)
        return cast(TelegramType, checked.result)
