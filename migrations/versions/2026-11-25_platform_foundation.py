"""platform foundation

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 12:34:04.090333+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('orgs',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('default_phone_region', sa.String(length=2), nullable=True),
    sa.Column('default_currency', sa.String(length=3), server_default='EUR', nullable=False),
    sa.Column('record_visibility', sa.String(length=8), server_default='all', nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("record_visibility IN ('all', 'team', 'own')", name=op.f('ck_orgs_record_visibility')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orgs'))
    )
    op.create_table('users',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('manager_id', sa.UUID(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('out_of_office', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("role IN ('owner', 'admin', 'manager', 'member', 'viewer')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['org_id', 'manager_id'], ['users.org_id', 'users.id'], name=op.f('fk_users_org_id_manager_id_users'), ondelete='SET NULL (manager_id)'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_users_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_users'))
    )
    op.create_index(op.f('ix_users_org_id_created_at_id'), 'users', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_users_org_id_manager_id'), 'users', ['org_id', 'manager_id'], unique=False)
    op.create_table('api_keys',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('scopes', postgresql.ARRAY(sa.String(length=64)), nullable=False),
    sa.Column('created_by', sa.UUID(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'created_by'], ['users.org_id', 'users.id'], name=op.f('fk_api_keys_org_id_created_by_users')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_api_keys_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_api_keys'))
    )
    op.create_index(op.f('ix_api_keys_org_id_created_at_id'), 'api_keys', ['org_id', 'created_at', 'id'], unique=False)
    op.create_table('login_emails',
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name=op.f('fk_login_emails_org_id_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('email', name=op.f('pk_login_emails'))
    )
    op.create_table('refresh_tokens',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('family_id', sa.UUID(), nullable=False),
    sa.Column('secret_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name=op.f('fk_refresh_tokens_org_id_user_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_refresh_tokens_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_refresh_tokens'))
    )
    op.create_index(op.f('ix_refresh_tokens_expires_at'), 'refresh_tokens', ['expires_at'], unique=False)
    op.create_index(op.f('ix_refresh_tokens_org_id_family_id'), 'refresh_tokens', ['org_id', 'family_id'], unique=False)
    op.create_index(op.f('ix_refresh_tokens_org_id_user_id'), 'refresh_tokens', ['org_id', 'user_id'], unique=False)
    op.create_table('api_key_prefixes',
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('api_key_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'api_key_id'], ['api_keys.org_id', 'api_keys.id'], name=op.f('fk_api_key_prefixes_org_id_api_key_id_api_keys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('prefix', name=op.f('pk_api_key_prefixes'))
    )


def downgrade() -> None:
    op.drop_table('api_key_prefixes')
    op.drop_index(op.f('ix_refresh_tokens_org_id_user_id'), table_name='refresh_tokens')
    op.drop_index(op.f('ix_refresh_tokens_org_id_family_id'), table_name='refresh_tokens')
    op.drop_index(op.f('ix_refresh_tokens_expires_at'), table_name='refresh_tokens')
    op.drop_table('refresh_tokens')
    op.drop_table('login_emails')
    op.drop_index(op.f('ix_api_keys_org_id_created_at_id'), table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_index(op.f('ix_users_org_id_manager_id'), table_name='users')
    op.drop_index(op.f('ix_users_org_id_created_at_id'), table_name='users')
    op.drop_table('users')
    op.drop_table('orgs')
