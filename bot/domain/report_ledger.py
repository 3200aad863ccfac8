"""Which reports of the 问题台账 a staff member sees, and the filters of the ledger list (the web dashboard).

Organisers see every report of their communities; a grid worker sees the reports assigned to them (in the
communities where they are one); a role without a community reaches every community. ``Reach`` says this once, for
the list (a query) and for one report (``covers``), so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.reports import Status
from bot.domain.roles import Role, RoleGrant

PER_PAGE = 20  # reports on one page of the ledger
MAX_PAGE = 10_000  # a page number past this is a typo or a probe: the last page is shown instead


@dataclass(frozen=True)
class Reach:
    """Every report of the ``whole`` communities (None: of all), and the reports assigned to ``person`` in the ``own``
    communities (None: in all). An empty set reaches nothing."""

    person: int
    whole: frozenset[int] | None = frozenset()
    own: frozenset[int] | None = frozenset()

    def covers(self, community_id: int, assignee_id: int | None) -> bool:
        if self.whole is None or community_id in self.whole:
            return True
        mine = assignee_id is not None and assignee_id == self.person
        return mine and (self.own is None or community_id in self.own)

    @property
    def nothing(self) -> bool:
        return self.whole == frozenset() and self.own == frozenset()

    def communities(self, known: Iterable[int]) -> list[int]:
        """The communities among ``known`` where this reach sees at least some reports."""
        return [c for c in known if _has(self.whole, c) or _has(self.own, c)]

    def organiser_of(self, community_id: int) -> bool:
        """Whether every report of the community is in reach (the person is an organiser there)."""
        return _has(self.whole, community_id)


def _has(ids: frozenset[int] | None, community_id: int) -> bool:
    return ids is None or community_id in ids


def reach_of(resident_id: int, grants: Iterable[RoleGrant]) -> Reach:
    """The reach of a person from their role grants (organisers count as grid workers too)."""
    whole: set[int] = set()
    own: set[int] = set()
    whole_all = own_all = False
    for grant in grants:
        if grant.role is Role.ORGANISER:
            whole_all |= grant.community_id is None
            whole.update([grant.community_id] if grant.community_id is not None else [])
        elif grant.role is Role.GRID_WORKER:
            own_all |= grant.community_id is None
            own.update([grant.community_id] if grant.community_id is not None else [])
    return Reach(
        resident_id,
        None if whole_all else frozenset(whole),
        None if own_all else frozenset(own),
    )


@dataclass(frozen=True)
class LedgerFilter:
    """The ledger list's filters, on top of a ``Reach``. Empty tuples and None mean "any"."""

    reach: Reach
    communities: tuple[int, ...] = ()
    statuses: tuple[Status, ...] = ()
    categories: tuple[str, ...] = ()
    building_id: int | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    overdue_at: datetime | None = None  # open and past the deadline at this moment
    since: datetime | None = None  # submitted at or after
    until: datetime | None = None  # submitted before
    located: bool = False  # only reports with coordinates (the position chart)
