"""Helpers for volunteer tests: the volunteer services, the job runner and a community with a shift, on a real
database and a fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.domain.volunteers import Booking, BookingStatus, Shift, ShiftDraft
from bot.services.jobs import JobRunner
from bot.services.volunteer_desk import VolunteerDesk
from bot.services.volunteers import VolunteerService
from storage.messaging_models import OutboxRow
from storage.uow import SqlUnitOfWork, Transactions, uow_factory
from tests.support.points import ORGANISER, World, make_world


@dataclass
class VWorld:
    world: World
    volunteers: VolunteerService
    desk: VolunteerDesk
    jobs: JobRunner

    @property
    def clock(self):  # type: ignore[no-untyped-def]
        return self.world.clock

    async def volunteer(self, telegram_id: int, building: str = "1") -> None:
        await self.world.resident(telegram_id, building)
        await self.volunteers.register(telegram_id, "", "")

    async def volunteers_many(self, telegram_ids: list[int]) -> None:
        """Registered residents who are volunteers, in one transaction (fast setup for races)."""
        from bot.domain.volunteers import Profile, ProfileStatus

        assert self.world.community is not None
        now = self.clock()
        async with SqlUnitOfWork(self.world.sessions) as uow:
            for telegram_id in telegram_ids:
                resident = await uow.residents.add(telegram_id, "zh_Hans", now)
                await uow.residents.update(
                    resident.id, consent_at=now, consent_version="t", community_id=self.world.community.id,
                    display_name=f"志愿者{telegram_id}",
                )  # fmt: skip
                profile = Profile(resident.id, self.world.community.id, ProfileStatus.APPROVED, created_at=now)
                await uow.volunteers.save_profile(profile, now)
            await uow.commit()

    async def shift(
        self, capacity: int, *, in_hours: float = 48, hours: float = 2, cutoff: int = 12, weeks: int = 1
    ) -> Shift:
        activity = await self.desk.create_activity(
            ORGANISER, title="垃圾分类督导", description="桶边督导", place="3号楼垃圾房", contact="王老师 13800000000",
            track="sanitary", latitude=31.2304, longitude=121.4737,
        )  # fmt: skip
        start = self.clock() + timedelta(hours=in_hours)
        draft = ShiftDraft(start, start + timedelta(hours=hours), capacity, 2, "", cutoff, weeks)
        return (await self.desk.add_shifts(ORGANISER, activity.id, draft))[0]

    async def bookings(self, shift_id: int) -> list[Booking]:
        async with SqlUnitOfWork(self.world.sessions) as uow:
            return await uow.volunteers.bookings(shift_id)

    async def statuses(self, shift_id: int) -> dict[BookingStatus, int]:
        counts: dict[BookingStatus, int] = {}
        for booking in await self.bookings(shift_id):
            counts[booking.status] = counts.get(booking.status, 0) + 1
        return counts

    async def outbox(self, template: str, chat_id: int | None = None) -> int:
        async with SqlUnitOfWork(self.world.sessions) as uow:
            assert uow.session is not None
            query = (
                select(func.count()).select_from(OutboxRow).where(OutboxRow.payload["template"].as_string() == template)
            )
            if chat_id is not None:
                query = query.where(OutboxRow.chat_id == chat_id)
            return int(await uow.session.scalar(query) or 0)

    async def run_jobs(self, until: datetime | None = None) -> int:
        return await self.jobs.run_due_jobs(until or self.clock())

    async def aclose(self) -> None:
        await self.world.aclose()


async def make_vworld(url: str, *, pool_size: int = 20, fresh: bool = True) -> VWorld:
    """``fresh=False``: a second process on a database another world set up (a restart)."""
    world = await make_world(url, pool_size=pool_size, with_demo=fresh)
    uow = uow_factory(world.sessions)
    transactions = Transactions(world.sessions, serialise=world.engine.dialect.name == "sqlite")
    volunteers = VolunteerService(uow, world.clock, world.points, timezone="Asia/Shanghai")
    jobs = JobRunner(uow, world.clock, transactions)
    volunteers.register_jobs(jobs)
    return VWorld(world, volunteers, VolunteerDesk(uow, world.clock, volunteers), jobs)
