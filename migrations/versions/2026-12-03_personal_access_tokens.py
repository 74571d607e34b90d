"""personal access tokens: api_keys.kind (org or personal) and last_used_ip

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 21:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('api_keys', sa.Column('kind', sa.String(length=16), server_default=sa.text("'org'"), nullable=False))
    op.add_column('api_keys', sa.Column('last_used_ip', sa.String(length=64), nullable=True))
    op.create_check_constraint(op.f('ck_api_keys_kind'), 'api_keys', "kind IN ('org', 'personal')")
    op.create_index(op.f('ix_api_keys_org_id_created_by_kind'), 'api_keys', ['org_id', 'created_by', 'kind'],
                    unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM api_keys WHERE kind = 'personal'")
    op.drop_index(op.f('ix_api_keys_org_id_created_by_kind'), table_name='api_keys')
    op.drop_constraint(op.f('ck_api_keys_kind'), 'api_keys', type_='check')
    op.drop_column('api_keys', 'last_used_ip')
    op.drop_column('api_keys', 'kind')
