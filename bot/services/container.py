"""The set of services handed to handlers; built once in ``bot.app``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.access import AccessService
from bot.services.communities import CommunityService
from bot.services.residents import ResidentService


@dataclass(frozen=True)
class Services:
    residents: ResidentService
    communities: CommunityService
    access: AccessService
