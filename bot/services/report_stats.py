"""Figures and the 问题台账 ledger of a community and period, for /stats, the CLI and the export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.domain.errors import NotFound
from bot.domain.points import mask_name
from bot.domain.report_figures import Figures, figures
from bot.domain.reports import Policy, Report
from bot.domain.residents import Community, Resident
from bot.domain.roles import Role
from bot.services.points import require_role
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class LedgerRow:
    """One line of the 问题台账: times in local time, the reporter masked."""

    ticket: str
    community: str
    category: str
    track: str | None
    place: str
    description: str
    reporter: str
    assignee: str
    status: str
    result: str
    submitted_at: datetime
    accepted_at: datetime | None
    deadline: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopened: int
    photos: tuple[str, ...]
    after_photo: str | None


def mask_id(telegram_id: int | None) -> str:
    """``1381****``: enough to tell two people apart in a spreadsheet, not enough to contact them."""
    if telegram_id is None:
        return "—"
    text = str(telegram_id)
    return text[:4] + "*" * max(0, len(text) - 4)


class ReportStats:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, timezone: tzinfo, locate: Callable[[str], str]
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._tz = timezone
        self._locate = locate

    def since_days(self, days: int) -> datetime:
        """The start of the local day ``days`` days ago (periods count whole local days)."""
        today = self._clock().astimezone(self._tz).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=days - 1)

    async def figures(self, community_code: str, since: datetime | None, until: datetime | None) -> Figures:
        """Figures of one community over [since, until)."""
        async with self._uow() as uow:
            community = await _community(uow, community_code)
            return figures(await uow.reports.in_period(community.id, since, until))

    async def for_organiser(
        self, telegram_id: int, since: datetime | None, until: datetime | None
    ) -> tuple[Community, Figures]:
        """Figures of the organiser's own community (an organiser role there is required)."""
        async with self._uow() as uow:
            person = await uow.residents.get_by_telegram_id(telegram_id)
            if person is None or person.community_id is None:
                raise NotFound(what="community")
            await require_role(uow, telegram_id, Role.ORGANISER, person.community_id)
            community = await uow.communities.get(person.community_id)
            assert community is not None
            return community, figures(await uow.reports.in_period(community.id, since, until))

    async def ledger(
        self, community_code: str, since: datetime | None, until: datetime | None, locale: str = "zh_Hans"
    ) -> list[LedgerRow]:
        """Every report of the community submitted in [since, until), oldest first."""
        async with self._uow() as uow:
            community = await _community(uow, community_code)
            reports = await uow.reports.in_period(community.id, since, until)
            people = {r.id: p for r in reports for p in [await uow.residents.get(r.reporter_id)]}
            staff = {i: await uow.residents.get(i) for i in {r.assignee_id for r in reports} if i is not None}
        return [self._row(r, community, people.get(r.id), staff.get(r.assignee_id or 0), locale) for r in reports]

    def _row(
        self, r: Report, community: Community, reporter: Resident | None, assignee: Resident | None, locale: str
    ) -> LedgerRow:
        category = self._policy.category(r.category)
        reporter_text = f"{mask_name(reporter.display_name)} / {mask_id(reporter.telegram_id)}" if reporter else "—"
        return LedgerRow(
            ticket=r.ticket, community=community.name, category=category.name(locale), track=category.track,
            place=_place(r, community), description=r.description, reporter=reporter_text,
            assignee=(assignee.display_name or "—") if assignee else "—", status=r.status.value,
            result=r.reject_reason.value if r.reject_reason else r.status.value,
            submitted_at=r.submitted_at.astimezone(self._tz), accepted_at=self._local(r.accepted_at),
            deadline=self._local(r.deadline), resolved_at=self._local(r.resolved_at),
            closed_at=self._local(r.closed_at), reopened=r.reopened,
            photos=tuple(self._locate(k) for k in r.photos),
            after_photo=self._locate(r.after_photo) if r.after_photo else None,
        )  # fmt: skip

    def _local(self, moment: datetime | None) -> datetime | None:
        return moment.astimezone(self._tz) if moment else None


async def _community(uow: UnitOfWork, code: str) -> Community:
    community = await uow.communities.get_by_code(code)
    if community is None:
        raise NotFound(what="community", code=code)
    return community


def _place(report: Report, community: Community) -> str:
    parts = [b.name for b in community.buildings if b.id == report.building_id]
    if report.address:
        parts.append(report.address)
    if report.location:
        parts.append(f"{report.location.latitude:.5f},{report.location.longitude:.5f}")
    return "；".join(parts) or "—"
