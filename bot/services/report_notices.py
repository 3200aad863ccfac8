"""Who hears about a report and in what words: reporter and +1 followers, the assignee, staff, organisers.

Every notice is in the recipient's own language. Residents never learn who reported (or followed) a report;
staff see the reporter's name so they can ask for details.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from bot.domain.notices import Choice, Notice
from bot.domain.points import mask_name
from bot.domain.reports import Policy, Report, Status
from bot.domain.residents import Resident
from bot.domain.roles import Role
from bot.services.ports import UnitOfWork
from bot.services.report_actions import (
    FOLLOWUP_NO,
    FOLLOWUP_OK,
    STAFF_CLOSE,
    STAFF_DEADLINE,
    STAFF_FIX,
    STAFF_REASSIGN,
    STAFF_REJECT,
    STAFF_REOPEN,
    STAFF_START,
    STAFF_TAKE,
)

# The report's card in the staff group: posted when it is submitted, edited on every later move.
CARD = "reports/staff/new"


def card_ref(report_id: int) -> str:
    """The name of a report's card in the staff group (a notice with this ref and ``edit`` edits it)."""
    return f"report:{report_id}"


def name_of(person: Resident | None) -> str:
    """How staff messages name a person: their name, or their Telegram id when the bot never learnt it (a role
    granted by id to someone who has not opened the bot yet)."""
    if person is None:
        return "—"
    return person.display_name or (f"ID {person.telegram_id}" if person.telegram_id else "—")


def can_reach(person: Resident | None) -> bool:
    """Whether the bot may write to this person first, as far as anyone can know before trying.

    Telegram lets a bot write to a person only after they wrote to it in private. Consent is only ever given in
    a private chat with the bot, so a person without it (say, a grid worker whose role an organiser granted by
    Telegram id) has never opened one. After that, the only way to become unreachable is to block the bot (or
    leave Telegram), which the next message finds out: Telegram answers 403 and the outbox dispatcher records
    ``unreachable_at`` (cleared when they write again). The one case nobody can know beforehand — blocked since
    the last message, nothing sent since — is the dispatcher's to find; the deadline reminder and the escalation
    to organisers still follow.
    """
    return (
        person is not None and person.telegram_id is not None and person.has_consent and person.unreachable_at is None
    )


def staff_choices(report: Report, *, card: bool = False) -> tuple[tuple[Choice, ...], ...]:
    """The buttons under a report for whoever handles it next, by status (none once it is closed). The ``card``
    (staff group, organisers) also offers to hand an accepted report to someone else or move its deadline."""
    rid = (report.id,)
    steer = (Choice("reports.btn.reassign", STAFF_REASSIGN, rid), Choice("reports.btn.deadline", STAFF_DEADLINE, rid))
    if report.status is Status.SUBMITTED:
        return ((Choice("reports.btn.take", STAFF_TAKE, rid), Choice("reports.btn.reject", STAFF_REJECT, rid)),)
    work: tuple[Choice, ...]
    if report.status is Status.ACCEPTED:
        work = (Choice("reports.btn.start", STAFF_START, rid), Choice("reports.btn.resolve", STAFF_FIX, rid))
        return (work, steer) if card else (work,)
    if report.status is Status.IN_PROGRESS:
        work = (Choice("reports.btn.resolve", STAFF_FIX, rid),)
        return (work, steer) if card else (work,)
    if report.status is Status.RESOLVED:
        return ((Choice("reports.btn.close", STAFF_CLOSE, rid), Choice("reports.btn.reopen", STAFF_REOPEN, rid)),)
    return ()


def check_choices(report: Report) -> tuple[tuple[Choice, ...], ...]:
    """回头看: the reporter says whether the fix holds."""
    rid = (report.id,)
    return ((Choice("reports.btn.fixed", FOLLOWUP_OK, rid), Choice("reports.btn.not_fixed", FOLLOWUP_NO, rid)),)


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
        staff = extra.get("role") == "staff"
        return {
            "ticket": report.ticket, "id": report.id, "category": category.name(locale),
            "category_track": category.track,
            "status": report.status.value, "type": report.type.value, "description": report.description,
            "building": building, "address": report.address, "photos": len(report.photos),
            "skip_reason": report.skip_reason,
            "latitude": where.latitude if where else None, "longitude": where.longitude if where else None,
            "reject_reason": report.reject_reason.value if report.reject_reason else None,
            "note": report.resolution_note, "reopened": report.reopened, "escalated": report.escalated_at is not None,
            "community": community.name if community else "",
            # Staff need to know who it is even without a name; residents are not shown a Telegram id.
            "assignee": (name_of(assignee) if staff else assignee.display_name or "—") if assignee else None,
            # Other residents see the reporter only when they agreed, and then masked.
            "reporter_public": None if report.anonymous or reporter is None else mask_name(reporter.display_name),
            **{k: self.local(getattr(report, k)) for k in ("submitted_at", "deadline", "resolved_at", "closed_at")},
            **extra,
        }  # fmt: skip

    @property
    def zone(self) -> tzinfo:
        """The communities' time zone: typed days and the deadlines shown are in it."""
        return self._tz

    def zoned(self, moment: datetime) -> datetime:
        """A UTC moment in the community's time zone."""
        return moment.astimezone(self._tz)

    def local(self, moment: datetime | None) -> datetime | None:
        """A UTC moment in the community's time zone, for templates."""
        return moment.astimezone(self._tz) if moment else None

    async def people(
        self, uow: UnitOfWork, report: Report, template: str, *, photo: str | None = None,
        reporter_choices: tuple[tuple[Choice, ...], ...] = (), to_reporter: bool = True, followers: bool = True,
        **extra: Any,
    ) -> list[Notice]:  # fmt: skip
        """The reporter (with ``reporter_choices``) and everyone who said +1, unless told otherwise."""
        notices: list[Notice] = []
        if to_reporter:
            reporter = await uow.residents.get(report.reporter_id)
            notices += await self._to(uow, [reporter], report, template, photo, reporter_choices, role="reporter",
                                      **extra)  # fmt: skip
        if followers:
            ids = await uow.reports.followers(report.id)
            people = [await uow.residents.get(i) for i in ids if i != report.reporter_id]
            notices += await self._to(uow, people, report, template, photo, (), role="follower", **extra)
        return notices

    async def assignee(
        self, uow: UnitOfWork, report: Report, template: str, *, person_id: int | None = None, buttons: bool = True,
        **extra: Any,
    ) -> list[Notice]:  # fmt: skip
        """The grid worker handling the report (or ``person_id``), privately, with the buttons for their next step
        (none with ``buttons=False``: for someone the report was taken from)."""
        who = person_id or report.assignee_id
        person = await uow.residents.get(who) if who else None
        photo = self.photo(report.photos[0]) if report.photos else None
        choices = staff_choices(report) if buttons else ()
        return await self._to(uow, [person], report, template, photo, choices, role="staff", **extra)

    async def staff(
        self, uow: UnitOfWork, report: Report, template: str, role: Role | None = None, **extra: Any
    ) -> list[Notice]:
        """The staff group of the community, or else each holder of ``role`` (the category's) privately."""
        chat = await uow.reports.staff_chat(report.community_id)
        if chat is not None:
            return [await self._in_group(uow, chat, report, template, **extra)]
        return await self._privately(uow, report, template, role, **extra)

    async def new_card(self, uow: UnitOfWork, report: Report) -> list[Notice]:
        """A new report's card: in the staff group, named so that every later move edits it (:meth:`card`);
        without a staff group, each holder of the category's role hears about it privately."""
        chat = await uow.reports.staff_chat(report.community_id)
        if chat is None:
            return await self._privately(uow, report, CARD, None)
        ref = card_ref(report.id)
        return [await self._in_group(uow, chat, report, CARD, ref=ref, key=f"{ref}:card")]

    async def card(self, uow: UnitOfWork, report: Report) -> list[Notice]:
        """The report's card in the staff group brought up to date: status, assignee, deadline and only the
        buttons that still apply (none once it is closed). Nothing without a staff group."""
        chat = await uow.reports.staff_chat(report.community_id)
        if chat is None:
            return []
        return [await self._in_group(uow, chat, report, CARD, ref=card_ref(report.id), edit=True)]

    async def _in_group(
        self, uow: UnitOfWork, chat: int, report: Report, template: str, *, ref: str | None = None,
        key: str | None = None, edit: bool = False, **extra: Any,
    ) -> Notice:  # fmt: skip
        photo = self.photo(report.photos[0]) if report.photos else None
        context = await self.context(uow, report, self._group_locale, role="staff",
                                     reporter=await self.reporter_name(uow, report), **extra)  # fmt: skip
        choices = staff_choices(report, card=True)
        return Notice(chat, template, context, self._group_locale, photo, choices, ref, edit, key)

    async def _privately(
        self, uow: UnitOfWork, report: Report, template: str, role: Role | None, **extra: Any
    ) -> list[Notice]:
        photo = self.photo(report.photos[0]) if report.photos else None
        extra |= {"reporter": await self.reporter_name(uow, report)}
        role = role or self._policy.category(report.category).role
        people: list[Resident | None] = list(await uow.residents.with_role(role, report.community_id))
        choices = staff_choices(report, card=True)
        return await self._to(uow, people, report, template, photo, choices, role="staff", **extra)

    @staticmethod
    async def reporter_name(uow: UnitOfWork, report: Report) -> str:
        """The reporter as staff see them."""
        reporter = await uow.residents.get(report.reporter_id)
        return (reporter.display_name if reporter else None) or "—"

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
