"""What both channel adapters share: update processing, delivery of rendered actions, bot commands."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from bot.channels.gate import Kind, Verdict
from bot.channels.translate import to_incoming
from bot.conversation.core import Core
from bot.conversation.replies import (
    OutCallbackAnswer,
    OutDocument,
    OutEdit,
    Outgoing,
    OutMessage,
    OutPhoto,
    OutPoll,
)
from bot.domain.residents import LOCALES
from bot.rendering import Renderer

log = logging.getLogger(__name__)

# Telegram language codes for setMyCommands; the default (no code) list is Chinese.
COMMAND_LANGUAGES = {"zh_Hans": "zh", "en": "en"}
ALLOWED_UPDATES = ["message", "callback_query", "poll_answer", "my_chat_member"]
UPLOAD_LIMIT = 50 * 1024 * 1024  # the Bot API's limit for a file a bot uploads


class Sender(Protocol):
    """The few Bot API calls the core's actions need, implemented once per library."""

    async def message(self, item: OutMessage) -> int: ...

    async def edit(self, item: OutEdit) -> None: ...

    async def edit_caption(self, item: OutEdit) -> None: ...

    async def answer(self, item: OutCallbackAnswer) -> None: ...

    async def photo(self, item: OutPhoto) -> int: ...

    async def document(self, item: OutDocument) -> int: ...

    async def poll(self, item: OutPoll) -> tuple[str, int]: ...

    def classify(self, error: BaseException) -> Verdict: ...


async def process(core: Core, sender: Sender, update: dict[str, Any], bot_username: str) -> None:
    """Handle one raw update end to end; never raises into the library's update loop."""
    try:
        incoming = to_incoming(update, bot_username)
    except (KeyError, TypeError, ValueError):
        log.warning("update %s has an unexpected shape; skipped", update.get("update_id"))
        return
    if incoming is None:
        return
    await deliver(core, sender, await core.handle(incoming))


async def deliver(core: Core, sender: Sender, outgoing: Iterable[Outgoing]) -> None:
    """Execute rendered actions in order. A 403 skips the rest for that chat; other failures are logged."""
    unreachable: set[int] = set()
    for item in outgoing:
        chat = getattr(item, "chat_id", None)
        if chat in unreachable:
            continue
        try:
            await _one(core, sender, item)
        except Exception as error:
            if sender.classify(error).kind is Kind.FORBIDDEN and chat is not None:
                unreachable.add(chat)
                continue
            log.exception("could not deliver %s", type(item).__name__)


async def _one(core: Core, sender: Sender, item: Outgoing) -> None:
    poll_id, message_id = await send_one(sender, item)
    if isinstance(item, OutPoll) and poll_id is not None and message_id is not None:
        await core.poll_sent(item, poll_id, message_id)


async def send_one(sender: Sender, item: Outgoing) -> tuple[str | None, int | None]:
    """Send one rendered action; returns (poll id, message id) of what was sent, where there is one."""
    if isinstance(item, OutMessage):
        return None, await sender.message(item)
    if isinstance(item, OutEdit):
        await (sender.edit_caption(item) if item.caption else sender.edit(item))
        return None, item.message_id
    if isinstance(item, OutCallbackAnswer):
        await sender.answer(item)
        return None, None
    if isinstance(item, OutPhoto):
        return None, await sender.photo(item)
    if isinstance(item, OutDocument):
        return None, await sender.document(item)
    poll_id, message_id = await sender.poll(item)
    return poll_id, message_id


def bot_commands(core: Core, renderer: Renderer) -> dict[str | None, list[tuple[str, str]]]:
    """The command menu per Telegram language code (None: everyone else)."""
    lists: dict[str | None, list[tuple[str, str]]] = {}
    for locale in LOCALES:
        commands = [(name, renderer.label(locale, f"commands.{name}")) for name in core.router.menu_commands]
        lists[COMMAND_LANGUAGES[locale]] = commands
    lists[None] = lists[COMMAND_LANGUAGES["zh_Hans"]]
    return lists


def transport_failure(error: BaseException) -> str:
    """An HTTP client's failure named by class (and the system's reason, e.g. "Connection refused") only: several
    aiohttp errors print the request's URL, which holds the bot token. Both channels' transports name them so."""
    reason = getattr(getattr(error, "os_error", None), "strerror", None)
    return f"aiohttp.{type(error).__name__}" + (f": {reason}" if reason else "")


def local_file(photo: str) -> Path | None:
    """A photo given as a local path (e.g. a generated QR image) must be uploaded, not sent as a file_id."""
    if photo.startswith(("/", "./", "file://")):
        path = Path(photo.removeprefix("file://"))
        return path if path.is_file() else None
    return None


class UploadRefused(ValueError):
    """A document that cannot be uploaded: gone from disk, empty, or over the Bot API's 50 MB."""


def upload_file(document: str) -> Path:
    """The local file of a document to upload, checked before a byte is sent (Telegram would answer 413)."""
    path = Path(document.removeprefix("file://"))
    if not path.is_file():
        raise UploadRefused(f"document file not found: {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise UploadRefused(f"document file is empty: {path.name}")
    if size > UPLOAD_LIMIT:
        raise UploadRefused(f"document is {size} bytes, over the 50 MB a bot may upload: {path.name}")
    return path
