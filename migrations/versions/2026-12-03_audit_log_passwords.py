"""audit log; password age (users.password_changed_at, orgs.password_max_age_days)

Revision ID: 0015
Revises: 0016
Create Date: 2026-12-03 21:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0015'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('actor_type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.UUID(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.UUID(), nullable=True),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_audit_log_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_org_id_occurred_at_id'), 'audit_log', ['org_id', 'occurred_at', 'id'])
    op.create_index(op.f('ix_audit_log_org_id_object_type_object_id_occurred_at'), 'audit_log',
                    ['org_id', 'object_type', 'object_id', 'occurred_at'])
    op.create_index(op.f('ix_audit_log_org_id_actor_id_occurred_at'), 'audit_log',
                    ['org_id', 'actor_id', 'occurred_at'])
    op.create_index(op.f('ix_audit_log_occurred_at'), 'audit_log', ['occurred_at'])
    op.add_column('users', sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('orgs', sa.Column('password_max_age_days', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('orgs', 'password_max_age_days')
    op.drop_column('users', 'password_changed_at')
    op.drop_index(op.f('ix_audit_log_occurred_at'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_org_id_actor_id_occurred_at'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_org_id_object_type_object_id_occurred_at'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_org_id_occurred_at_id'), table_name='audit_log')
    op.drop_table('audit_log')
