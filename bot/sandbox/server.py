"""aiohttp app serving the Bot API (/bot<token>/<method>), file downloads and the user-side JSON API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import BodyPartReader, web

from bot.domain.media import sniff
from bot.sandbox.emulator import Emulator
from bot.sandbox.errors import ApiError, DropConnection
from bot.sandbox.files import MAX_UPLOAD_BYTES
from bot.sandbox.params import Params, Upload
from bot.sandbox.user_api import EMULATOR_KEY, add_user_routes

__all__ = ["EMULATOR_KEY", "build_app", "read_params", "run_emulator"]

log = logging.getLogger(__name__)

_NOT_FOUND = {"ok": False, "error_code": 404, "description": "Not Found"}
_INTERNAL = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
_MAX_BODY = MAX_UPLOAD_BYTES + 1024 * 1024
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BOUND_HOST_KEY = web.AppKey("bound_host", str)


def build_app(
    emulator: Emulator,
    *,
    extra_routes: Iterable[web.AbstractRouteDef] | None = None,
    configure: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """Build the app; extra_routes / configure let a web page mount itself (emulator: app[EMULATOR_KEY])."""
    app = web.Application(client_max_size=_MAX_BODY, middlewares=[_errors, _same_origin])
    app[EMULATOR_KEY] = emulator
    app.router.add_route("*", "/bot{token}/{method}", _bot_api)
    app.router.add_get("/file/bot{token}/{path:.+}", _download)
    add_user_routes(app)
    if extra_routes is not None:
        app.router.add_routes(extra_routes)
    if configure is not None:
        configure(app)
    return app


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Unknown Bot API paths answer like Telegram; a crash becomes a logged 500 in Telegram's shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (404, 405) and request.path.startswith("/bot"):
            return web.json_response(_NOT_FOUND, status=404)
        raise
    except Exception:
        log.exception("sandbox: internal error on %s %s", request.method, request.path)
        return web.json_response(_INTERNAL, status=500)


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@web.middleware
async def _same_origin(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """The page and its API answer only to this sandbox's own address.

    A page on another site must not drive it: a cross-origin POST (CSRF from another tab) is refused, and so is a
    request whose Host is not a loopback name or the address the sandbox was started on (DNS rebinding). The Bot API
    side (``/bot…``, ``/file/bot…``) is left alone: bots are not browsers.
    """
    if request.path.startswith(("/bot", "/file/bot")):
        return await handler(request)
    bound = request.app.get(BOUND_HOST_KEY)
    host = request.url.host or ""
    if bound not in (None, "0.0.0.0", "::") and host not in _LOOPBACK | {bound}:
        return web.json_response({"ok": False, "error": "unknown host"}, status=403)
    origin = request.headers.get("Origin")
    unsafe = request.method not in ("GET", "HEAD", "OPTIONS")
    if unsafe and origin is not None and origin.split("://", 1)[-1] != request.host:
        return web.json_response({"ok": False, "error": "cross-origin request refused"}, status=403)
    return await handler(request)


async def read_params(request: web.Request) -> Params:
    """Parameters from the query string plus a JSON, urlencoded or multipart body."""
    values: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method != "POST" or not request.can_read_body:
        return Params(values)
    try:
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("not an object")
            values.update(body)
        elif request.content_type == "multipart/form-data":
            await _read_multipart(request, values, uploads)
        else:
            form = await request.post()
            values.update({key: value for key, value in form.items() if isinstance(value, str)})
    except ValueError:
        raise ApiError(400, "Bad Request: can't parse request body") from None
    return Params(values, uploads)


async def _read_multipart(request: web.Request, values: dict[str, Any], uploads: dict[str, Upload]) -> None:
    """Text parts become parameters, parts with a filename become uploads (read fully into memory)."""
    reader = await request.multipart()
    total = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        chunks = []
        while chunk := await part.read_chunk():
            total += len(chunk)
            if total > _MAX_BODY:
                raise ApiError(413, "Request Entity Too Large")
            chunks.append(chunk)
        data = bytes(part.decode(bytearray(b"".join(chunks))))
        if part.filename is not None:
            uploads[part.name] = Upload(part.filename, part.headers.get("Content-Type"), data)
        else:
            values[part.name] = data.decode(part.get_charset("utf-8"))


async def _bot_api(request: web.Request) -> web.StreamResponse:
    emulator = request.app[EMULATOR_KEY]
    token, method = request.match_info["token"], request.match_info["method"]
    try:
        params = await read_params(request)
        result = await emulator.call_api(token, method, params.values, params.uploads)
    except ApiError as exc:
        return web.json_response(exc.to_json(), status=exc.code)
    except DropConnection:
        # An injected timeout: close the socket without answering, as a dead proxy would.
        if request.transport is not None:
            request.transport.close()
        raise web.HTTPGatewayTimeout() from None
    return web.json_response({"ok": True, "result": result})


async def _download(request: web.Request) -> web.StreamResponse:
    emulator = request.app[EMULATOR_KEY]
    stored = emulator.files.by_path(request.match_info["path"])
    if request.match_info["token"] not in {bot.token for bot in emulator.bots.values()} or stored is None:
        return web.json_response(_NOT_FOUND, status=404)
    return file_response(stored.data)


def file_response(data: bytes) -> web.Response:
    """A stored file as a browser may show it: an image with the type its bytes say (not what the uploader
    claimed), anything else as a download; never sniffed into HTML by the browser."""
    kind = sniff(data)
    headers = {"X-Content-Type-Options": "nosniff"}
    if kind is None:
        headers["Content-Disposition"] = "attachment"
        return web.Response(body=data, content_type="application/octet-stream", headers=headers)
    return web.Response(body=data, content_type=f"image/{kind.value}", headers=headers)


@asynccontextmanager
async def run_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    emulator: Emulator | None = None,
    extra_routes: Iterable[web.AbstractRouteDef] | None = None,
    configure: Callable[[web.Application], None] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[Emulator, str]]:
    """Serve an emulator (made from options unless given) on host:port (0: free); yield it and its URL."""
    if emulator is not None and options:
        raise TypeError("pass either an emulator or options to build one, not both")
    emu = emulator if emulator is not None else Emulator(**options)
    app = build_app(emu, extra_routes=extra_routes, configure=configure)
    app[BOUND_HOST_KEY] = host
    # A short shutdown timeout: long polls are released by emu.close(), nothing else should linger.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield emu, f"http://{host}:{bound_port}"
    finally:
        await emu.close()
        await runner.cleanup()
