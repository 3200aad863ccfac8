"""proposals: 居民提案制 — proposals, one support and one vote per resident, milestones, money, community rules

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "proposal",
        sa.Column("id", ID, nullable=False),
        sa.Column("community_id", ID, nullable=False),
        sa.Column("author_id", ID, nullable=True),
        sa.Column("title", sa.String(length=60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("photo", sa.String(length=200), nullable=True),
        sa.Column("cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("track", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("supports", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("reviewed_at", WHEN, nullable=True),
        sa.Column("reviewed_by", sa.BigInteger(), nullable=True),
        sa.Column("collect_ends_at", WHEN, nullable=True),
        sa.Column("vote_starts_at", WHEN, nullable=True),
        sa.Column("vote_ends_at", WHEN, nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("votes_for", sa.Integer(), nullable=False),
        sa.Column("votes_against", sa.Integer(), nullable=False),
        sa.Column("votes_abstain", sa.Integer(), nullable=False),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("budget_fen", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("cost_fen >= 0", name=op.f("ck_proposal_cost_not_negative")),
        sa.CheckConstraint("supports >= 0", name=op.f("ck_proposal_supports_not_negative")),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_proposal_community_id_community"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["resident.id"], name=op.f("fk_proposal_author_id_resident"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal")),
    )
    op.create_index("ix_proposal_community_id_status", "proposal", ["community_id", "status"], unique=False)
    op.create_index(op.f("ix_proposal_author_id"), "proposal", ["author_id"], unique=False)
    for table, extra in (
        ("proposal_support", []),
        ("proposal_vote", [sa.Column("choice", sa.String(length=8), nullable=False)]),
    ):
        checks = (
            [sa.CheckConstraint("choice IN ('for', 'against', 'abstain')", name=op.f(f"ck_{table}_choice_known"))]
            if extra
            else []
        )
        op.create_table(
            table,
            sa.Column("proposal_id", ID, nullable=False),
            sa.Column("resident_id", ID, nullable=False),
            *extra,
            sa.Column("at", WHEN, nullable=False),
            *checks,
            sa.ForeignKeyConstraint(
                ["proposal_id"], ["proposal.id"], name=op.f(f"fk_{table}_proposal_id_proposal"), ondelete="CASCADE"
            ),
            sa.ForeignKeyConstraint(
                ["resident_id"], ["resident.id"], name=op.f(f"fk_{table}_resident_id_resident"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("proposal_id", "resident_id", name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_resident_id"), table, ["resident_id"], unique=False)
    op.create_table(
        "proposal_milestone",
        sa.Column("id", ID, nullable=False),
        sa.Column("proposal_id", ID, nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("photo", sa.String(length=200), nullable=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposal.id"],
            name=op.f("fk_proposal_milestone_proposal_id_proposal"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal_milestone")),
    )
    op.create_index(op.f("ix_proposal_milestone_proposal_id"), "proposal_milestone", ["proposal_id"], unique=False)
    op.create_table(
        "proposal_expense",
        sa.Column("id", ID, nullable=False),
        sa.Column("proposal_id", ID, nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=100), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("by", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_proposal_expense_amount_positive")),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposal.id"], name=op.f("fk_proposal_expense_proposal_id_proposal"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal_expense")),
    )
    op.create_index(op.f("ix_proposal_expense_proposal_id"), "proposal_expense", ["proposal_id"], unique=False)
    op.create_table(
        "proposal_setting",
        sa.Column("community_id", ID, nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("collect_days", sa.Integer(), nullable=False),
        sa.Column("vote_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_proposal_setting_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_proposal_setting")),
    )


def downgrade() -> None:
    op.drop_table("proposal_setting")
    op.drop_index(op.f("ix_proposal_expense_proposal_id"), table_name="proposal_expense")
    op.drop_table("proposal_expense")
    op.drop_index(op.f("ix_proposal_milestone_proposal_id"), table_name="proposal_milestone")
    op.drop_table("proposal_milestone")
    for table in ("proposal_vote", "proposal_support"):
        op.drop_index(op.f(f"ix_{table}_resident_id"), table_name=table)
        op.drop_table(table)
    op.drop_index(op.f("ix_proposal_author_id"), table_name="proposal")
    op.drop_index("ix_proposal_community_id_status", table_name="proposal")
    op.drop_table("proposal")
