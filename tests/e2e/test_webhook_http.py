"""Webhook intake over HTTP on both channels: the emulator posts updates to the bot's webhook server, as Telegram does.

What a webhook must guarantee: it registers itself with a secret, refuses whoever does not know the secret (and stores
nothing for them), answers 200 only once an update is stored (a redelivery is handled once), and survives junk.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bot.channels.webhook import SECRET_HEADER, WebhookIntake, WebhookServer
from bot.config import Settings
from bot.sandbox.app import Sandbox, start_sandbox
from bot.sandbox.emulator import Emulator
from bot.sandbox.server import run_emulator
from tests.support.sandbox_user import SimResident

SECRET = "sandbox_webhook-Secret-42"
AUNT = 1000002  # 王阿姨: registered in the demo data, has started the bot
NEW_RESIDENT = 1000001  # 小李: not registered
CHANNELS = ["aiogram", "ptb"]
QUIET = 1.0  # seconds in which a stored update would certainly have been answered


@asynccontextmanager
async def webhook_sandbox(settings: Settings, channel: str) -> AsyncIterator[Sandbox]:
    """The sandbox with the bot taking updates by webhook (its server on a free local port), once registered."""
    intake = WebhookIntake(url=None, secret=SECRET, host="127.0.0.1", port=0, max_connections=7)
    async with start_sandbox(settings, port=0, channel=channel, fresh=True, webhook=intake) as box:
        bot_id = box.emulator.default_bot.id
        for _ in range(400):
            if bot_id in box.emulator.webhooks:
                break
            await asyncio.sleep(0.025)
        assert bot_id in box.emulator.webhooks, "the bot did not call setWebhook"
        for _ in range(400):  # what the demo's set-up queued (group joins) is delivered and handled
            if not box.emulator.queues[bot_id].items and "pending" not in await inbox_counts(box):
                break
            await asyncio.sleep(0.025)
        yield box


def hook_url(box: Sandbox) -> str:
    return box.emulator.webhooks[box.emulator.default_bot.id].url


async def post(url: str, body: bytes, secret: str | None, **options: Any) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers, **options) as reply:
        return reply.status, await reply.text()


def start_update(emulator: Emulator, user_id: int, update_id: int, message_id: int) -> dict[str, Any]:
    """A /start from ``user_id`` as Telegram would post it (not queued in the emulator)."""
    message = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": emulator.chat(user_id).to_api(),
        "from": emulator.user(user_id).to_api(),
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    return {"update_id": update_id, "message": message}


def encode(update: dict[str, Any]) -> bytes:
    return json.dumps(update, ensure_ascii=False).encode()


async def inbox_counts(box: Sandbox) -> dict[str, int]:
    async with box.app.uow() as uow:
        return await uow.inbox.counts()


def bot_messages(box: Sandbox, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in box.emulator.transcript(chat_id)["messages"] if m["from_bot"]]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_bot_registers_its_webhook_and_answers_start(sandbox_settings: Settings, channel: str) -> None:
    async with webhook_sandbox(sandbox_settings, channel) as box:
        emulator = box.emulator
        hook = emulator.webhooks[emulator.default_bot.id]
        assert hook.secret_token == SECRET
        assert hook.allowed_updates == ["message", "callback_query", "poll_answer"]
        assert hook.max_connections == 7
        assert hook.url.startswith("http://127.0.0.1:") and hook.url.endswith("/telegram/webhook")
        me = SimResident(emulator, NEW_RESIDENT)
        await me.send("/start")
        await me.wait_for("请选择语言", within=15)
        assert emulator.calls(method="getUpdates") == []  # it came by webhook, not by polling
        assert emulator.webhooks[emulator.default_bot.id].last_error_message is None
        health = hook.url.replace("/telegram/webhook", "/healthz")
        async with aiohttp.ClientSession() as session, session.get(health) as reply:
            assert (reply.status, await reply.text()) == (200, "ok")
    # Stopped: the server no longer accepts, and the webhook stays registered (updates wait at Telegram).
    assert emulator.calls(method="deleteWebhook") == []
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(hook.url, b"{}", SECRET)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_post_without_or_with_wrong_secret_is_refused_and_nothing_stored(
    sandbox_settings: Settings, channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with webhook_sandbox(sandbox_settings, channel) as box:
        url, before = hook_url(box), await inbox_counts(box)
        answered = len(bot_messages(box, AUNT))
        update = encode(start_update(box.emulator, AUNT, 900_001, 900_001))
        assert await post(url, update, None) == (401, "unauthorized")
        assert await post(url, update, SECRET[:-1] + "x") == (403, "forbidden")
        assert await post(url, update, SECRET + "x") == (403, "forbidden")
        await asyncio.sleep(QUIET)
        assert await inbox_counts(box) == before
        assert len(bot_messages(box, AUNT)) == answered
        refusals = [r.getMessage() for r in caplog.records if "webhook: refused" in r.getMessage()]
        assert refusals and "127.0.0.1" in refusals[0] and "no secret token header" in refusals[0]
        assert all(SECRET not in r.getMessage() for r in caplog.records)
        # The same update with the right secret is a valid one: it is stored and answered.
        version = box.emulator.events.version
        assert await post(url, update, SECRET) == (200, "ok")
        await box.emulator.wait_bot_messages(AUNT, 1, after=version, within=15)
        assert sum((await inbox_counts(box)).values()) == sum(before.values()) + 1


@pytest.mark.parametrize("channel", CHANNELS)
async def test_redelivered_update_is_handled_once(sandbox_settings: Settings, channel: str) -> None:
    async with webhook_sandbox(sandbox_settings, channel) as box:
        emulator, url = box.emulator, hook_url(box)
        before = await inbox_counts(box)
        answered = len(bot_messages(box, AUNT))
        version = emulator.events.version
        # Telegram delivers the update (the emulator posts it), and delivers it again: the 200 was lost, say.
        update = emulator.emit(emulator.default_bot.id, "message", start_update(emulator, AUNT, 0, 900_002)["message"])
        assert update is not None
        results = await asyncio.gather(post(url, encode(update), SECRET), post(url, encode(update), SECRET))
        assert results == [(200, "ok"), (200, "ok")]
        await emulator.wait_bot_messages(AUNT, 1, after=version, within=15)
        await asyncio.sleep(QUIET)
        assert await post(url, encode(update), SECRET) == (200, "ok")  # once more, after it was handled
        await asyncio.sleep(QUIET)
        after = await inbox_counts(box)
        assert after.get("done", 0) == before.get("done", 0) + 1
        assert sum(after.values()) == sum(before.values()) + 1
        replies = bot_messages(box, AUNT)[answered:]
        assert len(replies) == 1, [m["text"] for m in replies]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_oversized_or_garbage_bodies_are_refused_and_the_server_keeps_serving(
    sandbox_settings: Settings, channel: str
) -> None:
    async with webhook_sandbox(sandbox_settings, channel) as box:
        url, before = hook_url(box), await inbox_counts(box)
        big = encode({"update_id": 900_003, "message": {"text": "x" * (2 * 1024 * 1024)}})
        assert (await post(url, big, SECRET))[0] == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
            for _ in range(20):
                yield b" " * 100_000

        assert (await post(url, chunks(), SECRET))[0] == 413  # type: ignore[arg-type]
        for garbage in (b"not json", b"\xff\xfe", b"[1, 2]", b'"update"', b'{"message": {}}', b'{"update_id": "7"}'):
            assert await post(url, garbage, SECRET) == (400, "bad request"), garbage
        assert await inbox_counts(box) == before
        me = SimResident(box.emulator, NEW_RESIDENT)
        await me.send("/start")
        await me.wait_for("请选择语言", within=15)


async def test_update_not_stored_is_answered_500_and_taken_again_when_telegram_redelivers() -> None:
    """The database is down for the first attempt: no 200, so Telegram (the emulator) posts it again."""
    stored: list[dict[str, Any]] = []
    attempts = 0

    async def take(updates: list[dict[str, Any]]) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database unreachable")
        stored.extend(updates)
        return len(updates)

    server = WebhookServer(take, SECRET, "/hook", "127.0.0.1", 0)
    await server.start()
    try:
        async with run_emulator(webhook_backoff=0.01) as (emulator, _):
            user = emulator.create_user("居民")
            bot = emulator.default_bot
            assert await emulator.call_api(bot.token, "setWebhook", {"url": server.local_url, "secret_token": SECRET})
            emulator.send_text(user.id, "你好")
            for _ in range(200):
                if stored:
                    break
                await asyncio.sleep(0.025)
            assert attempts == 2
            assert [u["message"]["text"] for u in stored] == ["你好"]
            assert emulator.webhooks[bot.id].last_error_message is None
    finally:
        await server.stop()


async def test_health_check_reports_503_while_the_database_is_unreachable_and_200_when_it_answers() -> None:
    """A load balancer or the operator's probe sees an intake that would answer Telegram 500 as unhealthy."""
    down = True

    async def take(updates: list[dict[str, Any]]) -> int:
        return len(updates)

    async def ready() -> None:
        if down:
            raise ConnectionError("database unreachable")

    server = WebhookServer(take, SECRET, "/hook", "127.0.0.1", 0, ready=ready)
    await server.start()
    health = server.local_url.replace("/hook", "/healthz")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(health) as reply:
                assert (reply.status, await reply.text()) == (503, "database unavailable")
            down = False
            async with session.get(health) as reply:
                assert (reply.status, await reply.text()) == (200, "ok")
    finally:
        await server.stop()
