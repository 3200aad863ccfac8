"""What every dashboard page uses: who is asking (``Staff``), the application, the page renderer and the CSRF check.

The session middleware (``bot.dashboard.auth``) puts a ``Staff`` on each request it lets through; pages call
``staff(request)`` and ``render(request, "page", ...)``. Page templates are ``content/dashboard/<page>.html.j2``
(HTML structure only, autoescaped); every word on them comes from the labels ``dashboard.*`` in
``content/templates/<locale>/labels/dashboard.yaml`` through ``t("key")``, so both languages stay in one place with
the bot's other texts and ``sicheng content check`` finds a label missing in one locale.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

import content
from bot.domain.roles import Role, RoleGrant

if TYPE_CHECKING:
    from bot.app import App

PAGES = content.ROOT / "dashboard"
CSRF_FIELD = "csrf"
APP_KEY = web.AppKey("sicheng_dashboard_app", object)  # the bot's App (typed as object: aiohttp keys are runtime)
PAGES_KEY = web.AppKey("sicheng_dashboard_pages", Environment)


@dataclass(frozen=True)
class Staff:
    """A logged-in organiser or grid worker, as of this request (roles are read again on every request, so a role
    revoked in the bot or the CLI ends what the session may do at once)."""

    resident_id: int
    telegram_id: int
    name: str
    locale: str
    grants: tuple[RoleGrant, ...]
    session_id: int
    csrf: str

    def is_organiser(self, community_id: int | None) -> bool:
        return any(g.covers(Role.ORGANISER, community_id) for g in self.grants)

    def is_grid_worker(self, community_id: int | None) -> bool:
        """Organisers count as grid workers too (``RoleGrant.covers``)."""
        return any(g.covers(Role.GRID_WORKER, community_id) for g in self.grants)

    @property
    def everywhere(self) -> bool:
        """A staff role without a community: every community is in scope."""
        return any(g.community_id is None and g.role in (Role.ORGANISER, Role.GRID_WORKER) for g in self.grants)

    def community_ids(self) -> frozenset[int] | None:
        """The communities in scope (None: all of them)."""
        if self.everywhere:
            return None
        return frozenset(
            g.community_id
            for g in self.grants
            if g.community_id is not None and g.role in (Role.ORGANISER, Role.GRID_WORKER)
        )

    @property
    def organises(self) -> bool:
        """An organiser somewhere (pages for organisers only show in the menu then)."""
        return any(g.role == Role.ORGANISER for g in self.grants)

    def sees_report(self, community_id: int, assignee_id: int | None) -> bool:
        """Organisers see their communities' reports; a grid worker sees the reports assigned to them."""
        if self.is_organiser(community_id):
            return True
        return self.is_grid_worker(community_id) and assignee_id == self.resident_id


STAFF = web.RequestKey("sicheng_dashboard_staff", Staff)  # the Staff of a logged-in request


def app_of(request: web.Request) -> App:
    return request.app[APP_KEY]  # type: ignore[return-value]


def staff(request: web.Request) -> Staff:
    """The logged-in person (the middleware answers every other request before a page runs)."""
    found = request.get(STAFF)
    if not isinstance(found, Staff):
        raise web.HTTPUnauthorized()
    return found


def pages_environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(PAGES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def translator(request: web.Request, locale: str) -> Any:
    renderer = app_of(request).renderer

    def t(key: str, **context: Any) -> str:
        """``t("title")`` is the label ``dashboard.title`` (labels/dashboard.yaml); ``t("ledger.title")`` is
        ``dashboard.ledger.title`` or else ``dashboard_ledger.title`` (labels/dashboard_ledger.yaml)."""
        name = f"dashboard.{key}"
        if not renderer.has_label(locale, name) and "." in key:
            area, rest = key.split(".", 1)
            name = f"dashboard_{area}.{rest}"
        return renderer.label(locale, name, context)

    return t


def render(
    request: web.Request, page: str, *, status: int = 200, locale: str | None = None, **context: Any
) -> web.Response:
    """Render ``content/dashboard/<page>.html.j2`` for the request's staff (or ``locale`` before login)."""
    person = request.get(STAFF)
    lang = locale or (person.locale if isinstance(person, Staff) else app_of(request).settings.locale.default)
    csrf = (
        Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{person.csrf}">') if isinstance(person, Staff) else ""
    )
    html = (
        request.app[PAGES_KEY]
        .get_template(f"{page}.html.j2")
        .render(t=translator(request, lang), lang=lang, staff=person, csrf_input=csrf, path=request.path, **context)
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def query_day(text: str | None) -> date | None:
    """A ``YYYY-MM-DD`` of a filter or period field, or None when it is missing or not a date."""
    if not text or len(text) > 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def check_csrf(request: web.Request, form: Mapping[str, Any]) -> None:
    """Refuse a form without the session's CSRF token (403)."""
    sent = str(form.get(CSRF_FIELD, ""))
    if not hmac.compare_digest(sent.encode(), staff(request).csrf.encode()):
        raise web.HTTPForbidden(text="CSRF token missing or wrong")
