"""Reporting a problem (随手拍): photos, nearby duplicates and +1, submission with a yearly ticket, my reports."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain.errors import Forbidden, NotFound
from bot.domain.geo import GeoPoint
from bot.domain.media import MAX_PHOTO_BYTES, PhotoRefused
from bot.domain.points import Reason
from bot.domain.reports import (
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    MAX_PHOTOS,
    Category,
    Draft,
    Event,
    Nearby,
    Policy,
    Report,
    Status,
    clean_text,
    deadline_after,
    format_ticket,
    nearby,
)
from bot.domain.residents import Resident
from bot.domain.roles import Role
from bot.services.files import PHOTO_FOLDER, PhotoIntake
from bot.services.outbox import queue_all
from bot.services.points import PointsService, member
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services.report_jobs import schedule_deadline
from bot.services.report_notices import Notifier
from bot.services.report_workflow import Outcome, award

log = logging.getLogger(__name__)

# A +1 confirms a problem someone else reported: worth a little, once per report and person.
PLUS_ONE_REASON = Reason.REPORT_VERIFIED
LIST_SIZE = 10


@dataclass(frozen=True)
class MyReports:
    reported: list[Report]
    followed: list[Report]


class ReportService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: Policy,
        photos: PhotoIntake,
        notifier: Notifier,
        points: PointsService,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.policy = policy
        self.photos = photos
        self._tell = notifier
        self._points = points

    def category(self, key: str) -> Category:
        """A category by key (InvalidInput for a stale one)."""
        return self.policy.category(key)

    async def add_photo(self, file_id: str, count: int, size: int | None = None) -> str:
        """Store the ``count``-th photo of a draft (metadata stripped); PhotoRefused past the fifth, or when the
        size Telegram reported is over the limit (refused before any download: getFile fails above 20 MB)."""
        if count >= MAX_PHOTOS:
            raise PhotoRefused("too many photos", reason="too_many", limit=MAX_PHOTOS)
        if size is not None and size > MAX_PHOTO_BYTES:
            raise PhotoRefused("photo too large", reason="too_large", limit_mb=MAX_PHOTO_BYTES // (1024 * 1024))
        return await self.photos.take(file_id)

    def description(self, text: str | None) -> str:
        """The description, trimmed and within bounds (InvalidInput naming them otherwise)."""
        return clean_text(text, DESCRIPTION_MIN, DESCRIPTION_MAX, "description")

    async def nearby(
        self, telegram_id: int, category: str, where: GeoPoint | None, building_id: int | None
    ) -> list[Nearby]:
        """Open reports of the category close by (or in the same building) that the resident could +1."""
        async with self._uow() as uow:
            resident = await _member(uow, telegram_id)
            candidates = await uow.reports.open_in(_community(resident), self.policy.category(category).key)
        found = nearby(candidates, category, where, building_id, self.policy.nearby_m)
        return [n for n in found if n.report.reporter_id != resident.id][:5]

    async def submit(self, telegram_id: int, draft: Draft) -> Outcome:
        """Create the report with the next ticket of the year, start its timers and post its card to the staff."""
        category = self.policy.category(draft.category)
        draft.check(category.photo_optional)
        async with self._uow() as uow:
            resident = await _member(uow, telegram_id)
            now = self._clock()
            number = await uow.reports.next_number(now.year)
            report = await uow.reports.add(_new_report(draft, resident, now, format_ticket(now.year, number),
                                                       category))  # fmt: skip
            await uow.reports.add_event(report.id, Event(now, "submit", Status.SUBMITTED, None, resident.id))
            await schedule_deadline(uow, report, self.policy, now)
            notices = await self._tell.new_card(uow, report)
            await queue_all(uow, notices, now)
            await uow.commit()
        return Outcome(report, notices)

    async def follow(self, telegram_id: int, report_id: int) -> Outcome:
        """我也遇到了 (+1): follow an open report instead of opening a duplicate; a few points, once."""
        async with self._uow() as uow:
            resident = await _member(uow, telegram_id)
            report = await uow.reports.get(report_id)
            if report is None or report.community_id != resident.community_id or not report.is_open:
                raise NotFound(what="report")
            added = report.reporter_id != resident.id and await uow.reports.follow(report.id, resident.id,
                                                                                    self._clock())  # fmt: skip
            await uow.commit()
        key = f"report:{report.id}:plus1:{resident.id}"
        credited = await award(self._points, resident.id, PLUS_ONE_REASON, key, report.ticket) if added else 0
        return Outcome(report, [], credited)

    async def mine(self, telegram_id: int) -> MyReports:
        """My reports (newest first) and the reports I follow."""
        async with self._uow() as uow:
            resident = await _member(uow, telegram_id)
            mine = await uow.reports.by_reporter(resident.id, LIST_SIZE)
            followed = await uow.reports.followed_by(resident.id, LIST_SIZE)
        return MyReports(mine, followed)

    async def detail(self, telegram_id: int, report_id: int) -> tuple[Report, list[Event]]:
        """One report with its history, for its reporter, its followers and the community's staff."""
        async with self._uow() as uow:
            resident = await _member(uow, telegram_id)
            report = await uow.reports.get(report_id)
            if report is None:
                raise NotFound(what="report")
            followers = await uow.reports.followers(report.id)
            staff = resident.has_role(Role.GRID_WORKER, report.community_id)
            if resident.id != report.reporter_id and resident.id not in followers and not staff:
                raise Forbidden(role="reporter")
            history = await uow.reports.history(report.id)
        return report, [replace(e, at=self._tell.local(e.at) or e.at) for e in history]

    async def sweep_orphan_photos(self, now: datetime, grace: timedelta = timedelta(days=2)) -> int:
        """Delete report photos stored more than ``grace`` ago that no report, history entry or live dialog state
        refers to: drafts abandoned or expired, prefetched photos nobody used. Returns how many files went.

        References are read before the files are listed, and a photo stored again is made young again, so a photo
        on its way into a draft or a report is never taken. ``grace`` must stay well above ``PREFETCH_TTL``.
        """
        async with self._uow() as uow:
            in_use = await uow.reports.photo_keys_in_use(now, f"{PHOTO_FOLDER}/")
        deleted = await self.photos.remove_unused(now - grace, in_use)
        log.info("orphan report photos swept: %d deleted, %d referenced", deleted, len(in_use))
        return deleted

    async def context(self, report: Report, locale: str) -> dict[str, object]:
        """Template context for one report in a locale (names, local times)."""
        async with self._uow() as uow:
            return await self._tell.context(uow, report, locale)


def _new_report(draft: Draft, resident: Resident, now: datetime, ticket: str, category: Category) -> Report:
    report = Report(
        id=0, ticket=ticket, community_id=_community(resident), category=category.key, status=Status.SUBMITTED,
        reporter_id=resident.id, description=clean_text(draft.description, DESCRIPTION_MIN, DESCRIPTION_MAX,
                                                         "description"),
        submitted_at=now, anonymous=draft.anonymous, location=draft.location, building_id=draft.building_id,
        address=draft.address, photos=draft.photos, skip_reason=None if draft.photos else draft.skip_reason,
    )  # fmt: skip
    # The 2-day goal counts from submission: the category's deadline starts now, not at acceptance.
    return replace(report, deadline=deadline_after(now, category.hours))


async def _member(uow: UnitOfWork, telegram_id: int) -> Resident:
    return await member(uow, telegram_id)


def _community(resident: Resident) -> int:
    assert resident.community_id is not None
    return resident.community_id
