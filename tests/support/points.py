"""Helpers for points tests: a fake clock, a test policy and the points services wired on a real database."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.domain.points import Policy, Reason, Rule
from bot.domain.residents import Community, Resident
from bot.domain.rewards import Reward
from bot.domain.roles import Role
from bot.services.access import AccessService
from bot.services.communities import CommunityService
from bot.services.points import PointsService, credit
from bot.services.redemptions import RedemptionService
from bot.services.residents import ResidentService
from bot.services.rewards import RewardService
from storage.db import make_engine, make_sessionmaker
from storage.uow import SqlUnitOfWork, uow_factory

ORGANISER = 9000
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = Policy(
    {
        Reason.QUIZ: Rule(1, daily_cap=10),
        Reason.SURVEY: Rule(5, weekly_cap=10),
        Reason.REPORT_ACCEPTED: Rule(5),
        Reason.VOLUNTEER_HOURS: Rule(2, daily_cap=8),
    },
    SHANGHAI,
    expiry_months=12,
    reminder_days=30,
    redemption_valid_days=7,
)


@dataclass
class FakeClock:
    now: datetime = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class World:
    """The points services on one database, a community ``demo`` and an organiser."""

    engine: AsyncEngine
    clock: FakeClock
    residents: ResidentService
    communities: CommunityService
    access: AccessService
    points: PointsService
    rewards: RewardService
    redemptions: RedemptionService
    sessions: async_sessionmaker[AsyncSession]
    community: Community | None = None

    async def resident(self, telegram_id: int, building: str = "1", community: str = "demo") -> Resident:
        """A registered resident of ``community``."""
        found = await self.communities.by_code(community)
        assert found is not None
        place = found.building(building)
        await self.residents.give_consent(telegram_id, f"居民{telegram_id}", "zh_Hans")
        return await self.residents.join(telegram_id, found.id, place.id if place else None)

    async def many(self, telegram_ids: list[int], points: int) -> None:
        """Registered residents of ``demo`` with ``points`` each, in one transaction (fast setup for races)."""
        assert self.community is not None
        now = self.clock()
        async with SqlUnitOfWork(self.sessions) as uow:
            for telegram_id in telegram_ids:
                resident = await uow.residents.add(telegram_id, "zh_Hans", now)
                await uow.residents.update(
                    resident.id, consent_at=now, consent_version="t", community_id=self.community.id
                )
                account = await uow.points.lock_account(resident.id, self.community.id)
                await credit(uow, account, points, Reason.MANUAL_GRANT, f"seed:{telegram_id}", now)
            await uow.commit()

    async def fund(self, telegram_id: int, points: int) -> int:
        """Give points through an organiser's manual grant."""
        return await self.points.grant(ORGANISER, telegram_id, points, "test", uuid.uuid4().hex)

    async def reward(self, cost: int, stock: int | None, limit: int | None = None, community: str = "demo") -> Reward:
        """Add a reward straight into storage."""
        found = await self.communities.by_code(community)
        assert found is not None
        async with SqlUnitOfWork(self.sessions) as uow:
            draft = Reward(0, found.id, uuid.uuid4().hex[:12], {"zh_Hans": "理发", "en": "Haircut"}, cost, stock, limit)
            reward = await uow.rewards.add(draft)
            await uow.commit()
        return reward

    async def stock(self, reward_id: int) -> int | None:
        async with SqlUnitOfWork(self.sessions) as uow:
            reward = await uow.rewards.get(reward_id)
        assert reward is not None
        return reward.stock

    async def aclose(self) -> None:
        await self.engine.dispose()


async def make_world(url: str, *, pool_size: int = 20, seed: int = 7, with_demo: bool = True) -> World:
    """Wire the services like ``bot.app`` does, on ``url``, with a fake clock and a seeded code generator."""
    engine = make_engine(url, pool_size=pool_size)
    sessions = make_sessionmaker(engine)
    uow = uow_factory(sessions)
    clock = FakeClock()
    world = World(
        engine,
        clock,
        ResidentService(uow, clock),
        CommunityService(uow),
        AccessService(uow, clock),
        PointsService(uow, clock, POLICY),
        RewardService(uow, clock),
        RedemptionService(uow, clock, POLICY, random.Random(seed)),
        sessions,
    )
    if with_demo:
        world.community = await world.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
        await world.communities.add("other", "邻近社区", [("1", "1号楼")])
        await world.resident(ORGANISER)
        await world.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    return world
