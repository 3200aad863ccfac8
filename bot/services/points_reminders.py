"""Telling residents before their points expire: one durable reminder per resident and expiry date."""

from __future__ import annotations

from datetime import datetime

from bot.domain.jobs import Job
from bot.services.jobs import JobRunner, Notice
from bot.services.points import PointsService
from bot.services.ports import UnitOfWorkFactory

KIND = "points.expiring"


class PointsReminders:
    def __init__(self, uow: UnitOfWorkFactory, points: PointsService, jobs: JobRunner) -> None:
        self._uow = uow
        self._points = points
        self._jobs = jobs
        jobs.register(KIND, self.remind)

    async def schedule(self, now: datetime) -> int:
        """Queue a reminder for each resident with points expiring soon; the job key makes it once per date."""
        added = 0
        for telegram_id, points, expires in await self._points.expiring_reminders(now):
            key = f"{KIND}:{telegram_id}:{expires.date().isoformat()}"
            payload = {"telegram_id": telegram_id, "points": points, "expires": expires.isoformat()}
            added += await self._jobs.schedule(KIND, now, payload, key)
        return added

    async def remind(self, job: Job, now: datetime) -> list[Notice]:
        """The message itself, in the resident's language, naming rewards their community offers now; nothing if they
        left or blocked the bot."""
        telegram_id = int(job.payload["telegram_id"])
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            home = resident.community_id if resident else None
            offered = [r for r in await uow.rewards.in_community(home) if r.available(now)] if home else []
        if resident is None or resident.unreachable_at is not None:
            return []
        expires = datetime.fromisoformat(str(job.payload["expires"]))
        rewards = [{"name": r.title(resident.locale), "cost": r.cost} for r in offered]  # cheapest first
        context = {"points": int(job.payload["points"]), "expires": expires.strftime("%Y-%m-%d"), "rewards": rewards}
        return [Notice(telegram_id, "points/expiring", context, resident.locale)]
