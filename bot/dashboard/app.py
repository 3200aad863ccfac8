"""The organisers' web dashboard as an aiohttp sub-application, mounted at ``/dashboard``.

``build_dashboard(app)`` is what every server mounts: the sandbox's page server, ``sicheng dashboard`` on its own and
``sicheng run`` when ``SICHENG_DASHBOARD__PORT`` is set. Page modules add their routes with ``add_routes(app)``, paths
relative to the mount point (``"/reports"`` answers ``/dashboard/reports``); the session middleware
(``bot.dashboard.auth``) runs before every one of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from functools import cache

from aiohttp import web

from bot.app import App
from bot.dashboard import auth, buildings, exports, ledger, overview, proposals, surveys
from bot.dashboard.kit import APP_KEY, PAGES, PAGES_KEY, pages_environment, render

log = logging.getLogger(__name__)
STATIC = PAGES / "static"


@cache
def asset(name: str) -> str:
    """A static file's address with its content's hash, so a browser never keeps an old copy after an upgrade."""
    version = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]
    return f"{auth.PREFIX}/static/{name}?v={version}"


@web.middleware
async def not_found_page(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    """A page that does not exist, or is outside the person's communities (the same answer for both): a page in
    their language rather than a bare 404."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.path.startswith(auth.OPEN):
            raise
        return render(request, "not_found", status=404)


def build_dashboard(app: App) -> web.Application:
    """The dashboard's sub-application (mount it with ``root.add_subapp("/dashboard", ...)``)."""
    dashboard = web.Application(middlewares=[auth.safety_headers, auth.sessions, not_found_page])
    dashboard[APP_KEY] = app
    pages = pages_environment()
    pages.globals["asset"] = asset
    dashboard[PAGES_KEY] = pages
    dashboard.router.add_static("/static/", STATIC)
    auth.add_routes(dashboard)
    overview.add_routes(dashboard)
    buildings.add_routes(dashboard)
    ledger.add_routes(dashboard)
    exports.add_routes(dashboard)
    proposals.add_routes(dashboard)
    surveys.add_routes(dashboard)
    return dashboard


def mount(root: web.Application, app: App) -> None:
    """Serve the dashboard under ``/dashboard`` of ``root`` (``/dashboard`` alone leads to the overview)."""

    async def bare(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{auth.PREFIX}/")

    root.router.add_get(auth.PREFIX, bare)
    root.add_subapp(auth.PREFIX, build_dashboard(app))


@contextlib.asynccontextmanager
async def serve(app: App, host: str, port: int) -> AsyncIterator[str]:
    """Serve the dashboard alone on host:port (``sicheng dashboard``, ``sicheng run``); yields its base address."""
    root = web.Application()
    mount(root, app)

    async def home(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{auth.PREFIX}/")

    root.router.add_get("/", home)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port or _bound_port(runner)
    log.info("dashboard on http://%s:%s%s/", host, bound, auth.PREFIX)
    try:
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return 0


@contextlib.asynccontextmanager
async def serve_if_set(app: App) -> AsyncIterator[str | None]:
    """``sicheng run``: the dashboard beside the bot when ``SICHENG_DASHBOARD__PORT`` is set (else nothing)."""
    settings = app.settings.dashboard
    if settings.port is None:
        yield None
        return
    async with serve(app, settings.host, settings.port) as address:
        yield address
