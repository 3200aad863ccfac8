"""Update delivery: long polling, offset confirmation, allowed_updates, webhooks, group privacy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from bot.sandbox.emulator import Emulator
from bot.sandbox.models import SimUser
from bot.sandbox.server import run_emulator
from bot.sandbox.webhook import SECRET_HEADER
from tests.sandbox.helpers import call, drain, fails


async def test_get_updates_long_poll_returns_when_update_arrives(emu: Emulator, user: SimUser) -> None:
    await drain(emu)
    poll = asyncio.create_task(call(emu, "getUpdates", timeout=5))
    await asyncio.sleep(0.05)
    assert not poll.done()
    emu.send_text(user.id, "你好")
    updates = await asyncio.wait_for(poll, 1)
    assert [u["message"]["text"] for u in updates] == ["你好"]


async def test_get_updates_long_poll_times_out_empty(emu: Emulator) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await call(emu, "getUpdates", timeout="0.2") == []
    assert loop.time() - started >= 0.15


async def test_get_updates_offset_confirms_older_updates(emu: Emulator, user: SimUser) -> None:
    emu.send_text(user.id, "a")
    emu.send_text(user.id, "b")
    first = await call(emu, "getUpdates")
    assert len(first) == 3  # /start from the fixture, a, b
    assert await call(emu, "getUpdates") == first  # nothing confirmed yet
    rest = await call(emu, "getUpdates", offset=first[1]["update_id"])
    assert [u["update_id"] for u in rest] == [u["update_id"] for u in first[1:]]
    assert await call(emu, "getUpdates", offset=first[-1]["update_id"] + 1) == []


async def test_get_updates_negative_offset_keeps_last(emu: Emulator, user: SimUser) -> None:
    emu.send_text(user.id, "a")
    emu.send_text(user.id, "b")
    last = await call(emu, "getUpdates", offset=-1)
    assert [u["message"]["text"] for u in last] == ["b"]


async def test_get_updates_limit_caps_batch(emu: Emulator, user: SimUser) -> None:
    for text in "abc":
        emu.send_text(user.id, text)
    assert len(await call(emu, "getUpdates", limit=2)) == 2


async def test_get_updates_second_poll_ends_first_with_409(emu: Emulator) -> None:
    first = asyncio.create_task(call(emu, "getUpdates", timeout=5))
    await asyncio.sleep(0.02)
    second = asyncio.create_task(call(emu, "getUpdates", timeout="0.05"))
    error = await asyncio.wait_for(asyncio.gather(first, return_exceptions=True), 1)
    assert "terminated by other getUpdates request" in str(error[0])
    assert await second == []


async def test_get_updates_allowed_updates_filters_new_updates(emu: Emulator, user: SimUser) -> None:
    await call(emu, "getUpdates", allowed_updates='["callback_query"]')
    emu.send_text(user.id, "ignored")
    sent = await call(
        emu,
        "sendMessage",
        chat_id=user.id,
        text="t",
        reply_markup={"inline_keyboard": [[{"text": "b", "callback_data": "go"}]]},
    )
    emu.press_button(user.id, user.id, sent["message_id"], data="go")
    kinds = [next(k for k in u if k != "update_id") for u in await drain(emu)]
    assert kinds[-1] == "callback_query"
    assert "ignored" not in str(await call(emu, "getUpdates"))


async def test_group_privacy_delivers_commands_not_chatter(emu: Emulator, user: SimUser) -> None:
    group = emu.create_group("楼栋群", [user.id])
    await drain(emu)
    emu.send_text(user.id, "大家好", chat_id=group.id)
    emu.send_text(user.id, "/checkin@sicheng_bot", chat_id=group.id)
    emu.send_text(user.id, "/checkin@other_bot", chat_id=group.id)
    texts = [u["message"]["text"] for u in await drain(emu)]
    assert texts == ["/checkin@sicheng_bot"]


async def test_get_updates_while_webhook_set_fails_409(emu: Emulator) -> None:
    async def ok(url: str, update: dict[str, Any], secret_token: str | None) -> tuple[int, str]:
        return 200, "OK"

    emu.webhook_poster = ok
    await call(emu, "setWebhook", url="http://127.0.0.1:9/hook")
    error = await fails(emu, "getUpdates")
    assert error.code == 409
    await call(emu, "deleteWebhook")
    assert await call(emu, "getUpdates") == []


@pytest.fixture
async def receiver() -> Any:
    """A tiny webhook endpoint: fails the first `fail_first` posts, records the rest."""
    state: dict[str, Any] = {"fail_first": 0, "posts": [], "arrived": asyncio.Event()}

    async def hook(request: web.Request) -> web.Response:
        state["posts"].append((request.headers.get(SECRET_HEADER), await request.json()))
        if len(state["posts"]) <= state["fail_first"]:
            return web.Response(status=500)
        state["arrived"].set()
        return web.Response(text="ok")

    async with run_emulator(extra_routes=[web.post("/hook", hook)], webhook_backoff=0.01) as (emu, base_url):
        yield emu, base_url, state


async def test_webhook_delivers_update_with_secret_header(receiver: Any) -> None:
    emu, base_url, state = receiver
    bot = emu.default_bot
    user = emu.create_user("小明")
    await emu.call_api(bot.token, "setWebhook", {"url": f"{base_url}/hook", "secret_token": "s3cret_-"})
    emu.send_text(user.id, "/start")
    await asyncio.wait_for(state["arrived"].wait(), 3)
    secret, update = state["posts"][0]
    assert secret == "s3cret_-"
    assert update["message"]["text"] == "/start"
    info = await emu.call_api(bot.token, "getWebhookInfo")
    assert info["url"] == f"{base_url}/hook"


async def test_webhook_non_2xx_is_retried(receiver: Any) -> None:
    emu, base_url, state = receiver
    state["fail_first"] = 2
    user = emu.create_user("小明")
    await emu.call_api(emu.default_bot.token, "setWebhook", {"url": f"{base_url}/hook"})
    emu.send_text(user.id, "hi")
    await asyncio.wait_for(state["arrived"].wait(), 3)
    assert [u["update_id"] for _, u in state["posts"]] == [1, 1, 1]
    assert state["posts"][0][0] is None  # no secret configured, no header


async def test_webhook_bad_secret_fails_400(emu: Emulator) -> None:
    error = await fails(emu, "setWebhook", url="https://example.org/hook", secret_token="no spaces")
    assert error.description == "Bad Request: secret token contains unallowed characters"
