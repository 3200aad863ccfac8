"""The sandbox's web chat page: served correctly (fast, no browser), and used end to end in Chromium.

The browser test drives the whole stack (emulator over HTTP + the bot on the aiogram channel + the page) the way a
person would: pick someone, onboard, tap menu buttons, upload a photo, and reads only what the page shows.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from bot.config import FilesSettings, SandboxSettings, Settings
from bot.sandbox.app import Sandbox, start_sandbox
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.demo import RESIDENTS_GROUP, seed_emulator
from bot.sandbox.emulator import Emulator
from bot.sandbox.server import build_app
from bot.sandbox.web import setup_web
from tests.e2e.conftest import CHROMIUM_ARGS

TIMEOUT_MS = 30_000  # the stack answers in ~100 ms; this only bounds a failure (CI shares two cores)
XIAO_LI = 1000001  # demo persona, not registered yet


# ---------------------------------------------------------------------------------------------- served (no browser)
@pytest.fixture
async def page_client() -> AsyncIterator[tuple[TestClient[Any, Any], Emulator]]:
    """The emulator's app with the page mounted, no bot and no database: enough to check what is served."""
    emulator = Emulator()
    seed_emulator(emulator)
    client = TestClient(TestServer(build_app(emulator, configure=setup_web)))
    await client.start_server()
    try:
        yield client, emulator
    finally:
        await client.close()


async def test_page_is_served_as_utf8_html(page_client: tuple[TestClient[Any, Any], Emulator]) -> None:
    client, _ = page_client
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = await response.text()
    assert '<meta charset="utf-8">' in html
    assert '<html lang="zh-Hans">' in html
    assert "四城同创助手" in html  # the bot's name, from the emulator
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        static = await client.get(asset)
        assert static.status == 200, asset
        assert static.headers["Content-Type"].endswith("charset=utf-8"), asset
        assert len(await static.read()) > 1000, asset
    assert len(re.findall(r'"/static/app\.(?:js|css)\?v=\w+"', html)) == 2


async def test_static_files_stay_inside_their_folder(page_client: tuple[TestClient[Any, Any], Emulator]) -> None:
    client, _ = page_client
    for path in ("/static/app.js", "/static/app.css"):
        assert (await client.get(path)).status == 200
    for path in ("/static/missing.js", "/static/..%2Fweb.py", "/static/.env.js", "/static/index.html.j2"):
        assert (await client.get(path)).status == 404, path


async def test_page_helpers_list_a_persons_chats_and_the_command_menu(
    page_client: tuple[TestClient[Any, Any], Emulator],
) -> None:
    client, emulator = page_client
    chats = (await (await client.get(f"/sandbox/page/chats?user_id={XIAO_LI}")).json())["result"]
    assert [c["id"] for c in chats] == [XIAO_LI, RESIDENTS_GROUP]  # the private chat, then the groups 小李 is in
    assert chats[0]["is_bot"] and chats[0]["last"] is None
    assert (await client.get("/sandbox/page/chats?user_id=42")).status == 404

    menu = [{"command": "menu", "description": "主菜单"}]
    english = [{"command": "menu", "description": "Menu"}]
    await emulator.call_api(DEFAULT_TOKEN, "setMyCommands", {"commands": menu})
    await emulator.call_api(DEFAULT_TOKEN, "setMyCommands", {"commands": english, "language_code": "en"})
    zh = (await (await client.get("/sandbox/page/commands?language_code=zh-hans")).json())["result"]
    en = (await (await client.get("/sandbox/page/commands?language_code=en")).json())["result"]
    assert zh == menu  # no "zh" list: falls back to the default one, as Telegram clients do
    assert en == english
    assert len(emulator.calls(method="getMyCommands")) == 0  # the page's reads are not the bot's requests


# ---------------------------------------------------------------------------------------------- in a browser
@pytest.fixture
async def sandbox_stack(tmp_path: Path) -> AsyncIterator[Sandbox]:
    settings = Settings(
        sandbox=SandboxSettings(database=f"sqlite+aiosqlite:///{tmp_path / 'sb.db'}"),
        files=FilesSettings(root=tmp_path / "media"),
    )
    async with start_sandbox(settings, host="127.0.0.1", port=0, fresh=True) as box:
        yield box


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (220, 70, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.browser
async def test_a_new_resident_onboards_and_reports_with_a_photo(chromium: str, sandbox_stack: Sandbox) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 800}, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.set_default_timeout(TIMEOUT_MS)
            await page.goto(sandbox_stack.url + "/")
            await page.wait_for_selector("body[data-ready]")

            await page.get_by_label("我是").select_option(str(XIAO_LI))
            await expect(page.locator("#person-role")).to_contain_text(str(XIAO_LI))
            await expect(page.locator("#chat-title")).to_have_text("四城同创助手")
            messages = page.locator("#messages")
            bot_bubbles = messages.locator(".msg.in .bubble")

            async def press(name: str | re.Pattern[str]) -> None:
                await messages.get_by_role("button", name=name, exact=isinstance(name, str)).last.click()

            await page.get_by_label("消息", exact=True).fill("/start")
            await page.get_by_label("消息", exact=True).press("Enter")
            await expect(messages.locator(".msg.out .bubble").first).to_contain_text("/start")
            await expect(bot_bubbles.last).to_contain_text("请选择语言")
            await press("中文")
            await press(re.compile(r"^(✅\s*)?同意"))  # "✅ 同意并继续", not "暂不同意"
            await press("示范社区")
            await press("1号楼")
            await expect(messages).to_contain_text("欢迎加入")
            await expect(bot_bubbles.last).to_contain_text("主菜单")

            await press(re.compile("设置"))
            await expect(bot_bubbles.last).to_contain_text("1号楼")  # the settings card shows the chosen building

            await page.locator("#photo-input").set_input_files(
                {"name": "litter.png", "mimeType": "image/png", "buffer": small_png()}
            )
            await page.locator("#photo-dialog").get_by_role("button", name="发送").click()
            photo = messages.locator(".msg.out img.photo")
            await expect(photo).to_be_visible()
            await expect(photo).to_have_js_property("naturalWidth", 40)  # really loaded from the emulator

            # A bot message with formatting and markup-looking text: formatted from entities, never run as HTML.
            await sandbox_stack.emulator.call_api(
                DEFAULT_TOKEN,
                "sendMessage",
                {
                    "chat_id": XIAO_LI,
                    "text": "<b>注意</b> &lt;img src=x onerror=alert(1)&gt;",
                    "parse_mode": "HTML",
                    "reply_markup": {"inline_keyboard": [[{"text": "旧按钮", "callback_data": "stale"}]]},
                },
            )
            await expect(bot_bubbles.last.locator("b")).to_have_text("注意")
            await expect(bot_bubbles.last).to_contain_text("<img src=x onerror=alert(1)>")
            assert await messages.locator("img:not(.photo)").count() == 0

            # The bot answers a button it does not know with an alert: the page shows it as a dialog.
            await press("旧按钮")
            alert = page.locator("#alert-dialog")
            await expect(alert).to_be_visible()
            await expect(alert.locator("#alert-text")).not_to_be_empty()
            await alert.get_by_role("button", name="OK").click()
            await expect(alert).to_be_hidden()
            assert errors == []
        finally:
            await browser.close()
