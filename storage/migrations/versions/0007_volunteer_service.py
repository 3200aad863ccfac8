"""volunteer service

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 16:29:10.247458
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "volunteer_activity",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("track", sa.String(length=16), nullable=True),
        sa.Column("title", sa.String(length=60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("place", sa.String(length=120), nullable=False),
        sa.Column("contact", sa.String(length=60), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_volunteer_activity_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_activity")),
    )
    with op.batch_alter_table("volunteer_activity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volunteer_activity_community_id"), ["community_id"], unique=False)

    op.create_table(
        "volunteer_setting",
        sa.Column(
            "community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("approval_required", sa.Boolean(), nullable=False),
        sa.Column("stars", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_volunteer_setting_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_volunteer_setting")),
    )
    op.create_table(
        "volunteer_shift",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("activity_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("points_per_hour", sa.SmallInteger(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("cutoff_hours", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("code_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("capacity > 0", name=op.f("ck_volunteer_shift_capacity_positive")),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_volunteer_shift_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["volunteer_activity.id"],
            name=op.f("fk_volunteer_shift_activity_id_volunteer_activity"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_shift")),
    )
    with op.batch_alter_table("volunteer_shift", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volunteer_shift_activity_id"), ["activity_id"], unique=False)
        batch_op.create_index("ix_volunteer_shift_starts_at", ["starts_at"], unique=False)

    op.create_table(
        "volunteer_booking",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("shift_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offered_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hours", sa.String(length=12), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("correction", sa.String(length=200), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.BigInteger(), nullable=True),
        sa.Column("code_failures", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_volunteer_booking_resident_id_resident"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"],
            ["volunteer_shift.id"],
            name=op.f("fk_volunteer_booking_shift_id_volunteer_shift"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_booking")),
    )
    with op.batch_alter_table("volunteer_booking", schema=None) as batch_op:
        batch_op.create_index("ix_volunteer_booking_resident", ["resident_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_volunteer_booking_shift_id"), ["shift_id"], unique=False)
        batch_op.create_index(
            "uq_volunteer_booking_active",
            ["shift_id", "resident_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('booked', 'waiting', 'offered')"),
            sqlite_where=sa.text("status IN ('booked', 'waiting', 'offered')"),
        )

    op.create_table(
        "volunteer_certificate",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("resident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("period_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("contact", sa.String(length=60), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_volunteer_certificate_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["resident.id"],
            name=op.f("fk_volunteer_certificate_resident_id_resident"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_certificate")),
        sa.UniqueConstraint("number", name="uq_volunteer_certificate_number"),
    )
    with op.batch_alter_table("volunteer_certificate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volunteer_certificate_resident_id"), ["resident_id"], unique=False)

    op.create_table(
        "volunteer_profile",
        sa.Column(
            "resident_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("skills", sa.String(length=200), nullable=False),
        sa.Column("availability", sa.String(length=200), nullable=False),
        sa.Column("stars_announced", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_volunteer_profile_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_volunteer_profile_resident_id_resident"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("resident_id", name=op.f("pk_volunteer_profile")),
    )
    with op.batch_alter_table("volunteer_profile", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_volunteer_profile_community_id"), ["community_id"], unique=False)




def downgrade() -> None:

    with op.batch_alter_table("volunteer_profile", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volunteer_profile_community_id"))

    op.drop_table("volunteer_profile")
    with op.batch_alter_table("volunteer_certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volunteer_certificate_resident_id"))

    op.drop_table("volunteer_certificate")
    with op.batch_alter_table("volunteer_booking", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_volunteer_booking_active",
            postgresql_where=sa.text("status IN ('booked', 'waiting', 'offered')"),
            sqlite_where=sa.text("status IN ('booked', 'waiting', 'offered')"),
        )
        batch_op.drop_index(batch_op.f("ix_volunteer_booking_shift_id"))
        batch_op.drop_index("ix_volunteer_booking_resident")

    op.drop_table("volunteer_booking")
    with op.batch_alter_table("volunteer_shift", schema=None) as batch_op:
        batch_op.drop_index("ix_volunteer_shift_starts_at")
        batch_op.drop_index(batch_op.f("ix_volunteer_shift_activity_id"))

    op.drop_table("volunteer_shift")
    op.drop_table("volunteer_setting")
    with op.batch_alter_table("volunteer_activity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_volunteer_activity_community_id"))

    op.drop_table("volunteer_activity")

