"""Helpers for proposal tests: the proposal service and the job runner on a real database and a fake clock, a
community ``demo`` with an organiser (``tests.support.points``) and residents made in bulk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from bot.domain.proposals import Draft, Proposal, Rules
from bot.services.files import LocalFileStore, PhotoIntake
from bot.services.jobs import JobRunner
from bot.services.proposals import ProposalService
from storage.messaging_models import OutboxRow
from storage.proposal_models import ProposalSupportRow, ProposalVoteRow
from storage.uow import SqlUnitOfWork, Transactions, uow_factory
from tests.support.points import ORGANISER, FakeClock, World, make_world
from tests.support.reports import FakeDownloader

DEFAULTS = Rules(threshold=3, collect_days=30, vote_days=7)
DRAFT = Draft("3号楼旁口袋公园改造", "把 3 号楼旁的空地改成口袋公园，增加座椅和遮阳棚。", 5_000_000, "garden")


@dataclass
class PWorld:
    world: World
    proposals: ProposalService
    jobs: JobRunner
    files: FakeDownloader
    photos: PhotoIntake | None = None

    @property
    def clock(self) -> FakeClock:
        return self.world.clock

    async def residents(self, telegram_ids: list[int], community: str = "demo") -> None:
        """Registered residents of ``community`` in one transaction (fast setup for races)."""
        found = await self.world.communities.by_code(community)
        assert found is not None
        now = self.clock()
        async with SqlUnitOfWork(self.world.sessions) as uow:
            for telegram_id in telegram_ids:
                resident = await uow.residents.add(telegram_id, "zh_Hans", now)
                await uow.residents.update(resident.id, consent_at=now, consent_version="t", community_id=found.id)
            await uow.commit()

    async def collecting(self, author: int, threshold: int | None = None) -> Proposal:
        """A proposal by ``author`` that the organiser opened for support (with ``threshold`` when given)."""
        if threshold is not None:
            await self.proposals.set_rules(ORGANISER, Rules(threshold, DEFAULTS.collect_days, DEFAULTS.vote_days))
        proposal = await self.proposals.submit(author, DRAFT)
        return await self.proposals.review(ORGANISER, proposal.id, accept=True)

    async def get(self, proposal_id: int) -> Proposal:
        async with SqlUnitOfWork(self.world.sessions) as uow:
            found = await uow.proposals.get(proposal_id)
        assert found is not None
        return found

    async def count(self, table: type[ProposalSupportRow] | type[ProposalVoteRow], proposal_id: int) -> int:
        async with SqlUnitOfWork(self.world.sessions) as uow:
            assert uow.session is not None
            query = select(func.count()).select_from(table).where(table.proposal_id == proposal_id)
            return int(await uow.session.scalar(query) or 0)

    async def outbox(self, template: str, chat_id: int | None = None) -> int:
        async with SqlUnitOfWork(self.world.sessions) as uow:
            assert uow.session is not None
            query = (
                select(func.count()).select_from(OutboxRow).where(OutboxRow.payload["template"].as_string() == template)
            )
            if chat_id is not None:
                query = query.where(OutboxRow.chat_id == chat_id)
            return int(await uow.session.scalar(query) or 0)

    async def held_until(self, template: str, chat_id: int) -> datetime | None:
        async with SqlUnitOfWork(self.world.sessions) as uow:
            assert uow.session is not None
            query = select(OutboxRow.not_before).where(
                OutboxRow.payload["template"].as_string() == template, OutboxRow.chat_id == chat_id
            )
            return await uow.session.scalar(query)

    async def run_jobs(self) -> int:
        return await self.jobs.run_due_jobs(self.clock())

    async def aclose(self) -> None:
        await self.world.aclose()


async def make_pworld(url: str, *, pool_size: int = 20, media: Path | None = None) -> PWorld:
    """``media``: a folder for a photo store fed by a fake downloader (``PWorld.files``)."""
    world = await make_world(url, pool_size=pool_size)
    uow = uow_factory(world.sessions)
    transactions = Transactions(world.sessions, serialise=world.engine.dialect.name == "sqlite")
    files = FakeDownloader()
    photos = PhotoIntake(LocalFileStore(media), world.clock, files) if media is not None else None
    proposals = ProposalService(uow, world.clock, defaults=DEFAULTS, timezone="Asia/Shanghai", photos=photos)
    jobs = JobRunner(uow, world.clock, transactions)
    proposals.register_jobs(jobs)
    return PWorld(world, proposals, jobs, files, photos)
