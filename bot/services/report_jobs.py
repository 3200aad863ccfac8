"""Report timers (durable jobs): remind the assignee at the deadline, escalate after the grace period, and
send unconfirmed fixes to organisers for a re-visit (回头看). Each job re-checks the report, so a timer whose
report has moved on (fixed in time, deadline changed) does nothing. Handlers return their messages; the job runner
queues them in the job's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.jobs import Job
from bot.domain.notices import Notice
from bot.domain.reports import Event, Policy, Report, Status, timers
from bot.domain.roles import Role
from bot.services.jobs import JobRunner
from bot.services.ports import UnitOfWork, UnitOfWorkFactory
from bot.services.report_notices import Notifier

REMIND, ESCALATE, CHECK = "report.remind", "report.escalate", "report.check"


async def schedule_deadline(uow: UnitOfWork, report: Report, policy: Policy, now: datetime) -> None:
    """Timers for the report's current deadline (a new deadline gets new timers; old ones find it changed)."""
    assert report.deadline is not None
    timing = timers(report.deadline, policy.grace_hours)
    payload = {"report": report.id, "deadline": report.deadline.isoformat()}
    for kind, due in ((REMIND, timing.remind_at), (ESCALATE, timing.escalate_at)):
        await uow.jobs.add(kind, due, payload, f"{kind}:{report.id}:{report.deadline.isoformat()}", now)


async def schedule_check(uow: UnitOfWork, report: Report, policy: Policy, now: datetime) -> None:
    """If the reporter has not confirmed the fix after ``check_days``, organisers re-visit."""
    assert report.resolved_at is not None
    payload = {"report": report.id, "resolved_at": report.resolved_at.isoformat()}
    due = report.resolved_at + timedelta(days=policy.check_days)
    await uow.jobs.add(CHECK, due, payload, f"{CHECK}:{report.id}:{report.resolved_at.isoformat()}", now)


class ReportTimers:
    def __init__(self, uow: UnitOfWorkFactory, notifier: Notifier) -> None:
        self._uow = uow
        self._tell = notifier

    def register(self, runner: JobRunner) -> None:
        """Make the job runner run the report timers."""
        runner.register(REMIND, self.remind)
        runner.register(ESCALATE, self.escalate)
        runner.register(CHECK, self.check)

    async def remind(self, job: Job, now: datetime) -> list[Notice]:
        """At the deadline: a reminder to the assignee (or to the staff when nobody accepted it yet)."""
        async with self._uow() as uow:
            report = await self._still(uow, job, "deadline")
            if report is None:
                return []
            await uow.reports.add_event(report.id, Event(now, "remind", report.status, report.status))
            if report.assignee_id is None:  # nobody took it yet: whoever handles the category
                notices = await self._tell.staff(uow, report, "reports/staff/overdue")
            else:
                notices = await self._tell.assignee(uow, report, "reports/staff/overdue")
            await uow.commit()
        return notices

    async def escalate(self, job: Job, now: datetime) -> list[Notice]:
        """After the grace period: organisers hear about it (staff group, or each organiser)."""
        async with self._uow() as uow:
            report = await self._still(uow, job, "deadline")
            if report is None or not await uow.reports.move(report.id, report.status, escalated_at=now):
                return []
            await uow.reports.add_event(report.id, Event(now, "escalate", report.status, report.status))
            notices = await self._tell.staff(uow, report, "reports/staff/escalated", Role.ORGANISER)
            moved = await uow.reports.get(report.id)
            notices += await self._tell.card(uow, moved or report)  # the card shows it is overdue and escalated
            await uow.commit()
        return notices

    async def check(self, job: Job, now: datetime) -> list[Notice]:
        """The reporter never answered "is it fixed?": organisers re-visit, then close or reopen."""
        async with self._uow() as uow:
            report = await self._still(uow, job, "resolved_at")
            if report is None:
                return []
            await uow.reports.add_event(report.id, Event(now, "revisit", report.status, report.status))
            notices = await self._tell.staff(uow, report, "reports/staff/revisit", Role.ORGANISER)
            await uow.commit()
        return notices

    @staticmethod
    async def _still(uow: UnitOfWork, job: Job, field: str) -> Report | None:
        """The report, if it is still where it was when the job was scheduled."""
        report = await uow.reports.get(int(job.payload["report"]), for_update=True)
        if report is None:
            return None
        moment = getattr(report, field)
        expected_status = report.is_open if field == "deadline" else report.status is Status.RESOLVED
        if not expected_status or moment is None or moment.isoformat() != job.payload[field]:
            return None
        return report
