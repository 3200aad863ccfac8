"""Sessions of the web dashboard: the middleware every page goes through, login by a one-time link, logout.

The bot's ``/dashboard`` gives a link ``<url>/dashboard/login?token=...`` (``DashboardAccess.issue``). Opening it
spends the token, starts a session and sets the cookie ``sicheng_dash`` (HttpOnly, SameSite=Strict, Secure behind
HTTPS, Path=/dashboard), then redirects to the overview so the token leaves the address bar. On every later request
the middleware reads the session and the person's roles as they are now and puts a ``kit.Staff`` on the request;
without one a page answers with the login page (a form: 403).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.dashboard.kit import STAFF, Staff, app_of, check_csrf, render, staff
from bot.domain.dashboard import LinkState
from bot.services.dashboard_access import Login, Visit

PREFIX = "/dashboard"
COOKIE = "sicheng_dash"
OPEN = (f"{PREFIX}/login", f"{PREFIX}/static/")  # what a browser without a session may fetch
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guest_locale(request: web.Request) -> str:
    """Before login the person is unknown: English for a browser asking for it first, else the default."""
    default = app_of(request).settings.locale.default
    first = request.headers.get("Accept-Language", "").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else default


def as_staff(visit: Visit) -> Staff:
    person = visit.resident
    assert person.telegram_id is not None  # staff (DashboardAccess checks it)
    return Staff(
        resident_id=person.id,
        telegram_id=person.telegram_id,
        name=person.display_name or "",
        locale=person.locale,
        grants=tuple(sorted(person.roles, key=lambda g: (g.role.value, g.community_id or 0))),
        session_id=visit.session.id,
        csrf=visit.session.csrf,
    )


def login_page(request: web.Request, status: int, reason: str, locale: str | None = None) -> web.Response:
    """How to log in, after why the person is here (``none``, ``expired``, ``used``, ``unknown``, ``logged_out``)."""
    access = app_of(request).services.dashboard
    return render(
        request,
        "login",
        status=status,
        locale=locale or guest_locale(request),
        reason=reason,
        minutes=round(access.link_ttl.total_seconds() / 60),
        hours=round(access.session_ttl.total_seconds() / 3600),
    )


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Let a logged-in staff member through (with ``Staff`` on the request); anyone else gets the login page."""
    if request.path.startswith(OPEN):
        return await handler(request)
    visit = await app_of(request).services.dashboard.visit(request.cookies.get(COOKIE, ""))
    if visit is None:
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPForbidden(text="not logged in")
        refused = login_page(request, 401, "none")
        refused.del_cookie(COOKIE, path=PREFIX)
        return refused
    request[STAFF] = as_staff(visit)
    response = await handler(request)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@web.middleware
async def safety_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No framing, no scripts or styles from elsewhere, no address (with its filters) told to other sites."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
        _protect(response)
        raise
    _protect(response)
    return response


def _protect(response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")  # no-referrer would make a form's Origin "null"


async def login(request: web.Request) -> web.StreamResponse:
    """Open a login link: a session and the cookie, or a page saying the link is no longer valid (403)."""
    access = app_of(request).services.dashboard
    result = await access.login(request.query.get("token", ""))
    if not isinstance(result, Login):
        reason = "expired" if result is LinkState.EXPIRED else "used" if result is LinkState.USED else "unknown"
        return login_page(request, 403, reason)
    # A link tapped on another site (Telegram Web): a browser would keep the new SameSite=Strict cookie out of a
    # redirect it follows from here, so a page of this site moves on by itself instead (a same-site request).
    # Opened from the Telegram app, typed or pasted: a plain redirect.
    response: web.Response
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        response = render(request, "enter", locale=result.resident.locale, to=f"{PREFIX}/")
    else:
        response = web.Response(status=303, headers={"Location": f"{PREFIX}/", "Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE,
        result.key,
        max_age=int(access.session_ttl.total_seconds()),
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=access.secure,
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    person = staff(request)
    check_csrf(request, await request.post())
    await app_of(request).services.dashboard.logout(person.session_id, person.telegram_id)
    del request[STAFF]  # the page after logout is a guest's
    response = login_page(request, 200, "logged_out", person.locale)
    response.del_cookie(COOKIE, path=PREFIX)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/login", login)
    app.router.add_post("/logout", logout)
