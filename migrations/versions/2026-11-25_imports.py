"""imports

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 14:25:02.868399+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('import_keys',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('import_id', sa.UUID(), nullable=False),
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.PrimaryKeyConstraint('org_id', 'import_id', 'key', name=op.f('pk_import_keys')),
    prefixes=['UNLOGGED']
    )
    op.create_table('imports',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('object', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('file_format', sa.String(length=8), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('mapping', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('dedupe_by', sa.String(length=16), nullable=False),
    sa.Column('external_source', sa.String(length=64), nullable=True),
    sa.Column('on_duplicate', sa.String(length=8), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('encoding', sa.String(length=32), nullable=True),
    sa.Column('delimiter', sa.String(length=4), nullable=True),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('processed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated', sa.Integer(), server_default='0', nullable=False),
    sa.Column('skipped', sa.Integer(), server_default='0', nullable=False),
    sa.Column('failed', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name=op.f('ck_imports_status')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_imports_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_imports'))
    )
    op.create_index(op.f('ix_imports_org_id_created_at_id'), 'imports', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_imports_unfinished', 'imports', ['created_at'], unique=False, postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.add_column('activities', sa.Column('import_id', sa.UUID(), nullable=True))
    op.create_index('ix_activities_import', 'activities', ['org_id', 'import_id'], unique=False, postgresql_where=sa.text('import_id IS NOT NULL'))
    op.add_column('companies', sa.Column('import_id', sa.UUID(), nullable=True))
    op.create_index('ix_companies_import', 'companies', ['org_id', 'import_id'], unique=False, postgresql_where=sa.text('import_id IS NOT NULL'))
    op.add_column('contacts', sa.Column('import_id', sa.UUID(), nullable=True))
    op.create_index('ix_contacts_import', 'contacts', ['org_id', 'import_id'], unique=False, postgresql_where=sa.text('import_id IS NOT NULL'))
    op.add_column('deals', sa.Column('import_id', sa.UUID(), nullable=True))
    op.create_index('ix_deals_import', 'deals', ['org_id', 'import_id'], unique=False, postgresql_where=sa.text('import_id IS NOT NULL'))
    op.add_column('leads', sa.Column('import_id', sa.UUID(), nullable=True))
    op.create_index('ix_leads_import', 'leads', ['org_id', 'import_id'], unique=False, postgresql_where=sa.text('import_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_leads_import', table_name='leads', postgresql_where=sa.text('import_id IS NOT NULL'))
    op.drop_column('leads', 'import_id')
    op.drop_index('ix_deals_import', table_name='deals', postgresql_where=sa.text('import_id IS NOT NULL'))
    op.drop_column('deals', 'import_id')
    op.drop_index('ix_contacts_import', table_name='contacts', postgresql_where=sa.text('import_id IS NOT NULL'))
    op.drop_column('contacts', 'import_id')
    op.drop_index('ix_companies_import', table_name='companies', postgresql_where=sa.text('import_id IS NOT NULL'))
    op.drop_column('companies', 'import_id')
    op.drop_index('ix_activities_import', table_name='activities', postgresql_where=sa.text('import_id IS NOT NULL'))
    op.drop_column('activities', 'import_id')
    op.drop_index('ix_imports_unfinished', table_name='imports', postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.drop_index(op.f('ix_imports_org_id_created_at_id'), table_name='imports')
    op.drop_table('imports')
    op.drop_table('import_keys')
