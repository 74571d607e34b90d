"""telephony: the org's provider settings, calls, and click-to-call requests

`telephony_settings` holds one row per org (`auth_header` and `webhook_secret` sealed); `calls` every call
logged (`POST /v1/calls` or the provider's signed event, its webhook-id unique per org); `call_originations`
the click-to-call requests queued for a worker like email. Row-level security as on every tenant table.

Revision ID: 0034
Revises: 0031
Create Date: 2026-12-04 09:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0034'
down_revision: str | None = '0031'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"
TABLES = ("telephony_settings", "calls", "call_originations")


def upgrade() -> None:
    op.create_table('telephony_settings',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('originate_url', sa.String(length=2000), nullable=True),
    sa.Column('sealed_secrets', sa.Text(), nullable=False),
    sa.Column('assignees', postgresql.ARRAY(sa.UUID()), server_default='{}', nullable=False),
    sa.Column('round_robin', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_telephony_settings_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_telephony_settings'))
    )
    op.create_table('calls',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('from_phone', sa.String(length=40), nullable=False),
    sa.Column('to_phone', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_seconds', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('recording_url', sa.String(length=2000), nullable=True),
    sa.Column('user_id', sa.UUID(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('lead_id', sa.UUID(), nullable=True),
    sa.Column('activity_id', sa.UUID(), nullable=False),
    sa.Column('task_id', sa.UUID(), nullable=True),
    sa.Column('event_id', sa.String(length=255), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f('ck_calls_direction')),
    sa.CheckConstraint("status IN ('answered', 'missed', 'busy', 'failed')", name=op.f('ck_calls_status')),
    sa.ForeignKeyConstraint(['org_id', 'activity_id'], ['activities.org_id', 'activities.id'], name='fk_calls_activity_id'),
    sa.ForeignKeyConstraint(['org_id', 'contact_id'], ['contacts.org_id', 'contacts.id'], name='fk_calls_contact_id'),
    sa.ForeignKeyConstraint(['org_id', 'lead_id'], ['leads.org_id', 'leads.id'], name='fk_calls_lead_id'),
    sa.ForeignKeyConstraint(['org_id', 'task_id'], ['activities.org_id', 'activities.id'], name='fk_calls_task_id'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_calls_user_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_calls_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_calls'))
    )
    op.create_index(op.f('ix_calls_org_id_contact_id_created_at_id'), 'calls', ['org_id', 'contact_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_calls_org_id_created_at_id'), 'calls', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_calls_org_id_lead_id_created_at_id'), 'calls', ['org_id', 'lead_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_calls_org_id_user_id_created_at_id'), 'calls', ['org_id', 'user_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_calls_event_id', 'calls', ['org_id', 'event_id'], unique=True, postgresql_where=sa.text('event_id IS NOT NULL'))
    op.create_table('call_originations',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('to_phone', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('provider_answer', sa.String(length=500), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'sent', 'failed')", name=op.f('ck_call_originations_status')),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_call_originations_user_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_call_originations_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_call_originations'))
    )
    op.create_index(op.f('ix_call_originations_org_id_created_at_id'), 'call_originations', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_call_originations_send_due', 'call_originations', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'queued'"))
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) "
                   f"WITH CHECK (org_id = {CURRENT_ORG})")


def downgrade() -> None:
    op.drop_index('ix_call_originations_send_due', table_name='call_originations', postgresql_where=sa.text("status = 'queued'"))
    op.drop_index(op.f('ix_call_originations_org_id_created_at_id'), table_name='call_originations')
    op.drop_table('call_originations')
    op.drop_index('ix_calls_event_id', table_name='calls', postgresql_where=sa.text('event_id IS NOT NULL'))
    op.drop_index(op.f('ix_calls_org_id_user_id_created_at_id'), table_name='calls')
    op.drop_index(op.f('ix_calls_org_id_lead_id_created_at_id'), table_name='calls')
    op.drop_index(op.f('ix_calls_org_id_created_at_id'), table_name='calls')
    op.drop_index(op.f('ix_calls_org_id_contact_id_created_at_id'), table_name='calls')
    op.drop_table('calls')
    op.drop_table('telephony_settings')
