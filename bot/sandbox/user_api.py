"""User-side JSON API under /sandbox/api/: act as residents, read transcripts (for the web page and tests)."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.sandbox.emulator import Emulator
from bot.sandbox.errors import SandboxError

EMULATOR_KEY = web.AppKey("sicheng_sandbox_emulator", Emulator)
PREFIX = "/sandbox/api"
MAX_EVENT_WAIT = 30.0

_Endpoint = Callable[[Emulator, web.Request, dict[str, Any]], Awaitable[Any]]
_dumps = functools.partial(json.dumps, ensure_ascii=False)


def _endpoint(fn: _Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a handler: read the body; answer {"ok": true, "result": ...} or {"ok": false, "error": ...}."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            body = await _body(request)
            result = await fn(request.app[EMULATOR_KEY], request, body)
        except SandboxError as exc:
            return web.json_response({"ok": False, "error": exc.message}, status=exc.status, dumps=_dumps)
        except KeyError as exc:
            return web.json_response({"ok": False, "error": f"missing field {exc}"}, status=400, dumps=_dumps)
        except (ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": f"bad request: {exc}"}, status=400, dumps=_dumps)
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    return handler


async def _body(request: web.Request) -> dict[str, Any]:
    if request.method != "POST" or not request.can_read_body:
        return dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return {**request.query, **body}
    form = await request.post()
    return {**request.query, **form}


def _opt_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    return None if value in (None, "") else int(value)


def _chat_id(request: web.Request) -> int:
    return int(request.match_info["chat_id"])


def _sender(request: web.Request, body: dict[str, Any]) -> int:
    """user_id from the body; in a private chat it defaults to the chat id."""
    user_id = _opt_int(body, "user_id")
    if user_id is None:
        user_id = _chat_id(request)
        if user_id < 0:
            raise KeyError("user_id")
    return user_id


def _where(request: web.Request, body: dict[str, Any], user_id: int) -> dict[str, Any]:
    chat_id = _chat_id(request)
    return {"chat_id": None if chat_id == user_id else chat_id, "bot_id": _opt_int(body, "bot_id")}


@_endpoint
async def bots(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """GET /bots"""
    return [
        {**bot.to_api(), "webhook": emu.webhooks[bot.id].url if bot.id in emu.webhooks else None}
        for bot in emu.bots.values()
    ]


@_endpoint
async def users(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """GET /users"""
    return [user.to_view() for user in emu.list_users()]


@_endpoint
async def create_user(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /users {first_name, last_name?, username?, language_code?, id?}"""
    user = emu.create_user(
        str(body.get("first_name") or "居民"),
        last_name=body.get("last_name"),
        username=body.get("username"),
        language_code=body.get("language_code", "zh-hans"),
        user_id=_opt_int(body, "id"),
    )
    return user.to_view()


@_endpoint
async def block(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /users/{user_id}/block {bot_id?}"""
    emu.block(int(request.match_info["user_id"]), _opt_int(body, "bot_id"))
    return True


@_endpoint
async def unblock(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /users/{user_id}/unblock {bot_id?}"""
    emu.unblock(int(request.match_info["user_id"]), _opt_int(body, "bot_id"))
    return True


@_endpoint
async def chats(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """GET /chats"""
    return emu.list_chats()


@_endpoint
async def create_group(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /groups {title, members: [user ids], id?}"""
    members = [int(member) for member in body.get("members", [])]
    group = emu.create_group(str(body["title"]), members, chat_id=_opt_int(body, "id"))
    return {**group.to_api(), "members": group.members}


@_endpoint
async def add_member(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /chats/{chat_id}/members {user_id}"""
    return emu.add_member(_chat_id(request), int(body["user_id"]))


@_endpoint
async def transcript(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """GET /chats/{chat_id}/messages?after=N&bot_id="""
    return emu.transcript(_chat_id(request), after=_opt_int(body, "after") or 0, bot_id=_opt_int(body, "bot_id"))


@_endpoint
async def send_text(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /chats/{chat_id}/messages {user_id?, text, reply_to_message_id?}"""
    user_id = _sender(request, body)
    reply_to = _opt_int(body, "reply_to_message_id")
    return emu.send_text(user_id, str(body["text"]), reply_to_message_id=reply_to, **_where(request, body, user_id))


@_endpoint
async def send_photo(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /chats/{chat_id}/photos multipart: photo (file), user_id?, caption?"""
    photo = body.get("photo")
    if not isinstance(photo, web.FileField):
        raise SandboxError("send the image as a multipart file field named 'photo'")
    user_id = _sender(request, body)
    return emu.send_photo(
        user_id,
        photo.file.read(),
        filename=photo.filename,
        content_type=photo.content_type,
        caption=body.get("caption") or None,
        **_where(request, body, user_id),
    )


@_endpoint
async def send_location(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /chats/{chat_id}/locations {user_id?, latitude, longitude}"""
    user_id = _sender(request, body)
    latitude, longitude = float(body["latitude"]), float(body["longitude"])
    return emu.send_location(user_id, latitude, longitude, **_where(request, body, user_id))


@_endpoint
async def press_button(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /chats/{chat_id}/callbacks {user_id?, message_id, data | text}"""
    user_id = _sender(request, body)
    query_id = emu.press_button(
        user_id,
        _chat_id(request),
        int(body["message_id"]),
        data=body.get("data"),
        text=body.get("text"),
        bot_id=_opt_int(body, "bot_id"),
    )
    return {"callback_query_id": query_id}


@_endpoint
async def press_raw(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /callbacks/raw {user_id, data, chat_id?, message_id?, bot_id?}: forged, no button check."""
    query_id = emu.press_raw(
        int(body["user_id"]),
        str(body["data"]),
        chat_id=_opt_int(body, "chat_id"),
        message_id=_opt_int(body, "message_id"),
        bot_id=_opt_int(body, "bot_id"),
    )
    return {"callback_query_id": query_id}


@_endpoint
async def callback_answer(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """GET /callbacks/{callback_query_id}"""
    return emu.callback_answer(request.match_info["query_id"])


@_endpoint
async def answer_poll(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """POST /polls/{poll_id}/answers {user_id, option_ids: [..]}"""
    option_ids = [int(i) for i in body.get("option_ids", [])]
    return emu.answer_poll(int(body["user_id"]), request.match_info["poll_id"], option_ids)


@_endpoint
async def events(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """GET /events?after=N&timeout=S (long poll)"""
    timeout = min(float(body.get("timeout") or 0), MAX_EVENT_WAIT)
    return await emu.wait_events(_opt_int(body, "after") or 0, wait=timeout)


@_endpoint
async def calls(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """GET /calls?after=SEQ&method=sendMessage"""
    records = emu.calls(after=_opt_int(body, "after") or 0, method=body.get("method"))
    return [record.to_view() for record in records]


@_endpoint
async def download(emu: Emulator, request: web.Request, body: dict[str, Any]) -> Any:
    """GET /files/{file_id}: the bytes, for <img src>."""
    stored = emu.files.get(request.match_info["file_id"])
    if stored is None:
        raise SandboxError("no such file", 404)
    from bot.sandbox.server import file_response

    return file_response(stored.data)


def add_user_routes(app: web.Application) -> None:
    """Mount the user-side API on app."""
    r = app.router
    r.add_get(f"{PREFIX}/bots", bots)
    r.add_get(f"{PREFIX}/users", users)
    r.add_post(f"{PREFIX}/users", create_user)
    r.add_post(f"{PREFIX}/users/{{user_id}}/block", block)
    r.add_post(f"{PREFIX}/users/{{user_id}}/unblock", unblock)
    r.add_get(f"{PREFIX}/chats", chats)
    r.add_post(f"{PREFIX}/groups", create_group)
    r.add_post(f"{PREFIX}/chats/{{chat_id}}/members", add_member)
    r.add_get(f"{PREFIX}/chats/{{chat_id}}/messages", transcript)
    r.add_post(f"{PREFIX}/chats/{{chat_id}}/messages", send_text)
    r.add_post(f"{PREFIX}/chats/{{chat_id}}/photos", send_photo)
    r.add_post(f"{PREFIX}/chats/{{chat_id}}/locations", send_location)
    r.add_post(f"{PREFIX}/chats/{{chat_id}}/callbacks", press_button)
    r.add_post(f"{PREFIX}/callbacks/raw", press_raw)
    r.add_get(f"{PREFIX}/callbacks/{{query_id}}", callback_answer)
    r.add_post(f"{PREFIX}/polls/{{poll_id}}/answers", answer_poll)
    r.add_get(f"{PREFIX}/events", events)
    r.add_get(f"{PREFIX}/calls", calls)
    r.add_get(f"{PREFIX}/files/{{file_id}}", download)
