"""timer failures: a reminder, overdue check or SLA check that raised, retried later with back-off

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-03 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('timer_failures',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('timer', sa.String(length=32), nullable=False),
    sa.Column('item_id', sa.UUID(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_timer_failures_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'timer', 'item_id', name=op.f('pk_timer_failures'))
    )


def downgrade() -> None:
    op.drop_table('timer_failures')
