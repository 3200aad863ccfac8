from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.state import MemoryStateStore
from tests.conftest import sqlite_copy


class FakeTime:
    """A clock that only moves when the code under test sleeps: 429 windows take no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def app(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[App]:
    url = sqlite_copy(sqlite_template, tmp_path / "channels.db")
    settings = Settings(database=DatabaseSettings(url=url))
    app = await build_app(settings, state_store=MemoryStateStore())
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    yield app
    await app.aclose()


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A tiny Bot API for the transports' tests: records each call's method, content type, parameters and raw body;
    sendMessage and sendPhoto answer a message (chat 403 is refused as a blocked bot would be), ``slowMethod``
    answers after 2 s; a GET under /file/ trickles 8,000 bytes over 1.2 s."""
    calls: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            raw = await request.read()
            params = json.loads(raw)
        else:  # a form (multipart with uploads): files as aiohttp's FileField, with their file names
            params, raw = dict(await request.post()), b""
        calls.append({"method": method, "type": request.content_type, "params": params, "raw": raw})
        if method == "slowMethod":
            await asyncio.sleep(2)
        if method in ("sendMessage", "sendPhoto"):
            if str(params["chat_id"]) == "403":
                refusal = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
                return web.json_response(refusal, status=403)
            chat = {"id": int(params["chat_id"]), "type": "private"}
            result: Any = {"message_id": 7, "date": 0, "chat": chat, "text": str(params.get("text", ""))}
            return web.json_response({"ok": True, "result": result})
        if method == "getMe":
            me = {"id": 4242, "is_bot": True, "first_name": "Sicheng", "username": "sicheng_bot"}
            return web.json_response({"ok": True, "result": me})
        return web.json_response({"ok": True, "result": True})

    async def download(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(8):  # 1.2 s in all, a chunk every 0.15 s
            await asyncio.sleep(0.15)
            await response.write(b"x" * 1000)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", handle)
    app.router.add_get("/file/bot{token}/{path}", download)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", calls
    finally:
        await runner.cleanup()
