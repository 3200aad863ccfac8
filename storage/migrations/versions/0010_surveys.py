"""surveys: satisfaction surveys (满意度测评), residents' progress, has-answered marks, anonymous-capable responses,
and reporters' satisfaction with the fix of their report

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "survey",
        sa.Column("id", ID, nullable=False),
        sa.Column("community_id", ID, nullable=False),
        sa.Column("author_id", ID, nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.Column("title", sa.JSON(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("opens_at", WHEN, nullable=False),
        sa.Column("closes_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("invited_at", WHEN, nullable=True),
        sa.Column("reminded_at", WHEN, nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["community_id"], ["community.id"], name=op.f("fk_survey_community_id_community"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["resident.id"], name=op.f("fk_survey_author_id_resident"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey")),
    )
    op.create_index(op.f("ix_survey_community_id"), "survey", ["community_id"], unique=False)
    op.create_index("ix_survey_status_opens_at", "survey", ["status", "opens_at"], unique=False)
    op.create_table(
        "survey_progress",
        sa.Column("survey_id", ID, nullable=False),
        sa.Column("resident_id", ID, nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["survey.id"], name=op.f("fk_survey_progress_survey_id_survey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_survey_progress_resident_id_resident"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("survey_id", "resident_id", name=op.f("pk_survey_progress")),
    )
    op.create_table(
        "survey_participation",
        sa.Column("survey_id", ID, nullable=False),
        sa.Column("resident_id", ID, nullable=False),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["survey.id"], name=op.f("fk_survey_participation_survey_id_survey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["resident.id"],
            name=op.f("fk_survey_participation_resident_id_resident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("survey_id", "resident_id", name=op.f("pk_survey_participation")),
    )
    op.create_table(
        "survey_response",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("survey_id", ID, nullable=False),
        sa.Column("resident_id", ID, nullable=True),
        sa.Column("building_id", ID, nullable=True),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["survey.id"], name=op.f("fk_survey_response_survey_id_survey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_survey_response_resident_id_resident"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["building_id"], ["building.id"], name=op.f("fk_survey_response_building_id_building"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_response")),
    )
    op.create_index(op.f("ix_survey_response_survey_id"), "survey_response", ["survey_id"], unique=False)
    op.create_table(
        "report_satisfaction",
        sa.Column("report_id", ID, nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"], ["report.id"], name=op.f("fk_report_satisfaction_report_id_report"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_report_satisfaction")),
    )


def downgrade() -> None:
    op.drop_table("report_satisfaction")
    op.drop_index(op.f("ix_survey_response_survey_id"), table_name="survey_response")
    op.drop_table("survey_response")
    op.drop_table("survey_participation")
    op.drop_table("survey_progress")
    op.drop_index("ix_survey_status_opens_at", table_name="survey")
    op.drop_index(op.f("ix_survey_community_id"), table_name="survey")
    op.drop_table("survey")
