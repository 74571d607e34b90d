"""sales core

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:45:36.610380+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.domain.events.models import Xid8

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('custom_fields',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('object', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('options', postgresql.ARRAY(sa.String(length=200)), server_default='{}', nullable=False),
    sa.Column('required', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("object IN ('contact', 'company', 'lead', 'deal', 'activity')", name=op.f('ck_custom_fields_object')),
    sa.CheckConstraint("type IN ('text', 'number', 'date', 'boolean', 'select', 'multiselect', 'url', 'email', 'phone')", name=op.f('ck_custom_fields_type')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_custom_fields_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_custom_fields')),
    sa.UniqueConstraint('org_id', 'object', 'key', name=op.f('uq_custom_fields_org_id_object_key'))
    )
    op.create_table('events',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('txid', Xid8(), server_default=sa.text('pg_current_xact_id()'), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.UUID(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('actor', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_events_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_events'))
    )
    op.create_index(op.f('ix_events_occurred_at'), 'events', ['occurred_at'], unique=False)
    op.create_index(op.f('ix_events_org_id_object_type_object_id_occurred_at'), 'events', ['org_id', 'object_type', 'object_id', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_events_org_id_txid_id'), 'events', ['org_id', 'txid', 'id'], unique=False)
    op.create_table('pipelines',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('is_default', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_pipelines_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_pipelines'))
    )
    op.create_index(op.f('ix_pipelines_org_id_created_at_id'), 'pipelines', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index('uq_pipelines_default', 'pipelines', ['org_id'], unique=True, postgresql_where=sa.text('is_default AND deleted_at IS NULL'))
    op.create_table('companies',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('industry', sa.String(length=100), nullable=True),
    sa.Column('size', sa.String(length=16), nullable=True),
    sa.Column('address', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('external_ids', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('search', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(domain, '') || ' ' || coalesce(phone, ''))", persisted=True), nullable=False),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('custom_fields', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("size IN ('1-10', '11-50', '51-200', '201-500', '501-1000', '1001-5000', '5001+')", name=op.f('ck_companies_size')),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_companies_owner'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_companies_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_companies'))
    )
    op.create_index('ix_companies_custom_fields', 'companies', ['custom_fields'], unique=False, postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.create_index('ix_companies_external_ids', 'companies', ['external_ids'], unique=False, postgresql_using='gin', postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.create_index(op.f('ix_companies_org_id_created_at_id'), 'companies', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_companies_org_id_domain'), 'companies', ['org_id', 'domain'], unique=False)
    op.create_index(op.f('ix_companies_org_id_name_id'), 'companies', ['org_id', 'name', 'id'], unique=False)
    op.create_index(op.f('ix_companies_org_id_owner_id_created_at_id'), 'companies', ['org_id', 'owner_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_companies_org_id_phone'), 'companies', ['org_id', 'phone'], unique=False)
    op.create_index(op.f('ix_companies_org_id_updated_at_id'), 'companies', ['org_id', 'updated_at', 'id'], unique=False)
    op.create_index('ix_companies_search', 'companies', ['search'], unique=False, postgresql_using='gin')
    op.create_table('pipeline_stages',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('pipeline_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('probability', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('rotting_days', sa.Integer(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('open', 'won', 'lost')", name=op.f('ck_pipeline_stages_kind')),
    sa.CheckConstraint('probability BETWEEN 0 AND 100', name=op.f('ck_pipeline_stages_probability')),
    sa.ForeignKeyConstraint(['org_id', 'pipeline_id'], ['pipelines.org_id', 'pipelines.id'], name='fk_pipeline_stages_pipeline_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_pipeline_stages_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_pipeline_stages'))
    )
    op.create_index(op.f('ix_pipeline_stages_org_id_pipeline_id_position'), 'pipeline_stages', ['org_id', 'pipeline_id', 'position'], unique=False)
    op.create_table('contacts',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('company_id', sa.UUID(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('tags', postgresql.ARRAY(sa.String(length=64)), server_default='{}', nullable=False),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('utm', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('birthday', sa.Date(), nullable=True),
    sa.Column('address', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('external_ids', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('search', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple', coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))", persisted=True), nullable=False),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('custom_fields', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'company_id'], ['companies.org_id', 'companies.id'], name='fk_contacts_company_id', ondelete='SET NULL (company_id)'),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_contacts_owner'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_contacts_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_contacts'))
    )
    op.create_index('ix_contacts_custom_fields', 'contacts', ['custom_fields'], unique=False, postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.create_index('ix_contacts_external_ids', 'contacts', ['external_ids'], unique=False, postgresql_using='gin', postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.create_index(op.f('ix_contacts_org_id_company_id_created_at_id'), 'contacts', ['org_id', 'company_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_created_at_id'), 'contacts', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_email'), 'contacts', ['org_id', 'email'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_last_name_id'), 'contacts', ['org_id', 'last_name', 'id'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_owner_id_created_at_id'), 'contacts', ['org_id', 'owner_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_phone'), 'contacts', ['org_id', 'phone'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_source_created_at_id'), 'contacts', ['org_id', 'source', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_updated_at_id'), 'contacts', ['org_id', 'updated_at', 'id'], unique=False)
    op.create_index('ix_contacts_search', 'contacts', ['search'], unique=False, postgresql_using='gin')
    op.create_index('ix_contacts_tags', 'contacts', ['tags'], unique=False, postgresql_using='gin')
    op.create_table('deals',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('pipeline_id', sa.UUID(), nullable=False),
    sa.Column('stage_id', sa.UUID(), nullable=False),
    sa.Column('value_amount', sa.Numeric(precision=18, scale=2), server_default='0', nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('expected_close_date', sa.Date(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('company_id', sa.UUID(), nullable=True),
    sa.Column('status', sa.String(length=8), server_default='open', nullable=False),
    sa.Column('lost_reason', sa.String(length=200), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stage_entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('external_ids', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('custom_fields', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'won', 'lost')", name=op.f('ck_deals_status')),
    sa.ForeignKeyConstraint(['org_id', 'company_id'], ['companies.org_id', 'companies.id'], name='fk_deals_company_id'),
    sa.ForeignKeyConstraint(['org_id', 'contact_id'], ['contacts.org_id', 'contacts.id'], name='fk_deals_contact_id'),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_deals_owner'),
    sa.ForeignKeyConstraint(['org_id', 'pipeline_id'], ['pipelines.org_id', 'pipelines.id'], name='fk_deals_pipeline_id'),
    sa.ForeignKeyConstraint(['org_id', 'stage_id'], ['pipeline_stages.org_id', 'pipeline_stages.id'], name='fk_deals_stage_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_deals_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_deals'))
    )
    op.create_index('ix_deals_custom_fields', 'deals', ['custom_fields'], unique=False, postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.create_index('ix_deals_external_ids', 'deals', ['external_ids'], unique=False, postgresql_using='gin', postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.create_index(op.f('ix_deals_org_id_company_id_created_at_id'), 'deals', ['org_id', 'company_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_contact_id_created_at_id'), 'deals', ['org_id', 'contact_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_created_at_id'), 'deals', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_expected_close_date_id'), 'deals', ['org_id', 'expected_close_date', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_owner_id_created_at_id'), 'deals', ['org_id', 'owner_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_pipeline_id_status_created_at_id'), 'deals', ['org_id', 'pipeline_id', 'status', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_stage_entered_at_id'), 'deals', ['org_id', 'stage_entered_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_stage_id_owner_id_created_at_id'), 'deals', ['org_id', 'stage_id', 'owner_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_status_created_at_id'), 'deals', ['org_id', 'status', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_updated_at_id'), 'deals', ['org_id', 'updated_at', 'id'], unique=False)
    op.create_index(op.f('ix_deals_org_id_value_amount_id'), 'deals', ['org_id', 'value_amount', 'id'], unique=False)
    op.create_table('leads',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('company_name', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='new', nullable=False),
    sa.Column('utm', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('form_id', sa.UUID(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('company_id', sa.UUID(), nullable=True),
    sa.Column('deal_id', sa.UUID(), nullable=True),
    sa.Column('converted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('external_ids', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('search', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple', coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, '') || ' ' || coalesce(company_name, '') || ' ' || coalesce(title, ''))", persisted=True), nullable=False),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('custom_fields', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('new', 'working', 'qualified', 'disqualified', 'converted')", name=op.f('ck_leads_status')),
    sa.ForeignKeyConstraint(['org_id', 'contact_id'], ['contacts.org_id', 'contacts.id'], name='fk_leads_contact_id'),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_leads_owner'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_leads_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_leads'))
    )
    op.create_index('ix_leads_custom_fields', 'leads', ['custom_fields'], unique=False, postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.create_index('ix_leads_external_ids', 'leads', ['external_ids'], unique=False, postgresql_using='gin', postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.create_index(op.f('ix_leads_org_id_contact_id'), 'leads', ['org_id', 'contact_id'], unique=False)
    op.create_index(op.f('ix_leads_org_id_created_at_id'), 'leads', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_leads_org_id_email'), 'leads', ['org_id', 'email'], unique=False)
    op.create_index(op.f('ix_leads_org_id_form_id_created_at_id'), 'leads', ['org_id', 'form_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_leads_org_id_last_name_id'), 'leads', ['org_id', 'last_name', 'id'], unique=False)
    op.create_index(op.f('ix_leads_org_id_owner_id_created_at_id'), 'leads', ['org_id', 'owner_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_leads_org_id_phone'), 'leads', ['org_id', 'phone'], unique=False)
    op.create_index(op.f('ix_leads_org_id_source_created_at_id'), 'leads', ['org_id', 'source', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_leads_org_id_status_created_at_id'), 'leads', ['org_id', 'status', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_leads_org_id_updated_at_id'), 'leads', ['org_id', 'updated_at', 'id'], unique=False)
    op.create_index('ix_leads_search', 'leads', ['search'], unique=False, postgresql_using='gin')
    op.create_table('activities',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('remind_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('assignee_id', sa.UUID(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('company_id', sa.UUID(), nullable=True),
    sa.Column('deal_id', sa.UUID(), nullable=True),
    sa.Column('lead_id', sa.UUID(), nullable=True),
    sa.Column('priority', sa.String(length=8), server_default='normal', nullable=False),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('custom_fields', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("priority IN ('low', 'normal', 'high')", name=op.f('ck_activities_priority')),
    sa.CheckConstraint("type IN ('task', 'call', 'meeting', 'note', 'email')", name=op.f('ck_activities_type')),
    sa.ForeignKeyConstraint(['org_id', 'assignee_id'], ['users.org_id', 'users.id'], name='fk_activities_assignee_id'),
    sa.ForeignKeyConstraint(['org_id', 'company_id'], ['companies.org_id', 'companies.id'], name='fk_activities_company_id'),
    sa.ForeignKeyConstraint(['org_id', 'contact_id'], ['contacts.org_id', 'contacts.id'], name='fk_activities_contact_id'),
    sa.ForeignKeyConstraint(['org_id', 'deal_id'], ['deals.org_id', 'deals.id'], name='fk_activities_deal_id'),
    sa.ForeignKeyConstraint(['org_id', 'lead_id'], ['leads.org_id', 'leads.id'], name='fk_activities_lead_id'),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_activities_owner'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_activities_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_activities'))
    )
    op.create_index('ix_activities_custom_fields', 'activities', ['custom_fields'], unique=False, postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.create_index('ix_activities_open_by_assignee', 'activities', ['org_id', 'assignee_id', 'due_at', 'id'], unique=False, postgresql_where=sa.text('done_at IS NULL AND deleted_at IS NULL'))
    op.create_index('ix_activities_open_due', 'activities', ['org_id', 'due_at'], unique=False, postgresql_where=sa.text('done_at IS NULL AND deleted_at IS NULL'))
    op.create_index(op.f('ix_activities_org_id_assignee_id_created_at_id'), 'activities', ['org_id', 'assignee_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_activities_org_id_company_id_created_at_id'), 'activities', ['org_id', 'company_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_activities_org_id_contact_id_created_at_id'), 'activities', ['org_id', 'contact_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_activities_org_id_created_at_id'), 'activities', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_activities_org_id_deal_id_created_at_id'), 'activities', ['org_id', 'deal_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_activities_org_id_due_at_id'), 'activities', ['org_id', 'due_at', 'id'], unique=False)
    op.create_index(op.f('ix_activities_org_id_lead_id_created_at_id'), 'activities', ['org_id', 'lead_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_activities_org_id_updated_at_id'), 'activities', ['org_id', 'updated_at', 'id'], unique=False)
    op.create_table('deal_stage_history',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('deal_id', sa.UUID(), nullable=False),
    sa.Column('from_stage_id', sa.UUID(), nullable=True),
    sa.Column('to_stage_id', sa.UUID(), nullable=False),
    sa.Column('moved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('moved_by', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('seconds_in_previous', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['org_id', 'deal_id'], ['deals.org_id', 'deals.id'], name='fk_deal_stage_history_deal_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_deal_stage_history_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_deal_stage_history'))
    )
    op.create_index(op.f('ix_deal_stage_history_org_id_deal_id_moved_at_id'), 'deal_stage_history', ['org_id', 'deal_id', 'moved_at', 'id'], unique=False)
    op.create_index(op.f('ix_deal_stage_history_org_id_moved_at'), 'deal_stage_history', ['org_id', 'moved_at'], unique=False)
    op.create_index(op.f('ix_deal_stage_history_org_id_to_stage_id_moved_at'), 'deal_stage_history', ['org_id', 'to_stage_id', 'moved_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_deal_stage_history_org_id_to_stage_id_moved_at'), table_name='deal_stage_history')
    op.drop_index(op.f('ix_deal_stage_history_org_id_moved_at'), table_name='deal_stage_history')
    op.drop_index(op.f('ix_deal_stage_history_org_id_deal_id_moved_at_id'), table_name='deal_stage_history')
    op.drop_table('deal_stage_history')
    op.drop_index(op.f('ix_activities_org_id_updated_at_id'), table_name='activities')
    op.drop_index(op.f('ix_activities_org_id_lead_id_created_at_id'), table_name='activities')
    op.drop_index(op.f('ix_activities_org_id_due_at_id'), table_name='activities')
    op.drop_index(op.f('ix_activities_org_id_deal_id_created_at_id'), table_name='activities')
    op.drop_index(op.f('ix_activities_org_id_created_at_id'), table_name='activities')
    op.drop_index(op.f('ix_activities_org_id_contact_id_created_at_id'), table_name='activities')
    op.drop_index(op.f('ix_activities_org_id_company_id_created_at_id'), table_name='activities')
    op.drop_index(op.f('ix_activities_org_id_assignee_id_created_at_id'), table_name='activities')
    op.drop_index('ix_activities_open_due', table_name='activities', postgresql_where=sa.text('done_at IS NULL AND deleted_at IS NULL'))
    op.drop_index('ix_activities_open_by_assignee', table_name='activities', postgresql_where=sa.text('done_at IS NULL AND deleted_at IS NULL'))
    op.drop_index('ix_activities_custom_fields', table_name='activities', postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.drop_table('activities')
    op.drop_index('ix_leads_search', table_name='leads', postgresql_using='gin')
    op.drop_index(op.f('ix_leads_org_id_updated_at_id'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_status_created_at_id'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_source_created_at_id'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_phone'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_owner_id_created_at_id'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_last_name_id'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_form_id_created_at_id'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_email'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_contact_id'), table_name='leads')
    op.drop_index(op.f('ix_leads_org_id_created_at_id'), table_name='leads')
    op.drop_index('ix_leads_external_ids', table_name='leads', postgresql_using='gin', postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.drop_index('ix_leads_custom_fields', table_name='leads', postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.drop_table('leads')
    op.drop_index(op.f('ix_deals_org_id_value_amount_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_updated_at_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_status_created_at_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_stage_id_owner_id_created_at_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_stage_entered_at_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_pipeline_id_status_created_at_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_owner_id_created_at_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_expected_close_date_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_created_at_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_contact_id_created_at_id'), table_name='deals')
    op.drop_index(op.f('ix_deals_org_id_company_id_created_at_id'), table_name='deals')
    op.drop_index('ix_deals_external_ids', table_name='deals', postgresql_using='gin', postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.drop_index('ix_deals_custom_fields', table_name='deals', postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.drop_table('deals')
    op.drop_index('ix_contacts_tags', table_name='contacts', postgresql_using='gin')
    op.drop_index('ix_contacts_search', table_name='contacts', postgresql_using='gin')
    op.drop_index(op.f('ix_contacts_org_id_updated_at_id'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_source_created_at_id'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_phone'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_owner_id_created_at_id'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_last_name_id'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_email'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_created_at_id'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_company_id_created_at_id'), table_name='contacts')
    op.drop_index('ix_contacts_external_ids', table_name='contacts', postgresql_using='gin', postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.drop_index('ix_contacts_custom_fields', table_name='contacts', postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.drop_table('contacts')
    op.drop_index(op.f('ix_pipeline_stages_org_id_pipeline_id_position'), table_name='pipeline_stages')
    op.drop_table('pipeline_stages')
    op.drop_index('ix_companies_search', table_name='companies', postgresql_using='gin')
    op.drop_index(op.f('ix_companies_org_id_updated_at_id'), table_name='companies')
    op.drop_index(op.f('ix_companies_org_id_phone'), table_name='companies')
    op.drop_index(op.f('ix_companies_org_id_owner_id_created_at_id'), table_name='companies')
    op.drop_index(op.f('ix_companies_org_id_name_id'), table_name='companies')
    op.drop_index(op.f('ix_companies_org_id_domain'), table_name='companies')
    op.drop_index(op.f('ix_companies_org_id_created_at_id'), table_name='companies')
    op.drop_index('ix_companies_external_ids', table_name='companies', postgresql_using='gin', postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.drop_index('ix_companies_custom_fields', table_name='companies', postgresql_using='gin', postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.drop_table('companies')
    op.drop_index('uq_pipelines_default', table_name='pipelines', postgresql_where=sa.text('is_default AND deleted_at IS NULL'))
    op.drop_index(op.f('ix_pipelines_org_id_created_at_id'), table_name='pipelines')
    op.drop_table('pipelines')
    op.drop_index(op.f('ix_events_org_id_txid_id'), table_name='events')
    op.drop_index(op.f('ix_events_org_id_object_type_object_id_occurred_at'), table_name='events')
    op.drop_index(op.f('ix_events_occurred_at'), table_name='events')
    op.drop_table('events')
    op.drop_table('custom_fields')
