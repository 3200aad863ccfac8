"""One Bot API call: authenticate, flood control, injected faults, run the method, log the request."""

from __future__ import annotations

from typing import Any

from bot.sandbox import messaging, methods
from bot.sandbox.core import EmulatorCore
from bot.sandbox.errors import ApiError, DropConnection, too_many_requests
from bot.sandbox.limits import FloodWait, is_metered
from bot.sandbox.models import SimBot
from bot.sandbox.params import Params

HANDLERS = {**methods.TABLE.handlers, **messaging.TABLE.handlers}
NAMES = {**methods.TABLE.names, **messaging.TABLE.names}


def method_names() -> list[str]:
    """Every Bot API method the emulator implements."""
    return sorted(NAMES.values())


async def dispatch(core: EmulatorCore, token: str, method: str, p: Params) -> Any:
    """Run one Bot API method; raises ApiError (Telegram's error) or DropConnection (injected timeout)."""
    bot = core.bot_for_token(token)
    name = method.lower()
    logged_name = NAMES.get(name, method)
    chat_id = _chat_key(p.raw("chat_id")) or p.raw("chat_id")
    try:
        handler = HANDLERS.get(name)
        if handler is None:
            raise ApiError(404, "Not Found")
        if is_metered(name):
            _meter(core, bot, p)  # first, so a request inside a 429 window always gets that 429
        await _gate(core, bot, name)
        result = await handler(core, bot, p)
    except ApiError as exc:
        core.record_call(
            bot.id,
            logged_name,
            chat_id,
            exc.code,
            description=exc.description,
            retry_after=exc.retry_after,
            until=exc.until,
            scope=exc.scope,
        )
        raise
    except DropConnection:
        core.record_call(bot.id, logged_name, chat_id, 0, description="dropped")
        raise
    except Exception:
        core.record_call(bot.id, logged_name, chat_id, 500, description="internal error")
        raise
    core.record_call(bot.id, logged_name, chat_id, 200)
    return result


async def _gate(core: EmulatorCore, bot: SimBot, name: str) -> None:
    """Injected faults; a 429 opens a real window for the whole token, like a flood wait would."""
    fault = core.faults.roll(name)
    if fault == "5xx":
        raise ApiError(502, "Bad Gateway")
    if fault == "timeout":
        await core.hang(core.faults.faults.hang_seconds * core.time_scale)
        raise DropConnection
    if fault == "429":
        wait = core.limiter.pause(("bot", bot.id, 0), core.faults.faults.retry_after)
        raise _flood(wait, "fault")


def _meter(core: EmulatorCore, bot: SimBot, p: Params) -> None:
    chat = _chat_key(p.raw("chat_id"))
    if chat is None:
        return
    paid = str(p.raw("allow_paid_broadcast")).lower() in ("true", "1")
    wait = core.limiter.check(bot.id, chat, chat < 0, paid)
    if wait is not None:
        raise _flood(wait, wait.scope[0])


def _flood(wait: FloodWait, scope: str) -> ApiError:
    error = too_many_requests(wait.retry_after)
    error.scope, error.until = scope, wait.until
    return error


def _chat_key(chat_id: Any) -> int | None:
    if isinstance(chat_id, bool):
        return None
    if isinstance(chat_id, int):
        return chat_id
    try:
        return int(str(chat_id))
    except ValueError:
        return None
