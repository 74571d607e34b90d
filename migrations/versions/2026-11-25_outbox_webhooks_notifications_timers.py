"""outbox webhooks notifications timers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 12:58:36.336091+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('once_marks',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_once_marks_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'key', name=op.f('pk_once_marks'))
    )
    op.create_table('webhook_endpoints',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('events', postgresql.ARRAY(sa.String(length=64)), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('disabled_reason', sa.String(length=200), nullable=True),
    sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_webhook_endpoints_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_index(op.f('ix_webhook_endpoints_org_id_created_at_id'), 'webhook_endpoints', ['org_id', 'created_at', 'id'], unique=False)
    op.create_table('notifications',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=True),
    sa.Column('object_id', sa.UUID(), nullable=True),
    sa.Column('source_event_id', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_notifications_user_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_notifications_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('org_id', 'source_event_id', 'user_id', name=op.f('uq_notifications_org_id_source_event_id_user_id'))
    )
    op.create_index(op.f('ix_notifications_org_id_user_id_created_at_id'), 'notifications', ['org_id', 'user_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_notifications_unread', 'notifications', ['org_id', 'user_id', 'created_at', 'id'], unique=False, postgresql_where=sa.text('read_at IS NULL'))
    op.create_table('webhook_deliveries',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('endpoint_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=True),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('attempt_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f('ck_webhook_deliveries_status')),
    sa.ForeignKeyConstraint(['org_id', 'endpoint_id'], ['webhook_endpoints.org_id', 'webhook_endpoints.id'], name='fk_webhook_deliveries_endpoint_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_webhook_deliveries_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('org_id', 'endpoint_id', 'event_id', name=op.f('uq_webhook_deliveries_org_id_endpoint_id_event_id'))
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index(op.f('ix_webhook_deliveries_org_id_endpoint_id_created_at_id'), 'webhook_deliveries', ['org_id', 'endpoint_id', 'created_at', 'id'], unique=False)
    op.add_column('activities', sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('activities', sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_activities_overdue_pending', 'activities', ['due_at'], unique=False, postgresql_where=sa.text('done_at IS NULL AND deleted_at IS NULL AND overdue_at IS NULL'))
    op.create_index('ix_activities_reminder_pending', 'activities', [sa.literal_column('coalesce(remind_at, due_at)')], unique=False, postgresql_where=sa.text('done_at IS NULL AND deleted_at IS NULL AND reminded_at IS NULL'))
    op.create_index('ix_contacts_birthday', 'contacts', ['org_id', sa.literal_column('extract(month from birthday)'), sa.literal_column('extract(day from birthday)')], unique=False, postgresql_where=sa.text('birthday IS NOT NULL AND deleted_at IS NULL'))
    op.add_column('events', sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_events_undispatched', 'events', ['occurred_at'], unique=False, postgresql_where=sa.text('dispatched_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_events_undispatched', table_name='events', postgresql_where=sa.text('dispatched_at IS NULL'))
    op.drop_column('events', 'dispatched_at')
    op.drop_index('ix_contacts_birthday', table_name='contacts', postgresql_where=sa.text('birthday IS NOT NULL AND deleted_at IS NULL'))
    op.drop_index('ix_activities_reminder_pending', table_name='activities', postgresql_where=sa.text('done_at IS NULL AND deleted_at IS NULL AND reminded_at IS NULL'))
    op.drop_index('ix_activities_overdue_pending', table_name='activities', postgresql_where=sa.text('done_at IS NULL AND deleted_at IS NULL AND overdue_at IS NULL'))
    op.drop_column('activities', 'overdue_at')
    op.drop_column('activities', 'reminded_at')
    op.drop_index(op.f('ix_webhook_deliveries_org_id_endpoint_id_created_at_id'), table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_notifications_unread', table_name='notifications', postgresql_where=sa.text('read_at IS NULL'))
    op.drop_index(op.f('ix_notifications_org_id_user_id_created_at_id'), table_name='notifications')
    op.drop_table('notifications')
    op.drop_index(op.f('ix_webhook_endpoints_org_id_created_at_id'), table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
    op.drop_table('once_marks')

