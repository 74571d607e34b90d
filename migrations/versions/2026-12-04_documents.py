"""documents: templates, numbered documents rendered to PDF, their counters and payments

`document_templates` (quote, invoice, contract, letter; sandboxed Jinja2 HTML); `documents`, each with its number
(`<prefix>-<YYYY>-<00001>`, unique per org, kind and year), its total at request time and what it is rendered
from; `document_counters`, the last sequence per org, kind and year (taken with INSERT ... ON CONFLICT DO UPDATE
... RETURNING in the requesting transaction); `document_payments`. Row-level security as on every tenant table.

Revision ID: 0032
Revises: 0035
Create Date: 2026-12-04 09:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0032'
down_revision: str | None = '0035'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"
TABLES = ("document_templates", "document_counters", "documents", "document_payments")


def upgrade() -> None:
    op.create_table('document_templates',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('number_prefix', sa.String(length=20), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('quote', 'invoice', 'contract', 'letter')", name=op.f('ck_document_templates_kind')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_document_templates_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_document_templates'))
    )
    op.create_index(op.f('ix_document_templates_org_id_created_at_id'), 'document_templates', ['org_id', 'created_at', 'id'], unique=False)
    op.create_table('document_counters',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_document_counters_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'kind', 'year', name=op.f('pk_document_counters'))
    )
    op.create_table('documents',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('template_id', sa.UUID(), nullable=False),
    sa.Column('deal_id', sa.UUID(), nullable=True),
    sa.Column('contact_id', sa.UUID(), nullable=True),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=8), server_default='pending', nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('total_amount', sa.Numeric(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('paid_total', sa.Numeric(), server_default='0', nullable=False),
    sa.Column('payment_status', sa.String(length=16), server_default='unpaid', nullable=False),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('context', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('file_key', sa.String(length=300), nullable=True),
    sa.Column('file_size', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('rendered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('render_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("kind IN ('quote', 'invoice', 'contract', 'letter')", name=op.f('ck_documents_kind')),
    sa.CheckConstraint("status IN ('pending', 'ready', 'failed')", name=op.f('ck_documents_status')),
    sa.CheckConstraint("payment_status IN ('unpaid', 'partially_paid', 'paid', 'void')", name=op.f('ck_documents_payment_status')),
    sa.CheckConstraint('deal_id IS NOT NULL OR contact_id IS NOT NULL', name=op.f('ck_documents_subject')),
    sa.ForeignKeyConstraint(['org_id', 'contact_id'], ['contacts.org_id', 'contacts.id'], name='fk_documents_contact_id'),
    sa.ForeignKeyConstraint(['org_id', 'deal_id'], ['deals.org_id', 'deals.id'], name='fk_documents_deal_id'),
    sa.ForeignKeyConstraint(['org_id', 'template_id'], ['document_templates.org_id', 'document_templates.id'], name='fk_documents_template_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_documents_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_documents'))
    )
    op.create_index(op.f('ix_documents_org_id_kind_year_sequence'), 'documents', ['org_id', 'kind', 'year', 'sequence'], unique=True)
    op.create_index(op.f('ix_documents_org_id_created_at_id'), 'documents', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_documents_org_id_deal_id_created_at_id'), 'documents', ['org_id', 'deal_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_documents_org_id_contact_id_created_at_id'), 'documents', ['org_id', 'contact_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_documents_render_due', 'documents', ['created_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_table('document_payments',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('document_id', sa.UUID(), nullable=False),
    sa.Column('amount', sa.Numeric(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'document_id'], ['documents.org_id', 'documents.id'], name='fk_document_payments_document_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_document_payments_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_document_payments'))
    )
    op.create_index(op.f('ix_document_payments_org_id_document_id_paid_at_id'), 'document_payments', ['org_id', 'document_id', 'paid_at', 'id'], unique=False)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) "
                   f"WITH CHECK (org_id = {CURRENT_ORG})")


def downgrade() -> None:
    op.drop_index(op.f('ix_document_payments_org_id_document_id_paid_at_id'), table_name='document_payments')
    op.drop_table('document_payments')
    op.drop_index('ix_documents_render_due', table_name='documents', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index(op.f('ix_documents_org_id_contact_id_created_at_id'), table_name='documents')
    op.drop_index(op.f('ix_documents_org_id_deal_id_created_at_id'), table_name='documents')
    op.drop_index(op.f('ix_documents_org_id_created_at_id'), table_name='documents')
    op.drop_index(op.f('ix_documents_org_id_kind_year_sequence'), table_name='documents')
    op.drop_table('documents')
    op.drop_table('document_counters')
    op.drop_index(op.f('ix_document_templates_org_id_created_at_id'), table_name='document_templates')
    op.drop_table('document_templates')
