"""external refs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 13:31:06.472389+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('external_refs',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('record_id', sa.UUID(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_external_refs_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'object_type', 'source', 'external_id', name=op.f('pk_external_refs'))
    )
    op.create_index(op.f('ix_external_refs_org_id_object_type_record_id'), 'external_refs', ['org_id', 'object_type', 'record_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_external_refs_org_id_object_type_record_id'), table_name='external_refs')
    op.drop_table('external_refs')
