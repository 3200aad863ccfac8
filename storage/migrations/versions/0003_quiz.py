"""quiz: private rounds, answers, reviews (spaced repetition), group quizzes, polls and poll answers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('quiz_round',
    sa.Column('id', _ID, nullable=False),
    sa.Column('resident_id', _ID, nullable=False),
    sa.Column('track', sa.String(length=16), nullable=False),
    sa.Column('question_ids', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('selected', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], name=op.f('fk_quiz_round_resident_id_resident')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quiz_round'))
    )
    with op.batch_alter_table('quiz_round', schema=None) as batch_op:
        batch_op.create_index('ix_quiz_round_resident_status', ['resident_id', 'status'], unique=False)

    op.create_table('quiz_answer',
    sa.Column('id', _ID, nullable=False),
    sa.Column('round_id', _ID, nullable=False),
    sa.Column('resident_id', _ID, nullable=False),
    sa.Column('question_id', sa.String(length=16), nullable=False),
    sa.Column('track', sa.String(length=16), nullable=False),
    sa.Column('chosen', sa.JSON(), nullable=False),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], name=op.f('fk_quiz_answer_resident_id_resident')),
    sa.ForeignKeyConstraint(['round_id'], ['quiz_round.id'], name=op.f('fk_quiz_answer_round_id_quiz_round'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quiz_answer')),
    sa.UniqueConstraint('round_id', 'question_id', name='uq_quiz_answer_round_question')
    )
    with op.batch_alter_table('quiz_answer', schema=None) as batch_op:
        batch_op.create_index('ix_quiz_answer_resident_at', ['resident_id', 'answered_at'], unique=False)

    op.create_table('quiz_review',
    sa.Column('resident_id', _ID, autoincrement=False, nullable=False),
    sa.Column('question_id', sa.String(length=16), nullable=False),
    sa.Column('track', sa.String(length=16), nullable=False),
    sa.Column('times', sa.Integer(), nullable=False),
    sa.Column('last_correct', sa.Boolean(), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], name=op.f('fk_quiz_review_resident_id_resident'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('resident_id', 'question_id', name=op.f('pk_quiz_review'))
    )
    with op.batch_alter_table('quiz_review', schema=None) as batch_op:
        batch_op.create_index('ix_quiz_review_resident_track', ['resident_id', 'track'], unique=False)

    op.create_table('group_quiz',
    sa.Column('id', _ID, nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('community_id', _ID, nullable=False),
    sa.Column('organiser_telegram_id', sa.BigInteger(), nullable=True),
    sa.Column('track', sa.String(length=16), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('question_ids', sa.JSON(), nullable=False),
    sa.Column('open_period', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['community_id'], ['community.id'], name=op.f('fk_group_quiz_community_id_community')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_quiz'))
    )
    with op.batch_alter_table('group_quiz', schema=None) as batch_op:
        batch_op.create_index('ix_group_quiz_chat_status', ['chat_id', 'status'], unique=False)
        batch_op.create_index('ix_group_quiz_status_closes_at', ['status', 'closes_at'], unique=False)

    op.create_table('group_quiz_poll',
    sa.Column('poll_id', sa.String(length=64), nullable=False),
    sa.Column('quiz_id', _ID, nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.String(length=16), nullable=False),
    sa.Column('correct_option', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['quiz_id'], ['group_quiz.id'], name=op.f('fk_group_quiz_poll_quiz_id_group_quiz'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('poll_id', name=op.f('pk_group_quiz_poll')),
    sa.UniqueConstraint('quiz_id', 'position', name='uq_group_quiz_poll_quiz_position')
    )

    op.create_table('group_quiz_answer',
    sa.Column('id', _ID, nullable=False),
    sa.Column('poll_id', sa.String(length=64), nullable=False),
    sa.Column('quiz_id', _ID, nullable=False),
    sa.Column('question_id', sa.String(length=16), nullable=False),
    sa.Column('telegram_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=8), nullable=False),
    sa.Column('correct', sa.Boolean(), nullable=False),
    sa.Column('resident_id', _ID, nullable=True),
    sa.Column('points', sa.Integer(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['poll_id'], ['group_quiz_poll.poll_id'], name=op.f('fk_group_quiz_answer_poll_id_group_quiz_poll'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['quiz_id'], ['group_quiz.id'], name=op.f('fk_group_quiz_answer_quiz_id_group_quiz'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resident_id'], ['resident.id'], name=op.f('fk_group_quiz_answer_resident_id_resident')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_quiz_answer')),
    sa.UniqueConstraint('poll_id', 'telegram_id', name='uq_group_quiz_answer_poll_telegram')
    )
    with op.batch_alter_table('group_quiz_answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_quiz_answer_answered_at'), ['answered_at'], unique=False)
        batch_op.create_index('ix_group_quiz_answer_quiz_id', ['quiz_id'], unique=False)
        batch_op.create_index('ix_group_quiz_answer_telegram_pending', ['telegram_id', 'points'], unique=False)


def downgrade() -> None:
    op.drop_table('group_quiz_answer')
    op.drop_table('group_quiz_poll')
    op.drop_table('group_quiz')
    op.drop_table('quiz_review')
    op.drop_table('quiz_answer')
    op.drop_table('quiz_round')
