"""dashboard: one-time login links and browser sessions of the organisers' web dashboard

Only SHA-256 hashes of the link tokens and session keys are stored; a person's rows go with the person.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "dashboard_link",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("resident_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_dashboard_link_resident_id_resident"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_dashboard_link_token_hash")),
    )
    op.create_index(op.f("ix_dashboard_link_resident_id"), "dashboard_link", ["resident_id"], unique=False)
    op.create_table(
        "dashboard_session",
        sa.Column("id", ID, nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("resident_id", ID, nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["resident.id"],
            name=op.f("fk_dashboard_session_resident_id_resident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_session")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_dashboard_session_key_hash")),
    )
    op.create_index(op.f("ix_dashboard_session_resident_id"), "dashboard_session", ["resident_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dashboard_session_resident_id"), table_name="dashboard_session")
    op.drop_table("dashboard_session")
    op.drop_index(op.f("ix_dashboard_link_resident_id"), table_name="dashboard_link")
    op.drop_table("dashboard_link")
