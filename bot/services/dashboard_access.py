"""Who may open the organisers' web dashboard: one-time login links sent by the bot, and browser sessions.

``/dashboard`` in the bot asks :meth:`DashboardAccess.issue` for a link (grid workers and organisers only); opening
it (:meth:`login`) spends it and starts a session; every request after that (:meth:`visit`) reads the person's roles
again, so a role revoked in the bot or the command line ends the session at the next click. Only SHA-256 hashes of
the link tokens and session keys are stored. Logins, logouts and refusals are written to the audit log.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.dashboard import DashboardOff, LinkState, WebSession, digest
from bot.domain.errors import Forbidden
from bot.domain.residents import Resident
from bot.domain.roles import STAFF, Role
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

LOGIN_PATH = "/dashboard/login"
KEEP = timedelta(days=7)  # ended or expired links and sessions are forgotten after this


def is_staff(resident: Resident | None) -> bool:
    """A grid worker or an organiser somewhere (a community, or everywhere)."""
    return resident is not None and resident.telegram_id is not None and any(g.role in STAFF for g in resident.roles)


@dataclass(frozen=True)
class Visit:
    """A request of a logged-in browser: the session and the person as of now (roles read again)."""

    session: WebSession
    resident: Resident


@dataclass(frozen=True)
class Login(Visit):
    key: str  # the session key for the cookie (only its hash is stored)


class DashboardAccess:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        url: str = "",
        link_minutes: float = 10,
        session_hours: float = 8,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.url = url.rstrip("/")  # the public base address; the sandbox sets it once it knows its port
        self.link_ttl = timedelta(minutes=link_minutes)
        self.session_ttl = timedelta(hours=session_hours)

    @property
    def secure(self) -> bool:
        """Served over HTTPS (behind the TLS proxy): the cookie is sent over HTTPS only."""
        return self.url.startswith("https://")

    async def issue(self, telegram_id: int) -> str:
        """A login link for a grid worker or organiser, valid ``link_minutes`` and once. ``Forbidden`` for anyone
        else (the conversation core writes the refusal to the audit log); ``DashboardOff`` without a public URL."""
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            if not is_staff(resident):
                raise Forbidden(role=Role.GRID_WORKER.value)
            assert resident is not None
            if not self.url:
                raise DashboardOff()
            token = secrets.token_urlsafe(32)
            now = self._clock()
            await uow.dashboard.add_link(digest(token), resident.id, now, now + self.link_ttl)
            await _audit(uow, now, telegram_id, "dashboard_link", True, {})
            await uow.commit()
        return f"{self.url}{LOGIN_PATH}?token={token}"

    async def login(self, token: str) -> Login | LinkState:
        """Spend a link and start a session; the link's state (unknown, used, expired) when it opens nothing. A link
        of someone who is no longer staff opens nothing either (``LinkState.UNKNOWN``)."""
        now = self._clock()
        async with self._uow() as uow:
            link = await uow.dashboard.link(digest(token)) if token else None
            state = link.state(now) if link else LinkState.UNKNOWN
            resident = await uow.residents.get(link.resident_id) if link else None
            if link is not None and state is LinkState.VALID and not await uow.dashboard.use_link(link.id, now):
                state = LinkState.USED  # opened twice at once: the other one won
            if state is LinkState.VALID and not is_staff(resident):
                state = LinkState.UNKNOWN
            actor = resident.telegram_id if resident else None
            if state is not LinkState.VALID or resident is None:
                await _audit(uow, now, actor, "dashboard_login", False, {"link": state.value})
                await uow.commit()
                return state
            key = secrets.token_urlsafe(32)
            session = await uow.dashboard.add_session(
                digest(key), resident.id, secrets.token_urlsafe(24), now, now + self.session_ttl
            )
            await _audit(uow, now, actor, "dashboard_login", True, {"session": session.id})
            await uow.commit()
        return Login(session, resident, key)

    async def visit(self, key: str) -> Visit | None:
        """The session of a cookie and its person, if it is still active and the person still staff; a session
        whose person lost every staff role is ended here (and audited)."""
        if not key:
            return None
        now = self._clock()
        async with self._uow() as uow:
            session = await uow.dashboard.session(digest(key))
            if session is None or not session.active(now):
                return None
            resident = await uow.residents.get(session.resident_id)
            if resident is None or not is_staff(resident):
                await uow.dashboard.end_session(session.id, now)
                actor = resident.telegram_id if resident else None
                await _audit(uow, now, actor, "dashboard_session_ended", True, {"session": session.id, "why": "role"})
                await uow.commit()
                return None
        return Visit(session, resident)

    async def logout(self, session_id: int, telegram_id: int) -> None:
        now = self._clock()
        async with self._uow() as uow:
            if await uow.dashboard.end_session(session_id, now):
                await _audit(uow, now, telegram_id, "dashboard_logout", True, {"session": session_id})
            await uow.commit()

    async def purge(self, now: datetime) -> int:
        """Forget links and sessions that have been over for a week."""
        async with self._uow() as uow:
            count = await uow.dashboard.purge(now - KEEP)
            await uow.commit()
        return count


async def _audit(
    uow: UnitOfWork, now: datetime, actor: int | None, action: str, allowed: bool, details: dict[str, object]
) -> None:
    await uow.audit.add(now, actor, action, allowed, dict(details))
