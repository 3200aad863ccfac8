"""Who hears about a report and in what words: reporter and +1 followers, the assignee, staff, organisers.

Every notice is in the recipient's own language. Residents never learn who reported (or followed) a report;
staff see the reporter's name so they can ask for details.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from bot.domain.points import mask_name
from bot.domain.reports import Policy, Report, Status
from bot.domain.residents import Resident
from bot.domain.roles import Role
from bot.services.jobs import Choice, Notice
from bot.services.ports import UnitOfWork

STAFF_NS, RESIDENT_NS = "rs", "rf"


def staff_choices(report: Report) -> tuple[tuple[Choice, ...], ...]:
    """The buttons under a report for whoever handles it next, by status."""
    rid = (report.id,)
    if report.status is Status.SUBMITTED:
        return (
            (
                Choice("reports.btn.take", f"{STAFF_NS}.take", rid),
                Choice("reports.btn.reject", f"{STAFF_NS}.reject", rid),
            ),
        )
    if report.status is Status.ACCEPTED:
        return (
            (
                Choice("reports.btn.start", f"{STAFF_NS}.start", rid),
                Choice("reports.btn.resolve", f"{STAFF_NS}.fix", rid),
            ),
        )
    if report.status is Status.IN_PROGRESS:
        return ((Choice("reports.btn.resolve", f"{STAFF_NS}.fix", rid),),)
    if report.status is Status.RESOLVED:
        return (
            (
                Choice("reports.btn.close", f"{STAFF_NS}.close", rid),
                Choice("reports.btn.reopen", f"{STAFF_NS}.reopen", rid),
            ),
        )
    return ()


def check_choices(report: Report) -> tuple[tuple[Choice, ...], ...]:
    """回头看: the reporter says whether the fix holds."""
    rid = (report.id,)
    return (
        (
            Choice("reports.btn.fixed", f"{RESIDENT_NS}.ok", rid),
            Choice("reports.btn.not_fixed", f"{RESIDENT_NS}.no", rid),
        ),
    )


class Notifier:
    def __init__(
        self, policy: Policy, timezone: tzinfo, locate: Callable[[str], str], group_locale: str = "zh_Hans"
    ) -> None:
        self._policy = policy
        self._tz = timezone
        self._locate = locate  # file-store key → something a channel can send (path or URL)
        self._group_locale = group_locale

    async def context(self, uow: UnitOfWork, report: Report, locale: str, **extra: Any) -> dict[str, Any]:
        """What every report template may use, in ``locale`` and local time."""
        community = await uow.communities.get(report.community_id)
        building = (
            next((b.name for b in community.buildings if b.id == report.building_id), None) if community else None
        )
        assignee = await uow.residents.get(report.assignee_id) if report.assignee_id else None
        reporter = await uow.residents.get(report.reporter_id)
        category = self._policy.category(report.category)
        where = report.location
        return {
            "ticket": report.ticket, "id": report.id, "category": category.name(locale),
            "category_track": category.track,
            "status": report.status.value, "type": report.type.value, "description": report.description,
            "building": building, "address": report.address, "photos": len(report.photos),
            "skip_reason": report.skip_reason,
            "latitude": where.latitude if where else None, "longitude": where.longitude if where else None,
            "reject_reason": report.reject_reason.value if report.reject_reason else None,
            "note": report.resolution_note, "reopened": report.reopened,
            "community": community.name if community else "",
            "assignee": (assignee.display_name or "—") if assignee else None,
            # Other residents see the reporter only when they agreed, and then masked.
            "reporter_public": None if report.anonymous or reporter is None else mask_name(reporter.display_name),
            **{k: self.local(getattr(report, k)) for k in ("submitted_at", "deadline", "resolved_at", "closed_at")},
            **extra,
        }  # fmt: skip

    def local(self, moment: datetime | None) -> datetime | None:
        """A UTC moment in the community's time zone, for templates."""
        return moment.astimezone(self._tz) if moment else None

    async def people(
        self, uow: UnitOfWork, report: Report, template: str, *, photo: str | None = None,
        reporter_choices: tuple[tuple[Choice, ...], ...] = (), followers: bool = True, **extra: Any,
    ) -> list[Notice]:  # fmt: skip
        """The reporter (with ``reporter_choices``) and, unless told otherwise, everyone who said +1."""
        reporter = await uow.residents.get(report.reporter_id)
        notices = await self._to(uow, [reporter], report, template, photo, reporter_choices, role="reporter", **extra)
        if followers:
            ids = await uow.reports.followers(report.id)
            people = [await uow.residents.get(i) for i in ids if i != report.reporter_id]
            notices += await self._to(uow, people, report, template, photo, (), role="follower", **extra)
        return notices

    async def assignee(self, uow: UnitOfWork, report: Report, template: str, **extra: Any) -> list[Notice]:
        """The grid worker handling the report, privately, with the buttons for their next step."""
        person = await uow.residents.get(report.assignee_id) if report.assignee_id else None
        photo = self.photo(report.photos[0]) if report.photos else None
        return await self._to(uow, [person], report, template, photo, staff_choices(report), role="staff", **extra)

    async def staff(
        self, uow: UnitOfWork, report: Report, template: str, role: Role | None = None, **extra: Any
    ) -> list[Notice]:
        """The staff group of the community, or else each holder of ``role`` (the category's) privately."""
        photo = self.photo(report.photos[0]) if report.photos else None
        reporter = await uow.residents.get(report.reporter_id)
        extra |= {"reporter": (reporter.display_name if reporter else None) or "—"}
        chat = await uow.reports.staff_chat(report.community_id)
        if chat is not None:
            context = await self.context(uow, report, self._group_locale, role="staff", **extra)
            return [Notice(chat, template, context, self._group_locale, photo, staff_choices(report))]
        role = role or self._policy.category(report.category).role
        people: list[Resident | None] = list(await uow.residents.with_role(role, report.community_id))
        return await self._to(uow, people, report, template, photo, staff_choices(report), role="staff", **extra)

    def photo(self, key: str) -> str:
        """What a channel sends for a stored photo (a local path or a URL)."""
        return self._locate(key)

    async def _to(
        self, uow: UnitOfWork, people: list[Resident | None], report: Report, template: str, photo: str | None,
        choices: tuple[tuple[Choice, ...], ...], **extra: Any,
    ) -> list[Notice]:  # fmt: skip
        notices = []
        for person in people:
            if person is None or person.telegram_id is None:
                continue  # deleted their data: nobody to tell
            context = await self.context(uow, report, person.locale, **extra)
            notices.append(Notice(person.telegram_id, template, context, person.locale, photo, choices))
        return notices
