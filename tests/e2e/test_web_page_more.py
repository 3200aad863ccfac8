"""The sandbox page, more: only real commands are tappable, and chats survive a restart of the sandbox."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.config import FilesSettings, SandboxSettings, Settings, TelegramSettings
from bot.sandbox.app import Sandbox, start_sandbox
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.demo import RESIDENTS_GROUP
from bot.sandbox.files import tiny_png
from tests.e2e.conftest import CHROMIUM_ARGS
from tests.e2e.test_web_page import TIMEOUT_MS, small_png

if TYPE_CHECKING:
    from playwright.async_api import Page

WANG = 1000002  # demo persona, registered resident
ORGANISER = 1000006


def settings_in(folder: Path) -> Settings:
    return Settings(
        sandbox=SandboxSettings(database=f"sqlite+aiosqlite:///{folder / 'sicheng-sandbox.db'}"),
        telegram=TelegramSettings(chat_per_second=50.0),
        files=FilesSettings(root=folder / "media"),
    )


@asynccontextmanager
async def browser_page(chromium: str) -> AsyncIterator[Page]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 800}, locale="zh-CN")
            page.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
            assert errors == []
        finally:
            await browser.close()


async def open_as(page: Page, box: Sandbox, user_id: int) -> None:
    await page.goto(f"{box.url}/#{user_id}")
    await page.wait_for_selector("body[data-ready]")


# ---------------------------------------------------------------------------------------------- command links
@pytest.mark.browser
async def test_slash_inside_other_text_stays_text_and_real_commands_are_tappable(chromium: str, tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with start_sandbox(settings_in(tmp_path), fresh=True) as box, browser_page(chromium) as page:
        await open_as(page, box, ORGANISER)
        messages = page.locator("#messages")
        # The organiser types notice HTML: the closing tags are text, not commands.
        await page.get_by_label("消息", exact=True).fill("<b>本周六上午9点</b> 大扫除 a/b")
        await page.get_by_label("消息", exact=True).press("Enter")
        mine = messages.locator(".msg.out .bubble").last
        await expect(mine).to_contain_text("<b>本周六上午9点</b> 大扫除 a/b")
        assert await mine.locator("[data-command]").count() == 0

        # A bot message: "</b>" shown as text is no command; "/notices" is one (Telegram marks it, so does the
        # emulator); inside <code> it stays code.
        await box.emulator.call_api(
            DEFAULT_TOKEN,
            "sendMessage",
            {
                "chat_id": ORGANISER,
                "text": "标签 &lt;/b&gt; 没有闭合。发 /notices 查看，或 <code>/notice</code>",
                "parse_mode": "HTML",
            },
        )
        bot = messages.locator(".msg.in .bubble", has_text="没有闭合")  # the bot may also answer the text above
        await expect(bot).to_contain_text("标签 </b> 没有闭合")
        await expect(bot.locator("[data-command]")).to_have_text(["/notices"])
        await expect(bot.locator("code")).to_have_text("/notice")

        # Tapping the real command sends it, as a Telegram client does.
        await bot.locator("[data-command]").click()
        await expect(messages.locator(".msg.out .bubble").last).to_contain_text(re.compile(r"^/notices"))


# ---------------------------------------------------------------------------------------------- switching person
@pytest.mark.browser
async def test_typing_right_after_switching_person_sends_in_the_new_persons_chat(chromium: str, tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with start_sandbox(settings_in(tmp_path), fresh=True) as box, browser_page(chromium) as page:
        await open_as(page, box, WANG)
        await expect(page.locator("#person-role")).to_contain_text(str(WANG))
        # Choose the organiser and send at once, in one go: the message is typed while the page is still loading
        # the organiser's chats (what a quick hand does), so it must wait for their chat, not go to 王阿姨's.
        await page.evaluate(
            """(id) => {
                const person = document.getElementById("person");
                person.value = String(id);
                person.dispatchEvent(new Event("change"));
                document.getElementById("text").value = "/help";
                document.getElementById("composer").requestSubmit();
            }""",
            ORGANISER,
        )
        await expect(page.locator("#person-role")).to_contain_text(str(ORGANISER))
        messages = page.locator("#messages")
        await expect(messages.locator(".msg.out .bubble").last).to_contain_text("/help")
        await expect(messages.locator(".msg.in .bubble").last).to_contain_text("工作人员")  # the staff part of help
        await expect(page.get_by_label("消息", exact=True)).to_have_value("")
        sent = [m for m in box.emulator.transcript(ORGANISER)["messages"] if not m["from_bot"]]
        assert [m.get("text") for m in sent] == ["/help"]
        theirs = [m for m in box.emulator.transcript(WANG)["messages"] if not m["from_bot"]]
        assert all(m.get("text") != "/help" for m in theirs)


# ---------------------------------------------------------------------------------------------- restart
@pytest.mark.browser
async def test_restart_shows_the_earlier_chats_and_fresh_starts_empty(chromium: str, tmp_path: Path) -> None:
    from playwright.async_api import expect

    settings = settings_in(tmp_path)
    async with start_sandbox(settings, fresh=True) as box, browser_page(chromium) as page:
        await open_as(page, box, WANG)
        messages = page.locator("#messages")
        await page.get_by_label("消息", exact=True).fill("/start")
        await page.get_by_label("消息", exact=True).press("Enter")
        await expect(messages.locator(".msg.in .bubble").last).to_contain_text("主菜单")
        await page.locator("#photo-input").set_input_files(
            {"name": "litter.png", "mimeType": "image/png", "buffer": small_png()}
        )
        await page.locator("#photo-dialog").get_by_role("button", name="发送").click()
        await expect(messages.locator(".msg.out img.photo")).to_have_js_property("naturalWidth", 40)
        # In the residents' group too.
        box.emulator.send_text(WANG, "大家好，楼下的垃圾桶满了", chat_id=RESIDENTS_GROUP)
    before = [m["message_id"] for m in box.emulator.transcript(WANG)["messages"]]  # all of them, the bot stopped

    async with start_sandbox(settings) as box, browser_page(chromium) as page:
        await open_as(page, box, WANG)
        messages = page.locator("#messages")
        await expect(messages.locator(".msg")).to_have_count(len(before))
        await expect(messages.locator(".msg.out .bubble").first).to_contain_text("/start")
        await expect(messages).to_contain_text("主菜单")
        photo = messages.locator(".msg.out img.photo")
        await expect(photo).to_have_js_property("naturalWidth", 40)  # the picture came back too
        # The chat goes on after the restored messages (new ids, nothing overwritten).
        await page.get_by_label("消息", exact=True).fill("/start")
        await page.get_by_label("消息", exact=True).press("Enter")
        await expect(messages.locator(".msg.out")).to_have_count(3)
        await expect(messages.locator(".msg.out .bubble").last).to_contain_text("/start")
        await expect(messages.locator(".msg")).not_to_have_count(len(before) + 1)  # the bot answered it
        after = [m["message_id"] for m in box.emulator.transcript(WANG)["messages"]]
        assert after[: len(before)] == before
        assert min(after[len(before) :]) > max(before)
        await page.locator(".chat-item", has_text="示范社区居民群").click()
        await expect(messages).to_contain_text("大家好，楼下的垃圾桶满了")

    async with start_sandbox(settings, fresh=True) as box, browser_page(chromium) as page:
        await open_as(page, box, WANG)
        await expect(page.locator("#messages .intro")).to_contain_text("这个机器人能做什么")
        assert await page.locator("#messages .msg").count() == 0


async def test_restart_keeps_polls_and_files_and_new_ids_do_not_collide(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    async with start_sandbox(settings, fresh=True) as box:
        emu = box.emulator
        sent = await emu.call_api(
            DEFAULT_TOKEN,
            "sendPoll",
            {"chat_id": RESIDENTS_GROUP, "question": "垃圾分类有几类？", "options": ["三类", "四类"]},
        )
        emu.answer_poll(WANG, sent["poll"]["id"], [1])
        photo = emu.send_photo(WANG, tiny_png(3, 2))
        first_ids = {m["message_id"] for m in emu.transcript(WANG)["messages"]}

    async with start_sandbox(settings) as box:
        emu = box.emulator
        group = emu.transcript(RESIDENTS_GROUP)["messages"]
        poll = next(m["poll"] for m in group if "poll" in m)
        assert poll["question"] == "垃圾分类有几类？"
        assert [o["voter_count"] for o in poll["options"]] == [0, 1]
        restored = emu.files.get(photo["photo"][-1]["file_id"])
        assert restored is not None
        assert restored.data == tiny_png(3, 2)

        again = await emu.call_api(
            DEFAULT_TOKEN, "sendPoll", {"chat_id": RESIDENTS_GROUP, "question": "再来一题", "options": ["是", "否"]}
        )
        new_photo = emu.send_photo(WANG, tiny_png(5, 5))
        assert again["poll"]["id"] != sent["poll"]["id"]
        assert again["message_id"] > max(m["message_id"] for m in group)
        assert new_photo["photo"][-1]["file_id"] != photo["photo"][-1]["file_id"]
        assert new_photo["message_id"] not in first_ids
