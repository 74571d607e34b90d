"""files: files attached to contacts, companies, leads, deals and activities

`files` holds each file's metadata (name, detected content type, size, SHA-256, the record it is attached to);
the bytes are kept by the storage (the data dir or an S3-compatible bucket, `CRM_FILES_URL`) under
`<org_id>/<id>`. Row-level security as on every tenant table.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-04 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0033'
down_revision: str | None = '0032'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table('files',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.UUID(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("object_type IN ('contact', 'company', 'lead', 'deal', 'activity')",
                       name=op.f('ck_files_object_type')),
    sa.CheckConstraint('size >= 0', name=op.f('ck_files_size')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_files_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_files'))
    )
    op.create_index(op.f('ix_files_org_id_created_at_id'), 'files', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_files_org_id_object_type_object_id_created_at_id'), 'files',
                    ['org_id', 'object_type', 'object_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_files_purge_due', 'files', ['deleted_at'], unique=False,
                    postgresql_where=sa.text('deleted_at IS NOT NULL'))
    op.execute("ALTER TABLE files ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE files FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON files USING (org_id = {CURRENT_ORG}) "
               f"WITH CHECK (org_id = {CURRENT_ORG})")


def downgrade() -> None:
    op.drop_index('ix_files_purge_due', table_name='files', postgresql_where=sa.text('deleted_at IS NOT NULL'))
    op.drop_index(op.f('ix_files_org_id_object_type_object_id_created_at_id'), table_name='files')
    op.drop_index(op.f('ix_files_org_id_created_at_id'), table_name='files')
    op.drop_table('files')
