"""Figures and the 问题台账 ledger of a community and period, for /stats, the CLI and the export."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.domain.errors import NotFound
from bot.domain.points import mask_name
from bot.domain.report_figures import Bucket, Figures, figures, series
from bot.domain.report_ledger import MAX_PAGE, PER_PAGE, LedgerFilter, Reach
from bot.domain.reports import Event, Policy, Report, is_overdue
from bot.domain.residents import Community, Resident
from bot.domain.roles import Role
from bot.services.points import require_role
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services.report_notices import name_of


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


@dataclass(frozen=True)
class LedgerEntry:
    """A line of the ledger list: the report and what the list shows beside it."""

    report: Report
    community: Community
    building: str | None
    assignee: Resident | None
    overdue: bool


@dataclass(frozen=True)
class LedgerPage:
    entries: list[LedgerEntry]
    total: int  # reports passing the filters, on every page
    page: int  # 1-based, within 1..pages
    pages: int


@dataclass(frozen=True)
class TimelineLine:
    """One line of a report's history, with who did it as staff see them ("" for a timer)."""

    event: Event
    actor: str


@dataclass(frozen=True)
class ReportFile:
    """One report as its page shows it: where, who, its history, and what it duplicates."""

    report: Report
    community: Community
    building: str | None
    reporter: Resident | None
    assignee: Resident | None
    timeline: list[TimelineLine]
    followers: int
    duplicate_of: Report | None
    overdue: bool


@dataclass(frozen=True)
class LedgerChoices:
    """What the ledger's filters offer a person: the communities in reach and their grid workers."""

    communities: list[Community]
    assignees: list[Resident]


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

    def now(self) -> datetime:
        """The service's clock (the dashboard judges "overdue" and "today" by it, like the bot)."""
        return self._clock()

    def since_days(self, days: int) -> datetime:
        """The start of the local day ``days`` days ago (periods count whole local days)."""
        today = self._clock().astimezone(self._tz).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=days - 1)

    async def figures(self, community_code: str, since: datetime | None, until: datetime | None) -> Figures:
        """Figures of one community over [since, until)."""
        async with self._uow() as uow:
            community = await _community(uow, community_code)
            reports = await uow.reports.in_period(community.id, since, until)
            return figures(reports, self._clock(), await _fix_scores(uow, reports))

    async def series(self, community_code: str, since: datetime, until: datetime, step_days: int = 1) -> list[Bucket]:
        """Reports of [since, until) opened and handled per ``step_days`` local days from ``since`` (the dashboard's
        time series)."""
        starts, start = [], since.astimezone(self._tz)
        while start < until:
            starts.append(start)
            start = (start + timedelta(days=step_days)).replace(hour=0, minute=0, second=0, microsecond=0)
        async with self._uow() as uow:
            community = await _community(uow, community_code)
            reports = await uow.reports.in_period(community.id, since, until)
        return series(reports, starts, until)

    async def by_building(
        self, community_code: str, since: datetime | None, until: datetime | None
    ) -> list[tuple[str | None, Figures]]:
        """Figures per building over [since, until), in the community's order, buildings without reports included;
        last, reports placed by an address or a location only (None), if any."""
        now = self._clock()
        async with self._uow() as uow:
            community = await _community(uow, community_code)
            reports = await uow.reports.in_period(community.id, since, until)
            scores = await _fix_scores(uow, reports)
        rows: list[tuple[str | None, Figures]] = [
            (b.name, figures([r for r in reports if r.building_id == b.id], now, scores)) for b in community.buildings
        ]
        known = {b.id for b in community.buildings}
        elsewhere = [r for r in reports if r.building_id not in known]
        return rows + ([(None, figures(elsewhere, now, scores))] if elsewhere else [])

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
            reports = await uow.reports.in_period(community.id, since, until)
            return community, figures(reports, fix_scores=await _fix_scores(uow, reports))

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

    # ---- the web dashboard's ledger: a person's reach, filters, pages, one report's file ------------------

    async def page(self, chosen: LedgerFilter, page: int = 1, per_page: int = PER_PAGE) -> LedgerPage:
        """One page of the reports in reach passing the filters, newest first (a page past the end: the last)."""
        now = self._clock()
        wanted = min(max(page, 1), MAX_PAGE)
        async with self._uow() as uow:
            reports, total = await uow.reports.ledger(chosen, (wanted - 1) * per_page, per_page)
            pages = max(1, -(-total // per_page))
            if wanted > pages:
                wanted = pages
                reports, total = await uow.reports.ledger(chosen, (wanted - 1) * per_page, per_page)
            communities = {c.id: c for c in await uow.communities.list()}
            people = {i: await uow.residents.get(i) for i in {r.assignee_id for r in reports} if i is not None}
        entries = [
            LedgerEntry(r, communities[r.community_id], _building(r, communities[r.community_id]),
                        people.get(r.assignee_id or 0), is_overdue(r, now))
            for r in reports
        ]  # fmt: skip
        return LedgerPage(entries, total, wanted, pages)

    async def report_file(self, reach: Reach, report_id: int) -> ReportFile:
        """The report with its history, if the person may see it; NotFound otherwise (a forged or another
        community's id looks exactly like a missing one)."""
        async with self._uow() as uow:
            report = await uow.reports.get(report_id)
            if report is None or not reach.covers(report.community_id, report.assignee_id):
                raise NotFound(what="report")
            community = await uow.communities.get(report.community_id)
            assert community is not None
            reporter = await uow.residents.get(report.reporter_id)
            assignee = await uow.residents.get(report.assignee_id) if report.assignee_id else None
            names: dict[int, str] = {}
            timeline = []
            for event in await uow.reports.history(report.id):
                if event.actor_id is not None and event.actor_id not in names:
                    names[event.actor_id] = name_of(await uow.residents.get(event.actor_id))
                timeline.append(TimelineLine(event, names.get(event.actor_id or 0, "")))
            followers = len(await uow.reports.followers(report.id))
            original = await uow.reports.get(report.duplicate_of) if report.duplicate_of else None
        return ReportFile(report, community, _building(report, community), reporter, assignee, timeline, followers,
                          original, is_overdue(report, self._clock()))  # fmt: skip

    async def choices(self, reach: Reach) -> LedgerChoices:
        """The communities in reach and, where the person sees every report, the grid workers there (a grid worker
        who sees only their own reports needs no choice of assignee)."""
        async with self._uow() as uow:
            communities = await uow.communities.list()
            known = {c.id: c for c in communities}
            mine = [known[i] for i in reach.communities(known)]
            people: dict[int, Resident] = {}
            for community in mine:
                if reach.organiser_of(community.id):
                    for person in await uow.residents.with_role(Role.GRID_WORKER, community.id):
                        people.setdefault(person.id, person)
        return LedgerChoices(mine, sorted(people.values(), key=lambda p: (name_of(p), p.id)))

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


async def _fix_scores(uow: UnitOfWork, reports: Sequence[Report]) -> dict[int, int]:
    """Reporters' ratings of how their (verified) reports were handled."""
    return await uow.surveys.fix_scores([r.id for r in reports if r.closed_at is not None])


async def _community(uow: UnitOfWork, code: str) -> Community:
    community = await uow.communities.get_by_code(code)
    if community is None:
        raise NotFound(what="community", code=code)
    return community


def _building(report: Report, community: Community) -> str | None:
    return next((b.name for b in community.buildings if b.id == report.building_id), None)


def _place(report: Report, community: Community) -> str:
    parts = [b.name for b in community.buildings if b.id == report.building_id]
    if report.address:
        parts.append(report.address)
    if report.location:
        parts.append(f"{report.location.latitude:.5f},{report.location.longitude:.5f}")
    return "；".join(parts) or "—"
