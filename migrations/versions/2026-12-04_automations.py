"""automations: rules and their runs (one per rule and triggering event)

Row-level security as on every tenant table.

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-04 08:19:29.157802+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0030'
down_revision: str | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table('automations',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('trigger', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('conditions', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('actions', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('round_robin', sa.Integer(), server_default='0', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_automations_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_automations'))
    )
    op.create_index('ix_automations_enabled', 'automations', ['org_id', 'enabled'], unique=False)
    op.create_index(op.f('ix_automations_org_id_created_at_id'), 'automations', ['org_id', 'created_at', 'id'], unique=False)
    op.create_table('automation_runs',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('automation_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('actions', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('next_action', sa.Integer(), server_default='0', nullable=False),
    sa.Column('resume_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'succeeded', 'failed', 'skipped')", name=op.f('ck_automation_runs_status')),
    sa.ForeignKeyConstraint(['org_id', 'automation_id'], ['automations.org_id', 'automations.id'], name='fk_automation_runs_automation_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_automation_runs_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_automation_runs'))
    )
    op.create_index(op.f('ix_automation_runs_org_id_automation_id_created_at_id'), 'automation_runs', ['org_id', 'automation_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_automation_runs_queued', 'automation_runs', ['created_at'], unique=False, postgresql_where=sa.text("status = 'queued'"))
    op.create_index('uq_automation_runs_event', 'automation_runs', ['org_id', 'automation_id', 'event_id'], unique=True)

    for table in ("automations", "automation_runs"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) "
                   f"WITH CHECK (org_id = {CURRENT_ORG})")

def downgrade() -> None:
    op.drop_index('uq_automation_runs_event', table_name='automation_runs')
    op.drop_index('ix_automation_runs_queued', table_name='automation_runs', postgresql_where=sa.text("status = 'queued'"))
    op.drop_index(op.f('ix_automation_runs_org_id_automation_id_created_at_id'), table_name='automation_runs')
    op.drop_table('automation_runs')
    op.drop_index(op.f('ix_automations_org_id_created_at_id'), table_name='automations')
    op.drop_index('ix_automations_enabled', table_name='automations')
    op.drop_table('automations')
