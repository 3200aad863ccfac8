"""Roles of people in a community and what they may do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    RESIDENT = "resident"
    VOLUNTEER = "volunteer"
    GRID_WORKER = "grid_worker"
    ORGANISER = "organiser"
    SERVICE_POINT = "service_point"


STAFF = frozenset({Role.GRID_WORKER, Role.ORGANISER})


@dataclass(frozen=True)
class RoleGrant:
    """A role held in one community, or everywhere when ``community_id`` is None."""

    role: Role
    community_id: int | None = None

    def covers(self, role: Role, community_id: int | None) -> bool:
        """True when this grant gives ``role`` in ``community_id``; organisers also act as grid workers."""
        same_role = self.role == role or (self.role == Role.ORGANISER and role == Role.GRID_WORKER)
        return same_role and (self.community_id is None or self.community_id == community_id)


def parse_role(value: str) -> Role:
    """Parse a role name as typed by an administrator (``grid-worker`` and ``grid_worker`` both work)."""
    try:
        return Role(value.strip().lower().replace("-", "_"))
    except ValueError:
        raise ValueError(f"unknown role {value!r}; one of: {', '.join(r.value for r in Role)}") from None
