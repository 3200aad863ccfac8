"""Webhook intake: Telegram posts each update here; it is answered 200 only once ``take`` has stored it.

::

    Telegram ──POST path (X-Telegram-Bot-Api-Secret-Token)──► check secret ─► size ─► JSON object ─► take([update])
        ◄── 200 only after take returned (committed) │ 401/403/413/400: refused, nothing stored │ 500: take failed,
                                                      │ Telegram delivers it again later

``take`` is the only coupling: :meth:`bot.channels.inbox.Inbox.take` in a single process (it commits the update to
``inbox_update``; a redelivered update is kept once), or a function that also announces it to workers. The server
speaks plain HTTP: put a TLS-terminating proxy in front of it (Telegram calls only HTTPS URLs).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from bot.config import HANDLED_UPDATES, SECRET_PATTERN, WebhookSettings

BAD_SECRET = "the webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -"

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024  # Telegram's updates are a few KB; 1 MiB leaves room for the largest
SHUTDOWN_SECONDS = 3.0  # requests being stored get this long to finish when the server stops
WARN_EVERY = 10.0  # seconds between two warnings about refused requests (a flood must not flood the log)
_SECRET_LABEL = b"sicheng/telegram-webhook-secret/v1"

Take = Callable[[list[dict[str, Any]]], Awaitable[int]]
Ready = Callable[[], Awaitable[object]]  # raises when an update could not be stored now (``GET /healthz``)
READY_SECONDS = 2.0


def derive_secret(token: str) -> str:
    """The webhook secret when none is configured: HMAC-SHA256 of a fixed label keyed by the token, URL-safe base64.

    Stable across restarts and across several intake processes of one token; 43 characters of A-Za-z0-9_-; does not
    reveal the token (the HMAC cannot be reversed). Whoever holds the token can derive it, as they could re-register
    the webhook anyway.
    """
    digest = hmac.new(token.encode(), _SECRET_LABEL, hashlib.sha256).digest()
    secret = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    assert SECRET_PATTERN.fullmatch(secret)
    return secret


@dataclass(frozen=True)
class WebhookIntake:
    """What ``serving`` needs to take updates by webhook. ``url`` None: register the server's own address (the
    sandbox and tests, where the emulator calls it directly); production always has a public HTTPS URL."""

    url: str | None
    secret: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 8081
    path: str = "/telegram/webhook"
    allowed_updates: tuple[str, ...] = HANDLED_UPDATES
    max_connections: int = 40
    max_body: int = MAX_BODY

    @classmethod
    def from_settings(
        cls,
        settings: WebhookSettings,
        token: str,
        *,
        url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
    ) -> WebhookIntake:
        """The configured webhook, with command-line overrides; the secret is the configured one or derived."""
        configured = settings.secret.get_secret_value() if settings.secret is not None else ""
        secret = configured or derive_secret(token)  # an empty variable counts as unset
        if not SECRET_PATTERN.fullmatch(secret):
            raise ValueError(BAD_SECRET)
        where = path or settings.path
        if not where.startswith("/"):
            raise ValueError(f"the webhook path must start with '/': {where!r}")
        return cls(
            url=url or settings.url,
            secret=secret,
            host=host or settings.host,
            port=settings.port if port is None else port,
            path=where,
            allowed_updates=tuple(settings.allowed_updates),
            max_connections=settings.max_connections,
            max_body=settings.max_body,
        )

    def server(self, take: Take, ready: Ready | None = None) -> WebhookServer:
        return WebhookServer(take, self.secret, self.path, self.host, self.port, self.max_body, ready)


class _Refusals:
    """Warn about refused requests at most every ``WARN_EVERY`` seconds, saying how many were not logged."""

    def __init__(self) -> None:
        self._last = -WARN_EVERY
        self._quiet = 0

    def warn(self, request: web.Request, why: str) -> None:
        now = time.monotonic()
        if now - self._last < WARN_EVERY:
            self._quiet += 1
            return
        more = f" ({self._quiet} more refused since the last warning)" if self._quiet else ""
        self._last, self._quiet = now, 0
        forwarded = request.headers.get("X-Forwarded-For")
        source = f"{request.remote} (forwarded for {forwarded[:100]})" if forwarded else str(request.remote)
        log.warning("webhook: refused a request from %s: %s%s", source, why, more)


class WebhookServer:
    """An aiohttp server for Telegram's webhook on ``host:port`` + ``path``, and ``GET /healthz``."""

    def __init__(
        self,
        take: Take,
        secret: str,
        path: str = "/telegram/webhook",
        host: str = "127.0.0.1",
        port: int = 8081,
        max_body: int = MAX_BODY,
        ready: Ready | None = None,
    ) -> None:
        if not SECRET_PATTERN.fullmatch(secret):
            raise ValueError(BAD_SECRET)
        self._take = take
        self._ready = ready
        self._secret = secret.encode()
        self.path = path
        self.host = host
        self.port = port
        self.max_body = max_body
        self._refusals = _Refusals()
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=max_body)
        self.app.router.add_post(path, self._update)
        self.app.router.add_get("/healthz", self._health)

    @property
    def local_url(self) -> str:
        """Where the server listens (port resolved once started), e.g. for a local emulator to post to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    async def start(self) -> None:
        """Listen (port 0: any free port, then ``port`` is the one taken)."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("webhook: listening on %s:%s%s", self.host, self.port, self.path)

    async def stop(self) -> None:
        """Stop accepting; requests being stored get ``SHUTDOWN_SECONDS`` to finish."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (the server is already started), then stop accepting."""
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def _health(self, _request: web.Request) -> web.Response:
        """200 "ok" when an update posted now would be stored (the database answers within ``READY_SECONDS``);
        503 otherwise, so a load balancer or the operator's check sees an intake that would answer Telegram 500."""
        if self._ready is not None:
            try:
                await asyncio.wait_for(self._ready(), READY_SECONDS)
            except Exception as error:
                log.warning("webhook: health check failed: %s", type(error).__name__)
                return web.Response(status=503, text="database unavailable")
        return web.Response(text="ok")

    async def _update(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            self._refusals.warn(request, "no secret token header")
            return web.Response(status=401, text="unauthorized")
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._secret):
            self._refusals.warn(request, "wrong secret token")
            return web.Response(status=403, text="forbidden")
        if request.content_length is not None and request.content_length > self.max_body:
            self._refusals.warn(request, f"body of {request.content_length} bytes")
            return web.Response(status=413, text="too large")
        try:
            body = await request.read()  # aiohttp stops at client_max_size (a chunked body without a length)
        except web.HTTPRequestEntityTooLarge:
            self._refusals.warn(request, "body over the limit")
            return web.Response(status=413, text="too large")
        update = _parse(body)
        if update is None:
            self._refusals.warn(request, "not an update (JSON object with an integer update_id)")
            return web.Response(status=400, text="bad request")
        try:
            await self._take([update])
        except Exception:  # the database is down, say: not stored, so not confirmed; Telegram delivers it again
            log.exception("webhook: update %s could not be stored; answered 500", update["update_id"])
            return web.Response(status=500, text="not stored")
        return web.Response(text="ok")


class WebhookChannel(Protocol):
    async def set_webhook(
        self, url: str, *, secret_token: str, allowed_updates: Sequence[str], max_connections: int
    ) -> None: ...


async def start_webhook(
    channel: WebhookChannel, intake: WebhookIntake, take: Take, ready: Ready | None = None
) -> WebhookServer:
    """Listen first, then tell Telegram where to post (updates waiting there are kept); returns the started server,
    whose ``serve(stop)`` runs until stopped. The webhook is left registered when it stops."""
    server = intake.server(take, ready)
    await server.start()
    url = intake.url or server.local_url
    try:
        await channel.set_webhook(
            url,
            secret_token=intake.secret,
            allowed_updates=intake.allowed_updates,
            max_connections=intake.max_connections,
        )
    except BaseException:
        await server.stop()
        raise
    log.info("webhook set: Telegram posts updates to %s", url)
    return server


def _parse(body: bytes) -> dict[str, Any] | None:
    try:
        update = json.loads(body)
    except ValueError:  # includes invalid UTF-8
        return None
    if not isinstance(update, dict):
        return None
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return None
    return update
