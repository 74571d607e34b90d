"""templates: email and SMS templates

Sandboxed Jinja2 sources (subject, HTML, text), checked on every write. Row-level security as on every tenant
table (migration 0020).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 05:29:55.616494+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table('templates',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('body_text', sa.Text(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("channel IN ('email', 'sms')", name=op.f('ck_templates_channel')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_templates_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_templates'))
    )
    op.create_index(op.f('ix_templates_org_id_created_at_id'), 'templates', ['org_id', 'created_at', 'id'], unique=False)
    op.execute("ALTER TABLE templates ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE templates FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON templates USING (org_id = {CURRENT_ORG}) "
               f"WITH CHECK (org_id = {CURRENT_ORG})")


def downgrade() -> None:
    op.drop_index(op.f('ix_templates_org_id_created_at_id'), table_name='templates')
    op.drop_table('templates')
