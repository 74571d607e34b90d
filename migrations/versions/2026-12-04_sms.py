"""sms: the org's gateway settings, text messages, and when a campaign's text was handed to the gateway

`sms_gateways` holds one generic HTTP gateway per org (its headers sealed); `sms_messages` every text sent
through it (`POST /v1/sms`), queued for a worker like email. `campaign_recipients.handed_at` marks an SMS
handed to the gateway: an interrupted one is never sent again. Row-level security as on every tenant table.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 07:04:48.712734+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table('sms_gateways',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('method', sa.String(length=6), nullable=False),
    sa.Column('body_template', sa.Text(), nullable=False),
    sa.Column('sender', sa.String(length=32), nullable=False),
    sa.Column('rate_per_minute', sa.Integer(), server_default='60', nullable=False),
    sa.Column('sealed_headers', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("method IN ('POST', 'PUT', 'GET')", name=op.f('ck_sms_gateways_method')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_sms_gateways_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_sms_gateways'))
    )
    op.create_table('sms_messages',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('to_phone', sa.String(length=32), nullable=False),
    sa.Column('sender', sa.String(length=32), nullable=False),
    sa.Column('text', sa.String(length=1600), nullable=False),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('lead_id', sa.UUID(), nullable=True),
    sa.Column('deal_id', sa.UUID(), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('gateway_answer', sa.String(length=500), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'sent', 'failed')", name=op.f('ck_sms_messages_status')),
    sa.ForeignKeyConstraint(['org_id', 'contact_id'], ['contacts.org_id', 'contacts.id'], name='fk_sms_messages_contact_id'),
    sa.ForeignKeyConstraint(['org_id', 'deal_id'], ['deals.org_id', 'deals.id'], name='fk_sms_messages_deal_id'),
    sa.ForeignKeyConstraint(['org_id', 'lead_id'], ['leads.org_id', 'leads.id'], name='fk_sms_messages_lead_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_sms_messages_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_sms_messages'))
    )
    op.create_index(op.f('ix_sms_messages_org_id_contact_id_created_at_id'), 'sms_messages', ['org_id', 'contact_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_sms_messages_org_id_created_at_id'), 'sms_messages', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_sms_messages_org_id_deal_id_created_at_id'), 'sms_messages', ['org_id', 'deal_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_sms_messages_org_id_lead_id_created_at_id'), 'sms_messages', ['org_id', 'lead_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_sms_messages_send_due', 'sms_messages', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'queued'"))
    op.add_column('campaign_recipients', sa.Column('handed_at', sa.DateTime(timezone=True), nullable=True))
    for table in ("sms_gateways", "sms_messages"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) "
                   f"WITH CHECK (org_id = {CURRENT_ORG})")


def downgrade() -> None:
    op.drop_column('campaign_recipients', 'handed_at')
    op.drop_index('ix_sms_messages_send_due', table_name='sms_messages', postgresql_where=sa.text("status = 'queued'"))
    op.drop_index(op.f('ix_sms_messages_org_id_lead_id_created_at_id'), table_name='sms_messages')
    op.drop_index(op.f('ix_sms_messages_org_id_deal_id_created_at_id'), table_name='sms_messages')
    op.drop_index(op.f('ix_sms_messages_org_id_created_at_id'), table_name='sms_messages')
    op.drop_index(op.f('ix_sms_messages_org_id_contact_id_created_at_id'), table_name='sms_messages')
    op.drop_table('sms_messages')
    op.drop_table('sms_gateways')
