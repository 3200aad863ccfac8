"""The PTB channel's HTTP transport (aiohttp under PTB's BaseRequest): what reaches the Bot API, and how failures
surface to PTB — as its own errors, without the URL (which holds the bot token)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TelegramError, TimedOut

from bot.channels.ptb_request import AiohttpRequest

TOKEN = "4242:TEST-token_for-offline-tests"


async def test_send_message_posts_json_with_the_keyboard_as_an_object(api: tuple[str, list[dict[str, Any]]]) -> None:
    base, calls = api
    bot = Bot(TOKEN, base_url=f"{base}/bot", request=AiohttpRequest(), get_updates_request=AiohttpRequest(1))
    async with bot:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("设置", callback_data="menu:settings")]])
        sent = await bot.send_message(1000002, "你好，王阿姨", reply_markup=keyboard)
    assert sent.message_id == 7 and sent.text == "你好，王阿姨"
    call = calls[-1]
    assert call["method"] == "sendMessage" and call["type"] == "application/json"
    assert call["params"]["text"] == "你好，王阿姨" and "你好，王阿姨".encode() in call["raw"]  # UTF-8, not \u escapes
    assert call["params"]["reply_markup"] == {"inline_keyboard": [[{"text": "设置", "callback_data": "menu:settings"}]]}


async def test_slow_answer_raises_timed_out(api: tuple[str, list[dict[str, Any]]]) -> None:
    base, _ = api
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{base}/bot{TOKEN}/slowMethod")
    finally:
        await request.shutdown()


async def test_slow_but_steady_download_is_not_cut_short(api: tuple[str, list[dict[str, Any]]]) -> None:
    """A photo download may take longer than all timeouts together, as long as data keeps coming (each read waits
    less than the read timeout): as with PTB's own transport."""
    base, _ = api
    request = AiohttpRequest()
    await request.initialize()
    try:
        data = await request.retrieve(
            f"{base}/file/bot{TOKEN}/photo.jpg",
            read_timeout=0.5,
            write_timeout=0.1,
            connect_timeout=0.1,
            pool_timeout=0.1,
        )
    finally:
        await request.shutdown()
    assert len(data) == 8000


async def test_unreachable_server_raises_network_error_without_the_token() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()
    error = caught.value
    assert not isinstance(error, TimedOut)
    assert "connect" in str(error).lower()  # the operator learns why ("Connect call failed ...")
    shown = f"{error} {error!r} {error.__cause__!r} {error.__context__!r}"
    assert TOKEN not in shown and TOKEN.split(":")[1] not in shown


async def test_proxy_from_the_environment_is_used(
    api: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An egress proxy set in HTTP(S)_PROXY carries the calls, as it did with PTB's own transport: here the test's
    API plays the proxy for a host that does not resolve."""
    base, calls = api
    monkeypatch.setenv("HTTP_PROXY", base)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    request = AiohttpRequest()
    await request.initialize()
    try:
        me = await request.post(f"http://api.telegram.invalid/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()
    assert isinstance(me, dict) and me["username"] == "sicheng_bot"
    assert calls[-1]["method"] == "getMe"


async def test_request_before_initialize_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:9/bot/getMe", "POST")


async def test_calls_take_no_trip_to_a_worker_thread(
    api: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxy settings are looked up once per host, not in a worker thread on every call (aiohttp's trust_env reads
    ~/.netrc and the proxy variables that way: two thread hops per Bot API call); a host NO_PROXY names goes direct."""
    base, calls = api
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    loop = asyncio.get_running_loop()
    hops: list[Any] = []
    run_in_executor = loop.run_in_executor

    def counted(*args: Any) -> Any:
        hops.append(args[1])
        return run_in_executor(*args)

    monkeypatch.setattr(loop, "run_in_executor", counted)
    request = AiohttpRequest()
    await request.initialize()
    try:
        for n in range(5):
            await request.post(f"{base}/bot{TOKEN}/getMe")
            assert len(calls) == n + 1
    finally:
        await request.shutdown()
    assert hops == []


def test_answers_are_read_as_ptb_reads_them() -> None:
    assert AiohttpRequest.parse_json_payload('{"ok":true,"result":{"text":"你好"}}'.encode()) == {
        "ok": True,
        "result": {"text": "你好"},
    }
    # Bytes that are not UTF-8 are read leniently, as PTB's own parser does; malformed JSON is PTB's error.
    assert AiohttpRequest.parse_json_payload(b'{"ok":true,"result":"\xff"}')["result"] == "\ufffd"
    with pytest.raises(TelegramError, match="Invalid server response"):
        AiohttpRequest.parse_json_payload(b'{"ok":true,')
