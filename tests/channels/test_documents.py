"""Sending a file the bot made (a certificate PDF): the reply action, its rendered form in the outbox, both channels'
upload to the Bot API, the emulator showing it for download, and the transcript helper seeing it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import App
from bot.channels.aiogram_channel import AiogramSender, make_bot
from bot.channels.base import UPLOAD_LIMIT, UploadRefused, send_one
from bot.channels.gate import GateLimits, Kind, SendGate
from bot.channels.ptb_channel import PtbSender, make_application
from bot.conversation.context import Ctx
from bot.conversation.incoming import ChatType, Incoming
from bot.conversation.render import CAPTION_LIMIT, ActionRenderer
from bot.conversation.replies import OutDocument, SendDocument, out_from_json, out_to_json
from bot.conversation.router import Router
from bot.rendering import Renderer
from bot.sandbox.server import run_emulator
from tests.support.fake_api import FakeBotApi, RecordingRequest, RecordingSession
from tests.support.transcript import FakeChat

CHANNELS = ["aiogram", "ptb"]
NO_PACE = GateLimits(private=((0.001, 1000),), group=((0.001, 1000),), token=((0.001, 1000),))
TOKEN = "4242:TEST-token_for-offline-tests"
PDF = b"%PDF-1.4\n% a certificate\n%%EOF\n"
NAME = "志愿服务记录证明-ZYFW-2026-000123-K7QX.pdf"


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "cert.pdf"
    path.write_bytes(PDF)
    return path


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    """Templates of their own: a caption with the certificate number, in both languages."""
    for locale, words in (("zh_Hans", "证明编号"), ("en", "Certificate")):
        folder = tmp_path / "templates" / locale / "doc"
        folder.mkdir(parents=True)
        (folder / "caption.j2").write_text(f"{words} <b>{{{{ number }}}}</b>{{{{ tail }}}}", encoding="utf-8")
    return Renderer(tmp_path / "templates")


def _incoming(chat_id: int = 7001) -> Incoming:
    return Incoming(update_id=1, message_id=1, user_id=chat_id, chat_id=chat_id, chat_type=ChatType.PRIVATE)


@asynccontextmanager
async def sender(kind: str, api_url: str, api: FakeBotApi | None = None, token: str = TOKEN) -> AsyncIterator[Any]:
    """The channel's sender, through the send gate, talking to the fake Bot API or to a served emulator."""
    gate = SendGate(NO_PACE)
    if kind == "aiogram":
        bot = make_bot(token, api_url, gate, session=RecordingSession(api) if api else None)
        try:
            yield AiogramSender(bot)
        finally:
            await bot.session.close()
        return
    application = make_application(token, api_url, gate, request=RecordingRequest(api) if api else None)
    async with application:
        yield PtbSender(application.bot)


def test_send_document_renders_caption_in_locale_clipped_to_telegram_limit(renderer: Renderer, pdf: Path) -> None:
    action = SendDocument(str(pdf), NAME, "doc/caption", {"number": "ZYFW-1", "tail": "x" * 2000}, locale="en")
    (out,) = ActionRenderer(renderer).render([action], _incoming(), "zh_Hans")
    assert isinstance(out, OutDocument)
    assert (out.chat_id, out.document, out.filename) == (7001, str(pdf), NAME)
    assert out.caption is not None and out.caption.startswith("Certificate <b>ZYFW-1</b>")
    assert len(out.caption) == CAPTION_LIMIT and out.caption.endswith("…")


def test_rendered_document_survives_the_outbox_json_round_trip(pdf: Path) -> None:
    out = OutDocument(7001, str(pdf), NAME, "证明编号 <b>ZYFW-1</b>")
    kind, payload = out_to_json(out)
    assert kind == "out.document"
    assert out_from_json(kind, payload) == out


async def test_send_document_through_both_channels_uploads_same_file_name_and_caption(pdf: Path) -> None:
    out = OutDocument(7001, str(pdf), NAME, "证明编号 <b>ZYFW-1</b>")
    seen = {}
    for kind in CHANNELS:
        api = FakeBotApi()
        async with sender(kind, "http://offline", api) as channel:
            _, message_id = await send_one(channel, out)
        (call,) = api.sent("sendDocument")
        assert message_id is not None
        seen[kind] = (int(call.params["chat_id"]), call.params["caption"], call.params["parse_mode"], call.files)
    assert seen["aiogram"] == seen["ptb"]
    assert seen["ptb"] == (7001, "证明编号 <b>ZYFW-1</b>", "HTML", {"document": (NAME, PDF)})


@pytest.mark.parametrize("kind", CHANNELS)
async def test_send_document_over_50_mb_is_refused_before_upload(kind: str, tmp_path: Path) -> None:
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as handle:
        handle.truncate(UPLOAD_LIMIT + 1)  # sparse: no 50 MB written
    api = FakeBotApi()
    async with sender(kind, "http://offline", api) as channel:
        with pytest.raises(UploadRefused, match="50 MB"):
            await send_one(channel, OutDocument(7001, str(huge), "huge.pdf"))
        with pytest.raises(UploadRefused, match="not found"):
            await send_one(channel, OutDocument(7001, str(tmp_path / "gone.pdf"), "gone.pdf"))
        assert channel.classify(UploadRefused("x")).kind is Kind.FATAL  # an outbox row fails, not retried
    assert api.sent("sendDocument") == []


@pytest.mark.parametrize("kind", CHANNELS)
async def test_document_sent_by_each_channel_is_downloadable_on_the_sandbox_page(kind: str, pdf: Path) -> None:
    async with run_emulator() as (emu, base_url):
        user = emu.create_user("小明")
        emu.send_text(user.id, "/start")
        async with sender(kind, base_url, token=emu.default_bot.token) as channel:
            await send_one(channel, OutDocument(user.id, str(pdf), NAME, "证明编号 <b>ZYFW-1</b>"))
        view = emu.transcript(user.id)["messages"][-1]
        assert view["caption"] == "证明编号 ZYFW-1"
        assert view["message"]["document"]["file_name"] == NAME
        async with aiohttp.ClientSession() as http, http.get(base_url + view["document_url"]) as response:
            assert response.status == 200
            assert await response.read() == PDF
            assert response.headers["Content-Disposition"].startswith("attachment")


async def test_transcript_helper_sees_document_a_handler_sends(app: App, pdf: Path) -> None:
    router = Router("tdoc")

    @router.command("certificate_test")
    async def send_certificate(ctx: Ctx) -> list[SendDocument]:
        return [SendDocument(str(pdf), NAME, None, {})]

    app.router.include(router)
    chat = FakeChat(app.core)
    await chat.send("/certificate_test")
    (document,) = chat.documents()
    assert (document.document, document.filename, document.chat_id) == (str(pdf), NAME, chat.chat)
    assert chat.last().document == document
