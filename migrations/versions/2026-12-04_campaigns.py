"""campaigns: segments, campaigns, recipients; contact consent; weekly marketing cap

A recipient row per segment member of a sending is what makes each message go once: it is recorded `sent`
before the SMTP server can accept the message. Contacts get `consent {email, sms}` (unknown by default); the
org's `max_marketing_per_week` caps campaign mail per contact. Row-level security as on every tenant table.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 05:36:45.198756+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table('segments',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('object', sa.String(length=8), nullable=False),
    sa.Column('filter', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("object IN ('contact', 'lead')", name=op.f('ck_segments_object')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_segments_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_segments'))
    )
    op.create_index(op.f('ix_segments_org_id_created_at_id'), 'segments', ['org_id', 'created_at', 'id'], unique=False)
    op.create_table('campaigns',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('template_id', sa.UUID(), nullable=False),
    sa.Column('segment_id', sa.UUID(), nullable=False),
    sa.Column('mailbox_id', sa.UUID(), nullable=True),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f('ck_campaigns_channel')),
    sa.CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')", name=op.f('ck_campaigns_status')),
    sa.ForeignKeyConstraint(['org_id', 'mailbox_id'], ['mailboxes.org_id', 'mailboxes.id'], name='fk_campaigns_mailbox_id'),
    sa.ForeignKeyConstraint(['org_id', 'segment_id'], ['segments.org_id', 'segments.id'], name='fk_campaigns_segment_id'),
    sa.ForeignKeyConstraint(['org_id', 'template_id'], ['templates.org_id', 'templates.id'], name='fk_campaigns_template_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_campaigns_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_campaigns'))
    )
    op.create_index('ix_campaigns_due', 'campaigns', ['send_at'], unique=False, postgresql_where=sa.text("status IN ('scheduled', 'sending')"))
    op.create_index(op.f('ix_campaigns_org_id_created_at_id'), 'campaigns', ['org_id', 'created_at', 'id'], unique=False)
    op.create_table('campaign_recipients',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('campaign_id', sa.UUID(), nullable=False),
    sa.Column('contact_id', sa.UUID(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=True),
    sa.Column('message_id', sa.String(length=998), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'sent', 'failed', 'skipped')", name=op.f('ck_campaign_recipients_status')),
    sa.ForeignKeyConstraint(['org_id', 'campaign_id'], ['campaigns.org_id', 'campaigns.id'], name='fk_campaign_recipients_campaign_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_campaign_recipients_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_campaign_recipients'))
    )
    op.create_index(op.f('ix_campaign_recipients_org_id_campaign_id_status_id'), 'campaign_recipients', ['org_id', 'campaign_id', 'status', 'id'], unique=False)
    op.create_index(op.f('ix_campaign_recipients_org_id_contact_id_sent_at'), 'campaign_recipients', ['org_id', 'contact_id', 'sent_at'], unique=False)
    op.create_index(op.f('ix_campaign_recipients_org_id_message_id'), 'campaign_recipients', ['org_id', 'message_id'], unique=False)
    op.create_index('uq_campaign_recipients_contact', 'campaign_recipients', ['org_id', 'campaign_id', 'contact_id'], unique=True)
    op.add_column('contacts', sa.Column('consent', postgresql.JSONB(astext_type=sa.Text()), server_default='{"email": "unknown", "sms": "unknown"}', nullable=False))
    op.add_column('orgs', sa.Column('max_marketing_per_week', sa.Integer(), nullable=True))
    for table in ("segments", "campaigns", "campaign_recipients"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) "
                   f"WITH CHECK (org_id = {CURRENT_ORG})")


def downgrade() -> None:
    op.drop_column('orgs', 'max_marketing_per_week')
    op.drop_column('contacts', 'consent')
    op.drop_index('uq_campaign_recipients_contact', table_name='campaign_recipients')
    op.drop_index(op.f('ix_campaign_recipients_org_id_message_id'), table_name='campaign_recipients')
    op.drop_index(op.f('ix_campaign_recipients_org_id_contact_id_sent_at'), table_name='campaign_recipients')
    op.drop_index(op.f('ix_campaign_recipients_org_id_campaign_id_status_id'), table_name='campaign_recipients')
    op.drop_table('campaign_recipients')
    op.drop_index(op.f('ix_campaigns_org_id_created_at_id'), table_name='campaigns')
    op.drop_index('ix_campaigns_due', table_name='campaigns', postgresql_where=sa.text("status IN ('scheduled', 'sending')"))
    op.drop_table('campaigns')
    op.drop_index(op.f('ix_segments_org_id_created_at_id'), table_name='segments')
    op.drop_table('segments')
