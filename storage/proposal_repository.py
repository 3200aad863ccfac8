"""居民提案制 in SQL. The service takes every decision about a proposal under its row lock (``get(...,
for_update=True)``: ``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one writer); supports and votes are inserts
that the primary key makes once per resident (``ON CONFLICT DO NOTHING``: a repeat inserts nothing and says so);
status changes are conditional updates from the expected status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.campaigns import Recipient
from bot.domain.proposals import (
    Choice,
    Expense,
    Milestone,
    Proposal,
    ProposalStatus,
    Rules,
    Tally,
)
from storage.campaign_models import NoticePreferenceRow
from storage.campaign_repository import _quiet
from storage.models import ResidentRow
from storage.proposal_models import (
    ProposalExpenseRow,
    ProposalMilestoneRow,
    ProposalRow,
    ProposalSettingRow,
    ProposalSupportRow,
    ProposalVoteRow,
)


class SqlProposalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self._s.get_bind().dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # ---- proposals ------------------------------------------------------------------------------------------

    async def add(self, proposal: Proposal) -> Proposal:
        row = ProposalRow(
            community_id=proposal.community_id, author_id=proposal.author_id, title=proposal.title,
            description=proposal.description, photo=proposal.photo, cost_fen=proposal.cost_fen, track=proposal.track,
            status=proposal.status.value, threshold=proposal.threshold, supports=0, created_at=proposal.created_at,
            votes_for=0, votes_against=0, votes_abstain=0,
        )  # fmt: skip
        self._s.add(row)
        await self._s.flush()
        return _proposal(row)

    async def get(self, proposal_id: int, *, for_update: bool = False) -> Proposal | None:
        # Fresh from the database: a conditional update earlier in the transaction bypassed the session's copy.
        query = select(ProposalRow).where(ProposalRow.id == proposal_id).execution_options(populate_existing=True)
        if for_update:
            query = query.with_for_update()
        row = await self._s.scalar(query)
        return _proposal(row) if row else None

    async def move(self, proposal_id: int, current: ProposalStatus, target: ProposalStatus, **fields: Any) -> bool:
        """Change the status only from ``current`` (False: someone else moved it first)."""
        values = _columns(fields) | {"status": target.value}
        result = await self._s.execute(
            update(ProposalRow)
            .where(ProposalRow.id == proposal_id, ProposalRow.status == current.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def update(self, proposal_id: int, **fields: Any) -> None:
        await self._s.execute(
            update(ProposalRow)
            .where(ProposalRow.id == proposal_id)
            .values(**_columns(fields))
            .execution_options(synchronize_session=False)
        )

    async def in_community(
        self, community_id: int, statuses: Sequence[ProposalStatus], limit: int = 50
    ) -> list[Proposal]:
        rows = await self._s.scalars(
            select(ProposalRow)
            .where(ProposalRow.community_id == community_id, ProposalRow.status.in_([s.value for s in statuses]))
            .order_by(ProposalRow.id.desc())
            .limit(limit)
        )
        return [_proposal(r) for r in rows.all()]

    async def by_author(self, resident_id: int, limit: int = 20) -> list[Proposal]:
        rows = await self._s.scalars(
            select(ProposalRow).where(ProposalRow.author_id == resident_id).order_by(ProposalRow.id.desc()).limit(limit)
        )
        return [_proposal(r) for r in rows.all()]

    async def counts_of(self, resident_id: int) -> tuple[int, int, int]:
        counts = [
            select(func.count()).select_from(table).where(column == resident_id).scalar_subquery()
            for table, column in (
                (ProposalRow, ProposalRow.author_id),
                (ProposalSupportRow, ProposalSupportRow.resident_id),
                (ProposalVoteRow, ProposalVoteRow.resident_id),
            )
        ]
        written, supported, voted = (await self._s.execute(select(*counts))).one()
        return int(written), int(supported), int(voted)

    # ---- supports and votes ---------------------------------------------------------------------------------

    async def add_support(self, proposal_id: int, resident_id: int, at: datetime) -> bool:
        """Record the support; False when this resident supported it already."""
        stmt = (
            self._insert(ProposalSupportRow)
            .values(proposal_id=proposal_id, resident_id=resident_id, at=at)
            .on_conflict_do_nothing(index_elements=["proposal_id", "resident_id"])
        )
        result = await self._s.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def count_supports(self, proposal_id: int) -> int:
        """Count the supports and keep the count on the proposal (call under its row lock)."""
        query = select(func.count()).select_from(ProposalSupportRow)
        count = int(await self._s.scalar(query.where(ProposalSupportRow.proposal_id == proposal_id)) or 0)
        await self.update(proposal_id, supports=count)
        return count

    async def supported(self, proposal_id: int, resident_id: int) -> bool:
        found = await self._s.get(ProposalSupportRow, (proposal_id, resident_id))
        return found is not None

    async def add_vote(self, proposal_id: int, resident_id: int, choice: Choice, at: datetime) -> bool:
        """Record the vote; False when this resident voted already (the first vote stands)."""
        stmt = (
            self._insert(ProposalVoteRow)
            .values(proposal_id=proposal_id, resident_id=resident_id, choice=choice.value, at=at)
            .on_conflict_do_nothing(index_elements=["proposal_id", "resident_id"])
        )
        result = await self._s.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def vote_of(self, proposal_id: int, resident_id: int) -> Choice | None:
        row = await self._s.get(ProposalVoteRow, (proposal_id, resident_id))
        return Choice(row.choice) if row else None

    async def tally(self, proposal_id: int) -> Tally:
        rows = await self._s.execute(
            select(ProposalVoteRow.choice, func.count())
            .where(ProposalVoteRow.proposal_id == proposal_id)
            .group_by(ProposalVoteRow.choice)
        )
        counts = {Choice(choice): int(n) for choice, n in rows.all()}
        return Tally(counts.get(Choice.FOR, 0), counts.get(Choice.AGAINST, 0), counts.get(Choice.ABSTAIN, 0))

    async def audience(self, proposal_id: int) -> list[Recipient]:
        """Who hears of a proposal's steps: its author and its supporters (once each), with their language and
        quiet hours, if they still use the bot."""
        proposal = await self._s.get(ProposalRow, proposal_id)
        if proposal is None:
            return []
        supporters = select(ProposalSupportRow.resident_id).where(ProposalSupportRow.proposal_id == proposal_id)
        pref = NoticePreferenceRow
        query = (
            select(ResidentRow.telegram_id, ResidentRow.locale, pref.resident_id, pref.quiet_from, pref.quiet_to)
            .outerjoin(pref, pref.resident_id == ResidentRow.id)
            .where(
                (ResidentRow.id.in_(supporters)) | (ResidentRow.id == proposal.author_id),
                ResidentRow.telegram_id.is_not(None),
                ResidentRow.deleted_at.is_(None),
            )
            .order_by(ResidentRow.id)
        )
        rows = (await self._s.execute(query)).all()
        return [Recipient(int(r[0] or 0), r[1], _quiet(r[2] is not None, r[3], r[4])) for r in rows]

    # ---- accountability -------------------------------------------------------------------------------------

    async def add_milestone(self, milestone: Milestone, by: int | None) -> Milestone:
        row = ProposalMilestoneRow(
            proposal_id=milestone.proposal_id, note=milestone.note, photo=milestone.photo, at=milestone.at, by=by
        )
        self._s.add(row)
        await self._s.flush()
        return Milestone(row.id, row.proposal_id, row.note, row.at, row.photo)

    async def milestones(self, proposal_id: int) -> list[Milestone]:
        rows = await self._s.scalars(
            select(ProposalMilestoneRow)
            .where(ProposalMilestoneRow.proposal_id == proposal_id)
            .order_by(ProposalMilestoneRow.at, ProposalMilestoneRow.id)
        )
        return [Milestone(r.id, r.proposal_id, r.note, r.at, r.photo) for r in rows.all()]

    async def add_expense(self, expense: Expense, by: int | None) -> Expense:
        row = ProposalExpenseRow(
            proposal_id=expense.proposal_id, amount_fen=expense.amount_fen, purpose=expense.purpose, at=expense.at,
            by=by,
        )  # fmt: skip
        self._s.add(row)
        await self._s.flush()
        return _expense(row)

    async def expenses(self, proposal_id: int) -> list[Expense]:
        rows = await self._s.scalars(
            select(ProposalExpenseRow)
            .where(ProposalExpenseRow.proposal_id == proposal_id)
            .order_by(ProposalExpenseRow.at, ProposalExpenseRow.id)
        )
        return [_expense(r) for r in rows.all()]

    async def photo_keys(self) -> set[str]:
        """File keys proposals and their milestones refer to (the photo sweep keeps them)."""
        keys = set(await self._s.scalars(select(ProposalRow.photo).where(ProposalRow.photo.is_not(None))))
        milestones = select(ProposalMilestoneRow.photo).where(ProposalMilestoneRow.photo.is_not(None))
        keys.update(await self._s.scalars(milestones))
        return {k for k in keys if k}

    # ---- community rules ------------------------------------------------------------------------------------

    async def rules(self, community_id: int) -> Rules | None:
        row = await self._s.get(ProposalSettingRow, community_id)
        return Rules(row.threshold, row.collect_days, row.vote_days) if row else None

    async def save_rules(self, community_id: int, rules: Rules, now: datetime, by: int | None) -> None:
        row = await self._s.get(ProposalSettingRow, community_id)
        if row is None:
            row = ProposalSettingRow(community_id=community_id)
            self._s.add(row)
        row.threshold, row.collect_days, row.vote_days = rules.threshold, rules.collect_days, rules.vote_days
        row.updated_at, row.updated_by = now, by
        await self._s.flush()


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "tally":
            assert isinstance(value, Tally)
            values |= {"votes_for": value.for_, "votes_against": value.against, "votes_abstain": value.abstain}
        elif isinstance(value, ProposalStatus):
            values[name] = value.value
        else:
            values[name] = value
    return values


def _proposal(row: ProposalRow) -> Proposal:
    return Proposal(
        id=row.id, community_id=row.community_id, author_id=row.author_id, title=row.title,
        description=row.description, cost_fen=row.cost_fen, track=row.track, status=ProposalStatus(row.status),
        created_at=row.created_at, photo=row.photo, threshold=row.threshold, supports=row.supports,
        reason=row.reason, reviewed_at=row.reviewed_at, collect_ends_at=row.collect_ends_at,
        vote_starts_at=row.vote_starts_at, vote_ends_at=row.vote_ends_at, closed_at=row.closed_at,
        decided_at=row.decided_at, tally=Tally(row.votes_for, row.votes_against, row.votes_abstain),
        budget_fen=row.budget_fen,
    )  # fmt: skip


def _expense(row: ProposalExpenseRow) -> Expense:
    return Expense(row.id, row.proposal_id, row.amount_fen, row.purpose, row.at)
