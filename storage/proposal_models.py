"""居民提案制: proposals, their supporters and votes (one each per resident, by primary key), the accountability
record of accepted ones (milestones, money) and each community's rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK


class ProposalRow(Base):
    __tablename__ = "proposal"
    __table_args__ = (
        Index("ix_proposal_community_id_status", "community_id", "status"),
        CheckConstraint("cost_fen >= 0", name="cost_not_negative"),
        CheckConstraint("supports >= 0", name="supports_not_negative"),
    )
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(60))
    description: Mapped[str] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(200))
    cost_fen: Mapped[int] = mapped_column(BigInteger)
    track: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[int] = mapped_column(Integer, default=0)
    supports: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[int | None] = mapped_column(BigInteger)  # telegram id of the organiser
    collect_ends_at: Mapped[datetime | None]
    vote_starts_at: Mapped[datetime | None]
    vote_ends_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    votes_for: Mapped[int] = mapped_column(Integer, default=0)
    votes_against: Mapped[int] = mapped_column(Integer, default=0)
    votes_abstain: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    budget_fen: Mapped[int | None] = mapped_column(BigInteger)


class ProposalSupportRow(Base):
    """One resident's support of one proposal (the primary key makes it once)."""

    __tablename__ = "proposal_support"
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    at: Mapped[datetime]


class ProposalVoteRow(Base):
    """One resident's vote on one proposal (the primary key makes it once)."""

    __tablename__ = "proposal_vote"
    __table_args__ = (CheckConstraint("choice IN ('for', 'against', 'abstain')", name="choice_known"),)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    choice: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime]


class ProposalMilestoneRow(Base):
    __tablename__ = "proposal_milestone"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    note: Mapped[str] = mapped_column(String(300))
    photo: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]
    by: Mapped[int | None] = mapped_column(BigInteger)  # telegram id of the organiser


class ProposalExpenseRow(Base):
    __tablename__ = "proposal_expense"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="amount_positive"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("proposal.id", ondelete="CASCADE"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]
    by: Mapped[int | None] = mapped_column(BigInteger)


class ProposalSettingRow(Base):
    """A community's proposal rules; no row: the defaults in content (``proposals/rules.yaml``)."""

    __tablename__ = "proposal_setting"
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    threshold: Mapped[int] = mapped_column(Integer)
    collect_days: Mapped[int] = mapped_column(Integer)
    vote_days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
