"""An offline Bot API for in-process channel tests: records calls, answers like Telegram, injects errors.

aiogram gets it as a session (``RecordingSession``), python-telegram-bot as a request object (``RecordingRequest``),
so both libraries run their real request/response code against the same fake.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from telegram.request import BaseRequest, RequestData

BOT_USER = {
    "id": 4242,
    "is_bot": True,
    "first_name": "四城同创",
    "username": "sicheng_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # uploaded parts: name → (file name, bytes)


@dataclass
class FakeBotApi:
    clock: Any = None  # a callable giving the current (fake) time, recorded with each call
    calls: list[Call] = field(default_factory=list)
    failures: deque[tuple[str, int, str, int | None]] = field(default_factory=deque)
    blocked: set[int] = field(default_factory=set)
    _ids: Any = field(default_factory=lambda: itertools.count(100))

    def fail_next(self, method: str, status: int, description: str, retry_after: int | None = None) -> None:
        """The next call of ``method`` fails with this Telegram error."""
        self.failures.append((method.lower(), status, description, retry_after))

    def respond(
        self, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]] | None = None
    ) -> tuple[int, dict[str, Any]]:
        params = {k: _decode(v) for k, v in params.items() if v is not None}
        for name in files or {}:
            params.pop(name, None)  # the upload itself, not a file_id
        self.calls.append(Call(method, params, self.clock() if self.clock else 0.0, files=dict(files or {})))
        failure = next((f for f in self.failures if f[0] == method.lower()), None)
        if failure is not None:
            self.failures.remove(failure)
            self.calls[-1].status = failure[1]
            body: dict[str, Any] = {"ok": False, "error_code": failure[1], "description": failure[2]}
            if failure[3] is not None:
                body["parameters"] = {"retry_after": failure[3]}
            return failure[1], body
        chat_id = params.get("chat_id")
        if chat_id is not None and int(chat_id) in self.blocked:
            self.calls[-1].status = 403
            return 403, {
                "ok": False,
                "error_code": 403,
                "description": "Forbidden: bot was blocked by the user",
            }
        return 200, {"ok": True, "result": self._result(method, params)}

    def sent(self, *methods: str) -> list[Call]:
        """Calls of the given methods (all message-producing calls when none given)."""
        wanted = {m.lower() for m in methods} or {
            "sendmessage",
            "editmessagetext",
            "answercallbackquery",
            "sendphoto",
            "senddocument",
            "sendpoll",
        }
        return [c for c in self.calls if c.method.lower() in wanted]

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        name = method.lower()
        if name == "getme":
            return BOT_USER
        if name in {"sendmessage", "editmessagetext", "sendphoto", "senddocument", "sendpoll"}:
            return self._message(name, params)
        return True

    def _message(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": int(params.get("message_id") or next(self._ids)),
            "date": 1_780_000_000,
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": BOT_USER,
        }
        if "text" in params:
            message["text"] = params["text"]
        if name == "sendphoto":
            message["photo"] = [{"file_id": "ph1", "file_unique_id": "u1", "width": 10, "height": 10}]
        if name == "senddocument":
            upload = self.calls[-1].files.get("document")
            message["document"] = {"file_id": "doc1", "file_unique_id": "ud1"}
            if upload is not None:
                message["document"] |= {"file_name": upload[0], "file_size": len(upload[1])}
        if "caption" in params:
            message["caption"] = params["caption"]
        if name == "sendpoll":
            options = [
                {"text": o if isinstance(o, str) else o["text"], "voter_count": 0, "persistent_id": str(i)}
                for i, o in enumerate(params["options"])
            ]
            message["poll"] = {
                "id": f"poll{next(self._ids)}",
                "question": params["question"],
                "options": options,
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": False,
                "type": "quiz",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "correct_option_ids": params.get("correct_option_ids", []),
            }
        return message


def _content(content: Any) -> bytes:
    """An upload's bytes (PTB may hand a file handle instead)."""
    return content if isinstance(content, bytes) else bytes(content.read())


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class RecordingSession(BaseSession):
    """aiogram session that talks to the fake instead of the network, through aiogram's own response checks."""

    def __init__(self, api: FakeBotApi) -> None:
        super().__init__()
        self.api = api

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's BaseSession signature
    ) -> TelegramType:
        files: dict[str, InputFile] = {}
        params = {k: self.prepare_value(v, bot=bot, files=files) for k, v in method.model_dump(warnings=False).items()}
        uploads: dict[str, tuple[str, bytes]] = {}
        for name, value in params.items():  # an upload is sent as "attach://<key>" plus the file under that key
            if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
                upload = files[value[9:]]
                uploads[name] = (upload.filename or "", b"".join([chunk async for chunk in upload.read(bot)]))
        status, body = self.api.respond(method.__api_method__, params, uploads)
        response = self.check_response(bot=bot, method=method, status_code=status, content=json.dumps(body))
        return response.result  # type: ignore[return-value]

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - not used
        raise NotImplementedError

    async def close(self) -> None:
        return None


class RecordingRequest(BaseRequest):
    """python-telegram-bot request object answering from the fake; PTB parses status codes itself."""

    def __init__(self, api: FakeBotApi) -> None:
        self.api = api

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, **_: Any
    ) -> tuple[int, bytes]:
        params = request_data.parameters if request_data else {}
        uploads = {
            name: (str(part[0]), _content(part[1]))
            for name, part in (request_data.multipart_data if request_data else {}).items()
        }
        status, body = self.api.respond(url.rsplit("/", 1)[-1], dict(params), uploads)
        return status, json.dumps(body).encode()
