"""lead forms

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 13:14:33.449251+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('forms',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('creates', sa.String(length=8), server_default='lead', nullable=False),
    sa.Column('pipeline_id', sa.UUID(), nullable=True),
    sa.Column('redirect_url', sa.String(length=2048), nullable=True),
    sa.Column('allowed_origins', postgresql.ARRAY(sa.String(length=300)), server_default='{}', nullable=False),
    sa.Column('assignees', postgresql.ARRAY(sa.UUID()), server_default='{}', nullable=False),
    sa.Column('sla_minutes', sa.Integer(), server_default='15', nullable=False),
    sa.Column('escalate_to', sa.UUID(), nullable=True),
    sa.Column('field_map', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('min_fill_seconds', sa.Integer(), nullable=True),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('round_robin', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_by', sa.UUID(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("creates IN ('lead', 'deal')", name=op.f('ck_forms_creates')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_forms_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_forms'))
    )
    op.create_index(op.f('ix_forms_org_id_created_at_id'), 'forms', ['org_id', 'created_at', 'id'], unique=False)
    op.create_table('form_keys',
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('form_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'form_id'], ['forms.org_id', 'forms.id'], name='fk_form_keys_form_id', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('public_key', name=op.f('pk_form_keys'))
    )
    op.create_table('form_submissions',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('form_id', sa.UUID(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fields', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('utm', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('gclid', sa.String(length=300), nullable=True),
    sa.Column('fbclid', sa.String(length=300), nullable=True),
    sa.Column('page_url', sa.String(length=2048), nullable=True),
    sa.Column('referrer', sa.String(length=2048), nullable=True),
    sa.Column('user_agent', sa.String(length=500), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('lead_id', sa.UUID(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('deal_id', sa.UUID(), nullable=True),
    sa.Column('matched', sa.String(length=8), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.CheckConstraint("matched IN ('none', 'contact', 'lead')", name=op.f('ck_form_submissions_matched')),
    sa.ForeignKeyConstraint(['org_id', 'form_id'], ['forms.org_id', 'forms.id'], name='fk_form_submissions_form_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_form_submissions_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_form_submissions')),
    sa.UniqueConstraint('org_id', 'form_id', 'idempotency_key', name=op.f('uq_form_submissions_org_id_form_id_idempotency_key'))
    )
    op.create_index(op.f('ix_form_submissions_org_id_contact_id_received_at_id'), 'form_submissions', ['org_id', 'contact_id', 'received_at', 'id'], unique=False)
    op.create_index(op.f('ix_form_submissions_org_id_deal_id_received_at_id'), 'form_submissions', ['org_id', 'deal_id', 'received_at', 'id'], unique=False)
    op.create_index(op.f('ix_form_submissions_org_id_form_id_received_at_id'), 'form_submissions', ['org_id', 'form_id', 'received_at', 'id'], unique=False)
    op.create_index(op.f('ix_form_submissions_org_id_lead_id_received_at_id'), 'form_submissions', ['org_id', 'lead_id', 'received_at', 'id'], unique=False)
    op.create_table('sla_timers',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('form_id', sa.UUID(), nullable=False),
    sa.Column('submission_id', sa.UUID(), nullable=False),
    sa.Column('activity_id', sa.UUID(), nullable=False),
    sa.Column('lead_id', sa.UUID(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('deal_id', sa.UUID(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('breached', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['org_id', 'activity_id'], ['activities.org_id', 'activities.id'], name='fk_sla_timers_activity_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_sla_timers_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_sla_timers'))
    )
    op.create_index('ix_sla_timers_pending', 'sla_timers', ['due_at'], unique=False, postgresql_where=sa.text('fired_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_sla_timers_pending', table_name='sla_timers', postgresql_where=sa.text('fired_at IS NULL'))
    op.drop_table('sla_timers')
    op.drop_index(op.f('ix_form_submissions_org_id_lead_id_received_at_id'), table_name='form_submissions')
    op.drop_index(op.f('ix_form_submissions_org_id_form_id_received_at_id'), table_name='form_submissions')
    op.drop_index(op.f('ix_form_submissions_org_id_deal_id_received_at_id'), table_name='form_submissions')
    op.drop_index(op.f('ix_form_submissions_org_id_contact_id_received_at_id'), table_name='form_submissions')
    op.drop_table('form_submissions')
    op.drop_table('form_keys')
    op.drop_index(op.f('ix_forms_org_id_created_at_id'), table_name='forms')
    op.drop_table('forms')
