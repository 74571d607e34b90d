"""mail: mailboxes, folder sync positions, emails

Mailboxes keep their server settings in clear and their credentials sealed (`sealed_secrets`, Fernet). Each
folder's sync position is its UIDVALIDITY and the last UID stored. An email is stored once per mailbox and
Message-ID; it lists the contacts, leads and deals it belongs to (GIN indexes serve the timelines).
Row-level security as on every tenant table (migration 0020).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 05:07:55.054007+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"
TABLES = ("mailboxes", "mail_folders", "emails")


def upgrade() -> None:
    op.create_table('mailboxes',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.Column('owner_id', sa.UUID(), nullable=True),
    sa.Column('auth', sa.String(length=8), nullable=False),
    sa.Column('imap', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('smtp', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('oauth', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('sealed_secrets', sa.Text(), nullable=False),
    sa.Column('sync_since_days', sa.Integer(), nullable=False),
    sa.Column('rate_per_minute', sa.Integer(), nullable=False),
    sa.Column('routing', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('round_robin', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("auth IN ('password', 'oauth2')", name=op.f('ck_mailboxes_auth')),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_mailboxes_owner_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_mailboxes_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_mailboxes'))
    )
    op.create_index(op.f('ix_mailboxes_org_id_created_at_id'), 'mailboxes', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_mailboxes_sync_due', 'mailboxes', ['next_sync_at'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('emails',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('mailbox_id', sa.UUID(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('from_address', sa.String(length=320), nullable=False),
    sa.Column('from_name', sa.String(length=200), nullable=True),
    sa.Column('to_addresses', postgresql.ARRAY(sa.String(length=320)), nullable=False),
    sa.Column('cc_addresses', postgresql.ARRAY(sa.String(length=320)), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('message_id', sa.String(length=998), nullable=False),
    sa.Column('in_reply_to', sa.String(length=998), nullable=True),
    sa.Column('references', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('thread_id', sa.UUID(), nullable=False),
    sa.Column('contact_ids', postgresql.ARRAY(sa.UUID()), nullable=False),
    sa.Column('lead_ids', postgresql.ARRAY(sa.UUID()), nullable=False),
    sa.Column('deal_ids', postgresql.ARRAY(sa.UUID()), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=True),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('attachments', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('folder_uid', sa.BigInteger(), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('auto_reply', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("direction IN ('inbound', 'outbound')", name=op.f('ck_emails_direction')),
    sa.CheckConstraint("status IN ('received', 'queued', 'sent', 'failed')", name=op.f('ck_emails_status')),
    sa.ForeignKeyConstraint(['org_id', 'mailbox_id'], ['mailboxes.org_id', 'mailboxes.id'], name='fk_emails_mailbox_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_emails_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_emails'))
    )
    op.create_index('ix_emails_contact_ids', 'emails', ['contact_ids'], unique=False, postgresql_using='gin')
    op.create_index('ix_emails_deal_ids', 'emails', ['deal_ids'], unique=False, postgresql_using='gin')
    op.create_index('ix_emails_lead_ids', 'emails', ['lead_ids'], unique=False, postgresql_using='gin')
    op.create_index(op.f('ix_emails_org_id_in_reply_to'), 'emails', ['org_id', 'in_reply_to'], unique=False)
    op.create_index(op.f('ix_emails_org_id_mailbox_id_sent_at_id'), 'emails', ['org_id', 'mailbox_id', 'sent_at', 'id'], unique=False)
    op.create_index(op.f('ix_emails_org_id_message_id'), 'emails', ['org_id', 'message_id'], unique=False)
    op.create_index(op.f('ix_emails_org_id_sent_at_id'), 'emails', ['org_id', 'sent_at', 'id'], unique=False)
    op.create_index(op.f('ix_emails_org_id_thread_id_sent_at_id'), 'emails', ['org_id', 'thread_id', 'sent_at', 'id'], unique=False)
    op.create_index('ix_emails_references', 'emails', ['references'], unique=False, postgresql_using='gin')
    op.create_index('ix_emails_send_due', 'emails', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'queued'"))
    op.create_index('uq_emails_mailbox_message', 'emails', ['org_id', 'mailbox_id', 'message_id'], unique=True)
    op.create_table('mail_folders',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('mailbox_id', sa.UUID(), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("role IN ('inbox', 'sent')", name=op.f('ck_mail_folders_role')),
    sa.ForeignKeyConstraint(['org_id', 'mailbox_id'], ['mailboxes.org_id', 'mailboxes.id'], name='fk_mail_folders_mailbox_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_mail_folders_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'mailbox_id', 'role', name=op.f('pk_mail_folders'))
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) "
                   f"WITH CHECK (org_id = {CURRENT_ORG})")


def downgrade() -> None:
    op.drop_table('mail_folders')
    op.drop_index('uq_emails_mailbox_message', table_name='emails')
    op.drop_index('ix_emails_send_due', table_name='emails', postgresql_where=sa.text("status = 'queued'"))
    op.drop_index('ix_emails_references', table_name='emails', postgresql_using='gin')
    op.drop_index(op.f('ix_emails_org_id_thread_id_sent_at_id'), table_name='emails')
    op.drop_index(op.f('ix_emails_org_id_sent_at_id'), table_name='emails')
    op.drop_index(op.f('ix_emails_org_id_message_id'), table_name='emails')
    op.drop_index(op.f('ix_emails_org_id_mailbox_id_sent_at_id'), table_name='emails')
    op.drop_index(op.f('ix_emails_org_id_in_reply_to'), table_name='emails')
    op.drop_index('ix_emails_lead_ids', table_name='emails', postgresql_using='gin')
    op.drop_index('ix_emails_deal_ids', table_name='emails', postgresql_using='gin')
    op.drop_index('ix_emails_contact_ids', table_name='emails', postgresql_using='gin')
    op.drop_table('emails')
    op.drop_index('ix_mailboxes_sync_due', table_name='mailboxes', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index(op.f('ix_mailboxes_org_id_created_at_id'), table_name='mailboxes')
    op.drop_table('mailboxes')
