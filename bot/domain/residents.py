"""Residents, communities and onboarding rules (standard library only)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.roles import Role, RoleGrant

CONSENT_VERSION = "2026-11"
LOCALES = ("zh_Hans", "en")
DEFAULT_LOCALE = "zh_Hans"

_COMMUNITY_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_BUILDING_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,15}$")
_DEEP_LINK = re.compile(r"^c([a-z0-9][a-z0-9-]{0,23})(?:_b([A-Za-z0-9][A-Za-z0-9-]{0,15}))?$")


@dataclass(frozen=True)
class Building:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class Community:
    id: int
    code: str
    name: str
    buildings: tuple[Building, ...] = ()
    timezone: str | None = None  # IANA zone; None: the configured default

    def building(self, code: str) -> Building | None:
        """The building with this code, if the community has it."""
        return next((b for b in self.buildings if b.code == code), None)


@dataclass(frozen=True)
class Resident:
    id: int
    telegram_id: int | None
    locale: str
    display_name: str | None = None
    community_id: int | None = None
    building_id: int | None = None
    consent_version: str | None = None
    consent_at: datetime | None = None
    created_at: datetime | None = None
    last_seen_at: datetime | None = None
    unreachable_at: datetime | None = None
    roles: frozenset[RoleGrant] = field(default_factory=frozenset)

    @property
    def has_consent(self) -> bool:
        return self.consent_at is not None

    @property
    def is_registered(self) -> bool:
        """Consent given and a community chosen: the resident can use every feature."""
        return self.has_consent and self.community_id is not None

    def has_role(self, role: Role, community_id: int | None = None) -> bool:
        """Residents hold the resident role implicitly; other roles come from grants."""
        if role == Role.RESIDENT:
            return self.is_registered
        where = self.community_id if community_id is None else community_id
        return any(grant.covers(role, where) for grant in self.roles)


@dataclass(frozen=True)
class DeepLink:
    community_code: str
    building_code: str | None


def parse_deep_link(payload: str | None) -> DeepLink | None:
    """Parse a poster's ``/start c<community>_b<building>`` payload; anything else is ignored."""
    if not payload:
        return None
    match = _DEEP_LINK.match(payload)
    if match is None:
        return None
    return DeepLink(match.group(1), match.group(2))


def make_deep_link(community_code: str, building_code: str | None = None) -> str:
    """The /start payload for a community (and building) poster; at most 64 characters."""
    payload = f"c{community_code}" + (f"_b{building_code}" if building_code else "")
    if parse_deep_link(payload) is None:
        raise ValueError(f"codes do not fit a deep link: {payload!r}")
    return payload


def valid_community_code(code: str) -> bool:
    """Community codes are lowercase letters, digits and '-', used in deep links."""
    return bool(_COMMUNITY_CODE.match(code))


def valid_building_code(code: str) -> bool:
    """Building codes are letters, digits and '-', used in deep links."""
    return bool(_BUILDING_CODE.match(code))


def normalise_locale(language_code: str | None) -> str:
    """Map Telegram's language_code to a supported locale (Chinese variants and unknown → zh_Hans)."""
    if language_code and language_code.lower().startswith("en"):
        return "en"
    return DEFAULT_LOCALE
