"""Bot API methods other than send/edit: identity, updates, webhooks, commands, chats, files, callbacks."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from bot.sandbox.core import EmulatorCore, MethodTable
from bot.sandbox.errors import ApiError, bad_request
from bot.sandbox.files import MAX_DOWNLOAD_BYTES
from bot.sandbox.models import DEFAULT_ALLOWED, SimBot
from bot.sandbox.params import Params
from bot.sandbox.updates import WebhookState, deliver_webhook
from bot.sandbox.webhook import AiohttpPoster

TABLE = MethodTable()
method = TABLE

_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_STALE_QUERY = "query is too old and response timeout expired or query ID is invalid"
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
MAX_POLL_TIMEOUT = 50.0


@method("getMe")
async def get_me(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Return the bot's User object."""
    return bot.get_me()


@method("logOut")
async def log_out(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Accept and do nothing: there is no cloud server to log out of."""
    return True


@method("close")
async def close(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Accept and do nothing (Telegram rate-limits this; the sandbox does not)."""
    return True


@method("getUpdates")
async def get_updates(core: EmulatorCore, bot: SimBot, p: Params) -> list[dict[str, Any]]:
    """Long polling with Telegram's offset confirmation."""
    if bot.id in core.webhooks:
        raise ApiError(409, _WEBHOOK_ACTIVE)
    queue = core.queues[bot.id]
    allowed = p.get_json("allowed_updates")
    if isinstance(allowed, list):
        queue.allowed = frozenset(map(str, allowed)) or DEFAULT_ALLOWED
    limit = min(max(p.get_int("limit") or 100, 1), 100)
    timeout = min(max(p.get_float("timeout") or 0.0, 0.0), MAX_POLL_TIMEOUT)
    return await queue.poll(p.get_int("offset"), limit, wait_seconds=timeout)


@method("setWebhook")
async def set_webhook(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Start pushing updates to a URL (plain http is allowed, the sandbox is local)."""
    url = (p.get_str("url") or "").strip()
    if not url:
        _stop_webhook(core, bot)
        return True
    if not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.get_str("secret_token")
    if secret is not None and not _SECRET_RE.match(secret):
        raise bad_request("secret token contains unallowed characters")
    allowed = p.get_json("allowed_updates")
    queue = core.queues[bot.id]
    if isinstance(allowed, list):
        queue.allowed = frozenset(map(str, allowed)) or DEFAULT_ALLOWED
    if p.get_bool("drop_pending_updates"):
        queue.drop_all()
    _stop_webhook(core, bot)
    hook = WebhookState(
        url=url,
        secret_token=secret,
        max_connections=p.get_int("max_connections") or 40,
        allowed_updates=allowed if isinstance(allowed, list) else None,
    )
    if core.webhook_poster is None:
        core.webhook_poster = AiohttpPoster()
    hook.task = asyncio.create_task(
        deliver_webhook(
            queue,
            hook,
            core.webhook_poster,
            retries=core.webhook_retries,
            backoff=core.webhook_backoff * core.time_scale,
            now=core.clock.time,
        ),
        name=f"sandbox-webhook-{bot.id}",
    )
    core.webhooks[bot.id] = hook
    return True


@method("deleteWebhook")
async def delete_webhook(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Stop pushing; updates wait for getUpdates again."""
    _stop_webhook(core, bot)
    if p.get_bool("drop_pending_updates"):
        core.queues[bot.id].drop_all()
    return True


def _stop_webhook(core: EmulatorCore, bot: SimBot) -> None:
    hook = core.webhooks.pop(bot.id, None)
    if hook is not None and hook.task is not None:
        hook.task.cancel()


@method("getWebhookInfo")
async def get_webhook_info(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Webhook status, including the last delivery error."""
    pending = len(core.queues[bot.id].items)
    hook = core.webhooks.get(bot.id)
    if hook is None:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
    return hook.info(pending)


def _commands_key(p: Params) -> tuple[str, str]:
    scope = p.get_json("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), p.get_str("language_code") or ""


@method("setMyCommands")
async def set_my_commands(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Store the command list for a (scope, language_code)."""
    commands = p.get_json("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    clean = []
    for item in commands:
        if not isinstance(item, dict) or not _COMMAND_RE.match(str(item.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        description = str(item.get("description", ""))
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        clean.append({"command": str(item["command"]), "description": description})
    bot.commands[_commands_key(p)] = clean
    return True


@method("getMyCommands")
async def get_my_commands(core: EmulatorCore, bot: SimBot, p: Params) -> list[dict[str, str]]:
    """The command list for exactly this (scope, language_code), as Telegram does (no fallback)."""
    return list(bot.commands.get(_commands_key(p), []))


@method("deleteMyCommands")
async def delete_my_commands(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Forget the command list for a (scope, language_code)."""
    bot.commands.pop(_commands_key(p), None)
    return True


@method("getChat")
async def get_chat(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """ChatFullInfo of a user's private chat or a group."""
    return core.chat_for_bot(bot, p.chat_id(), sending=False).full_info()


@method("getChatMember")
async def get_chat_member(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Membership of a user in a chat: creator, member or left."""
    chat = core.chat_for_bot(bot, p.chat_id(), sending=False)
    user_id = p.require_int("user_id", "user not found")
    if user_id in core.bots:
        member = core.bots[user_id]
        in_chat = not chat.is_group or user_id in chat.bot_ids
        return {"status": "member" if in_chat else "left", "user": member.to_api()}
    if user_id not in core.users:
        raise bad_request("user not found")
    user = core.users[user_id].to_api()
    if not chat.is_group:
        return {"status": "member" if user_id == chat.id else "left", "user": user}
    if user_id == chat.creator_id:
        return {"status": "creator", "user": user, "is_anonymous": False}
    return {"status": "member" if user_id in chat.members else "left", "user": user}


@method("getFile")
async def get_file(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """File metadata with the file_path to download from /file/bot<token>/<file_path>."""
    stored = core.files.get(p.get_str("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    return stored.to_api()


@method("answerCallbackQuery")
async def answer_callback_query(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Record the answer to a button press; each query can be answered once."""
    query = core.callbacks.get(p.get_str("callback_query_id") or "")
    if query is None or query.bot_id != bot.id or query.answered:
        raise bad_request(_STALE_QUERY)
    text = p.get_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answered = True
    query.answer = {"text": text, "show_alert": p.get_bool("show_alert"), "url": p.get_str("url")}
    core.events.record("callback_answer", query.chat_id, bot.id, None, {"callback_query_id": query.id, **query.answer})
    return True


@method("sendChatAction")
async def send_chat_action(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Accept "typing…" and friends; nothing is shown."""
    core.chat_for_bot(bot, p.chat_id(), sending=True)
    return True
