"""Handling a report (问题台账): accept and assign, reject, start, resolve, and 销号 or reopen (回头看); staff also
hand an accepted report to another grid worker and move its deadline, and a grid worker lists their tasks.

Every move is checked against the transition table in ``bot.domain.reports`` and against who the actor is to
the report (read from storage each time: callback data is never trusted), recorded in the history with actor and
time, and told to the people concerned in their own language: those messages go to the outbox in the move's
own transaction, and the report's card in the staff group is edited to show where it stands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.domain.errors import DomainError, InvalidInput, NeedsConsent, NotFound
from bot.domain.notices import Notice
from bot.domain.points import Reason
from bot.domain.reports import (
    EXTEND_DAYS,
    Event,
    Move,
    NotYours,
    Policy,
    RejectReason,
    Report,
    StaffTransitionRefused,
    Status,
    TransitionRefused,
    agenda,
    clean_note,
    deadline_after,
    extended,
    is_overdue,
    next_status,
    typed_deadline,
)
from bot.domain.residents import Resident
from bot.domain.roles import Role
from bot.services.outbox import queue, queue_all
from bot.services.points import PointsService
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.services.report_jobs import schedule_check, schedule_deadline
from bot.services.report_notices import Notifier, can_reach, check_choices, name_of
from bot.services.surveys import fix_question

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A report after a use case, and the messages for other people that it caused (already in the outbox)."""

    report: Report
    notices: list[Notice] = field(default_factory=list)
    points: int = 0
    # After an assignment: whether the assignee can be told at all (see ``can_reach``); when not, the staff who
    # assigned it are told so, with the link that opens the bot for them.
    reached: bool = True
    assignee: str | None = None


@dataclass(frozen=True)
class _Loaded:
    report: Report
    actor: Resident
    target: Status


async def actor_of(uow: UnitOfWork, telegram_id: int) -> Resident:
    """The person acting, who must have consented."""
    actor = await uow.residents.get_by_telegram_id(telegram_id)
    if actor is None or not actor.has_consent:
        raise NeedsConsent()
    return actor


async def award(points: PointsService, resident_id: int, reason: Reason, key: str, ref: str) -> int:
    """Points for a report; a resident who left (or deleted their data) simply gets none."""
    try:
        return (await points.award(resident_id, reason, key, ref=ref)).credited
    except DomainError:
        log.info("no points for resident %s (%s)", resident_id, key)
        return 0


class ReportDesk:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy, notifier: Notifier, points: PointsService
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._tell = notifier
        self._points = points

    async def assignees(self, telegram_id: int, report_id: int) -> tuple[Report, list[Resident]]:
        """Grid workers (and organisers) of the report's community, for the "assign to" buttons."""
        async with self._uow() as uow:
            loaded = await self._load(uow, telegram_id, report_id, Move.ACCEPT)
            people = await uow.residents.with_role(Role.GRID_WORKER, loaded.report.community_id)
        return loaded.report, people

    async def duplicates(self, telegram_id: int, report_id: int) -> tuple[Report, list[Report]]:
        """Open reports of the same category in the community, older than this one: what it may duplicate."""
        async with self._uow() as uow:
            report = (await self._load(uow, telegram_id, report_id, Move.REJECT)).report
            same = await uow.reports.open_in(report.community_id, report.category)
        return report, [r for r in same if r.id < report.id][-5:]

    async def accept(self, telegram_id: int, report_id: int, assignee_id: int) -> Outcome:
        """Accept and assign to a grid worker of the community; the deadline is the category's default."""
        async with self._uow() as uow:
            loaded = await self._load(uow, telegram_id, report_id, Move.ACCEPT)
            assignee = await self._grid_worker(uow, loaded.report, assignee_id)
            now = self._clock()
            deadline = loaded.report.deadline or deadline_after(now, self._hours(loaded.report))
            after = await self._apply(uow, loaded, Move.ACCEPT, assignee_id=assignee.id, accepted_at=now,
                                      deadline=deadline)  # fmt: skip
            if deadline != loaded.report.deadline:
                await schedule_deadline(uow, after, self._policy, now)
            name = assignee.display_name or "—"
            followers = await self._tell.people(uow, after, "reports/notify/accepted", to_reporter=False,
                                              points=0, assignee=name)  # fmt: skip
            staff = await self._tell.assignee(uow, after, "reports/staff/assigned") + await self._tell.card(uow, after)
            await queue_all(uow, followers + staff, now)
            await uow.commit()
        credited = await award(self._points, after.reporter_id, Reason.REPORT_ACCEPTED, f"report:{after.id}:accepted",
                               after.ticket)  # fmt: skip
        # The reporter's message names the points just credited (their own transaction): queued right after it.
        async with self._uow() as uow:
            reporter = await self._tell.people(uow, after, "reports/notify/accepted", followers=False,
                                               points=credited, assignee=name)  # fmt: skip
            await queue_all(uow, reporter, self._clock())
            await uow.commit()
        return Outcome(after, reporter + followers + staff, reached=can_reach(assignee), assignee=name_of(assignee))

    async def reject(
        self, telegram_id: int, report_id: int, reason: RejectReason, duplicate_of: int | None = None
    ) -> Outcome:
        """Close without handling; the reason is shown to the reporter. A duplicate's reporter follows the original."""
        async with self._uow() as uow:
            loaded = await self._load(uow, telegram_id, report_id, Move.REJECT)
            original = await self._original(uow, loaded.report, reason, duplicate_of)
            after = await self._apply(uow, loaded, Move.REJECT, reject_reason=reason, closed_at=self._clock(),
                                      duplicate_of=original.id if original else None, note=reason.value)  # fmt: skip
            if original is not None:
                await uow.reports.follow(original.id, after.reporter_id, self._clock())
            ticket = original.ticket if original else None
            notices = await self._tell.people(uow, after, "reports/notify/rejected", original=ticket)
            notices += await self._tell.card(uow, after)
            await queue_all(uow, notices, self._clock())
            await uow.commit()
        return Outcome(after, notices)

    async def start(self, telegram_id: int, report_id: int) -> Outcome:
        """The assignee is on it."""
        async with self._uow() as uow:
            after = await self._apply(uow, await self._load(uow, telegram_id, report_id, Move.START), Move.START)
            notices = await self._tell.people(uow, after, "reports/notify/in_progress")
            notices += await self._tell.card(uow, after)
            await queue_all(uow, notices, self._clock())
            await uow.commit()
        return Outcome(after, notices)

    async def check(self, telegram_id: int, report_id: int, move: Move) -> Report:
        """The report, if this person may make ``move`` now: checked before a dialog, so nobody types in vain."""
        async with self._uow() as uow:
            return (await self._load(uow, telegram_id, report_id, move)).report

    async def resolve(self, telegram_id: int, report_id: int, photo: str, note: str) -> Outcome:
        """Resolved with an after-photo and a note that says what was done; the reporter is asked "is it fixed?"."""
        text = clean_note(note)
        async with self._uow() as uow:
            loaded = await self._load(uow, telegram_id, report_id, Move.RESOLVE)
            now = self._clock()
            after = await self._apply(uow, loaded, Move.RESOLVE, after_photo=photo, resolution_note=text,
                                      resolved_at=now, note=text, photo=photo)  # fmt: skip
            await schedule_check(uow, after, self._policy, now)
            picture = self._tell.photo(photo)
            notices = await self._tell.people(uow, after, "reports/notify/resolved", photo=picture,
                                              reporter_choices=check_choices(after))  # fmt: skip
            notices += await self._tell.card(uow, after)
            await queue_all(uow, notices, now)
            await uow.commit()
        return Outcome(after, notices)

    async def verify(self, telegram_id: int, report_id: int) -> Outcome:
        """销号: the reporter confirms the fix (points), or an organiser closes it after a re-visit."""
        async with self._uow() as uow:
            loaded = await self._load(uow, telegram_id, report_id, Move.VERIFY)
            after = await self._apply(uow, loaded, Move.VERIFY, closed_at=self._clock())
            notices = await self._tell.people(uow, after, "reports/notify/verified")
            notices = [n for n in notices if n.chat_id != loaded.actor.telegram_id]  # the actor has the reply
            notices += await self._tell.assignee(uow, after, "reports/staff/verified")
            notices += await self._tell.card(uow, after)
            await queue_all(uow, notices, self._clock())
            reporter = await uow.residents.get(after.reporter_id)
            if reporter is not None and reporter.telegram_id is not None:  # how satisfied are they? (once, keyed)
                await queue(
                    uow, fix_question(after.id, after.ticket, reporter.telegram_id, reporter.locale), self._clock()
                )
            await uow.commit()
        credited = 0
        if loaded.actor.id == after.reporter_id:  # an organiser's close after a re-visit earns the reporter nothing
            key = f"report:{after.id}:verified"
            credited = await award(self._points, after.reporter_id, Reason.REPORT_VERIFIED, key, after.ticket)
        return Outcome(after, notices, credited)

    async def reopen(self, telegram_id: int, report_id: int, photo: str | None = None) -> Outcome:
        """Not fixed: back to the same assignee with a new deadline."""
        async with self._uow() as uow:
            loaded = await self._load(uow, telegram_id, report_id, Move.REOPEN)
            now = self._clock()
            deadline = deadline_after(now, self._hours(loaded.report))
            after = await self._apply(uow, loaded, Move.REOPEN, deadline=deadline, resolved_at=None,
                                      reopened=loaded.report.reopened + 1, escalated_at=None, photo=photo)  # fmt: skip
            await schedule_deadline(uow, after, self._policy, now)
            notices = await self._tell.assignee(uow, after, "reports/staff/reopened")
            if photo is not None:  # the assignee sees why: the photo the reporter just took
                notices = [replace(n, photo=self._tell.photo(photo)) for n in notices]
            notices += await self._tell.card(uow, after)
            await queue_all(uow, notices, now)
            await uow.commit()
        return Outcome(after, notices)

    async def moves(self, telegram_id: int, report_id: int) -> frozenset[Move]:
        """The moves this person may make on the report now (what the dashboard offers; each is checked again when
        it is made)."""
        async with self._uow() as uow:
            actor = await actor_of(uow, telegram_id)
            report = await uow.reports.get(report_id)
            if report is None:
                raise NotFound(what="report")
        staff = actor.has_role(Role.GRID_WORKER, report.community_id)
        organiser = actor.has_role(Role.ORGANISER, report.community_id)
        actors = report.actors(actor.id, staff=staff, organiser=organiser)
        allowed = set()
        for move in Move:
            try:
                next_status(report.status, move, actors)
            except DomainError:
                continue
            allowed.add(move)
        return frozenset(allowed)

    async def context(self, report: Report, locale: str) -> dict[str, Any]:
        """Template context for a reply to staff (they see who handles it even when the bot has no name)."""
        async with self._uow() as uow:
            reporter = await self._tell.reporter_name(uow, report)
            return await self._tell.context(uow, report, locale, role="staff", reporter=reporter)

    # ---- steering an accepted report: another grid worker, another deadline ---------------------------------

    async def reassign_choices(self, telegram_id: int, report_id: int) -> tuple[Report, list[Resident]]:
        """Grid workers (and organisers) of the community other than the one handling it now."""
        async with self._uow() as uow:
            report = (await self._load(uow, telegram_id, report_id, Move.REASSIGN)).report
            people = await uow.residents.with_role(Role.GRID_WORKER, report.community_id)
        return report, [p for p in people if p.id != report.assignee_id]

    async def reassign(self, telegram_id: int, report_id: int, assignee_id: int) -> Outcome:
        """Hand the report to another grid worker of its community: the new one gets the task with its buttons,
        the old one hears who took it over, the reporter and followers who handles it now; audited."""
        async with self._uow() as uow:
            loaded = await self._load(uow, telegram_id, report_id, Move.REASSIGN)
            person = await self._grid_worker(uow, loaded.report, assignee_id)
            before = loaded.report.assignee_id
            if person.id == before:  # a second tap on the same name: nothing changes
                return Outcome(loaded.report, reached=can_reach(person), assignee=name_of(person))
            old = await uow.residents.get(before) if before else None
            audit = {"from": old.telegram_id if old else None, "assignee": person.telegram_id}
            after = await self._apply(uow, loaded, Move.REASSIGN, assignee_id=person.id, audit=audit)
            notices: list[Notice] = []
            if old is not None and old.id != loaded.actor.id:  # the actor has the reply
                notices += await self._tell.assignee(uow, after, "reports/staff/unassigned", person_id=old.id,
                                                     buttons=False, new=name_of(person))  # fmt: skip
            notices += await self._tell.assignee(uow, after, "reports/staff/assigned")
            notices += await self._tell.people(uow, after, "reports/notify/reassigned",
                                               assignee=person.display_name or "—")  # fmt: skip
            notices += await self._tell.card(uow, after)
            await queue_all(uow, notices, self._clock())
            await uow.commit()
        return Outcome(after, notices, reached=can_reach(person), assignee=name_of(person))

    async def deadline_choices(self, telegram_id: int, report_id: int) -> tuple[Report, list[tuple[int, datetime]]]:
        """The quick choices for a new deadline: (days, the deadline it gives, local time), counted from the
        current deadline, or from now when it has passed."""
        async with self._uow() as uow:
            report = (await self._load(uow, telegram_id, report_id, Move.DEADLINE)).report
        now = self._clock()
        return report, [(days, self._tell.zoned(extended(report.deadline, now, days))) for days in EXTEND_DAYS]

    async def move_deadline(
        self, telegram_id: int, report_id: int, *, days: int | None = None, typed: str | None = None
    ) -> Outcome:
        """A new deadline: ``days`` more (one of :data:`EXTEND_DAYS`) or the end of a typed day. New timers are
        set (the old ones find the deadline changed), the escalation is lifted, and the reporter, the followers
        and the assignee are told; audited."""
        if days is not None and days not in EXTEND_DAYS:
            raise InvalidInput(field="days", value=days)
        async with self._uow() as uow:
            loaded = await self._load(uow, telegram_id, report_id, Move.DEADLINE)
            now = self._clock()
            was = loaded.report.deadline
            if days is not None:
                deadline = extended(was, now, days)
            else:
                deadline = typed_deadline(typed or "", now, self._tell.zone)
            audit = {"was": was.isoformat() if was else None, "deadline": deadline.isoformat()}
            after = await self._apply(uow, loaded, Move.DEADLINE, deadline=deadline, escalated_at=None, audit=audit)
            await schedule_deadline(uow, after, self._policy, now)
            notices = await self._tell.people(uow, after, "reports/notify/deadline")
            if after.assignee_id != loaded.actor.id:  # the actor has the reply
                notices += await self._tell.assignee(uow, after, "reports/staff/deadline_moved")
            notices += await self._tell.card(uow, after)
            await queue_all(uow, notices, now)
            await uow.commit()
        return Outcome(after, notices)

    # ---- a grid worker's own list ---------------------------------------------------------------------------

    async def tasks(self, telegram_id: int, locale: str) -> list[dict[str, Any]]:
        """``/tasks``: the open reports this person handles, overdue first, then by deadline (template contexts,
        each with ``overdue``)."""
        now = self._clock()
        async with self._uow() as uow:
            actor = await actor_of(uow, telegram_id)
            mine = agenda(await uow.reports.assigned_to(actor.id), now)
            return [await self._tell.context(uow, r, locale, role="staff", overdue=is_overdue(r, now)) for r in mine]

    async def task(self, telegram_id: int, report_id: int) -> Report:
        """One report for its assignee, or for staff of its community."""
        async with self._uow() as uow:
            actor = await actor_of(uow, telegram_id)
            report = await uow.reports.get(report_id)
            if report is None:
                raise NotFound(what="report")
            staff = actor.has_role(Role.GRID_WORKER, report.community_id)
            if report.assignee_id != actor.id and not staff:
                raise NotYours("not staff of this report", move="show")
        return report

    async def _grid_worker(self, uow: UnitOfWork, report: Report, resident_id: int) -> Resident:
        person = await uow.residents.get(resident_id)
        if person is None or person.telegram_id is None or not person.has_role(Role.GRID_WORKER, report.community_id):
            raise NotFound(what="assignee")
        return person

    async def _load(self, uow: UnitOfWork, telegram_id: int, report_id: int, move: Move) -> _Loaded:
        actor = await actor_of(uow, telegram_id)
        report = await uow.reports.get(report_id, for_update=True)
        if report is None:
            raise NotFound(what="report")
        staff = actor.has_role(Role.GRID_WORKER, report.community_id)
        organiser = actor.has_role(Role.ORGANISER, report.community_id)
        try:
            target = next_status(report.status, move, report.actors(actor.id, staff=staff, organiser=organiser))
        except TransitionRefused as refused:
            # Staff are pointed to their own list (/tasks); the reporter confirming or reopening, to /myreports.
            if actor.id != report.reporter_id or move not in (Move.VERIFY, Move.REOPEN):
                raise StaffTransitionRefused(str(refused), **refused.context) from None
            raise
        return _Loaded(report, actor, target)

    async def _apply(self, uow: UnitOfWork, loaded: _Loaded, move: Move, **changes: Any) -> Report:
        """Write the move (only if nobody moved the report meanwhile), its history line and, for staff, the audit
        line (with ``audit``'s details)."""
        report, now = loaded.report, self._clock()
        note, photo = changes.pop("note", None), changes.pop("photo", None)
        extra: dict[str, Any] = changes.pop("audit", None) or {}
        if not await uow.reports.move(report.id, report.status, status=loaded.target, **changes):
            raise TransitionRefused("moved meanwhile", move=move.value, status=report.status.value)
        event = Event(now, move.value, loaded.target, report.status, loaded.actor.id, note, photo)
        await uow.reports.add_event(report.id, event)
        if loaded.actor.id != report.reporter_id:
            details = {"report": report.ticket, "move": move.value, "to": loaded.target.value, **extra}
            await uow.audit.add(now, loaded.actor.telegram_id, f"report.{move.value}", True, details)
        after = await uow.reports.get(report.id)
        assert after is not None
        return after

    async def _original(
        self, uow: UnitOfWork, report: Report, reason: RejectReason, duplicate_of: int | None
    ) -> Report | None:
        if reason is not RejectReason.DUPLICATE:
            return None
        original = await uow.reports.get(duplicate_of) if duplicate_of else None
        if original is None or original.id == report.id or original.community_id != report.community_id:
            raise NotFound(what="report")
        return original

    def _hours(self, report: Report) -> int:
        return self._policy.category(report.category).hours
