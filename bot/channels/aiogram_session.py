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
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout

from bot.channels.base import transport_failure

if TYPE_CHECKING:
    from aiogram import Bot

JSON_HEADERS = {"Content-Type": "application/json"}


class JsonSession(AiohttpSession):
    """``AiohttpSession`` that posts a JSON body unless the call uploads a file."""

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
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=json.dumps(body, ensure_ascii=False).encode(),
                headers=JSON_HEADERS,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                content = await response.text()
        except (TimeoutError, asyncio.TimeoutError) as error:  # noqa: UP041 (aiohttp raises either)
            raise TelegramNetworkError(method=method, message="Request timeout error") from error
        except ClientError as error:  # never the URL: it holds the token
            raise TelegramNetworkError(method=method, message=transport_failure(error)) from None
        checked = self.check_response(bot=bot, method=method, status_code=response.status, content=content)
        return cast(TelegramType, checked.result)
