"""catalog: products, reference lists, deal line items, and deal values in the currency's minor unit

`products` (a price per currency in `prices`, custom fields, external ids), `reference_lists` and their items
(the values allowed for lost reasons, industries and lead sources), and `deal_line_items`, whose values sum
into the deal's `value_amount` and the new `value_with_tax_amount` (null while a deal has no items).
`deals.value_amount` loses its scale of 2 (NUMERIC without a modifier) so that amounts of currencies with three
minor digits (BHD, KWD) fit: dropping a numeric's modifier is binary-compatible, so PostgreSQL rewrites
neither the table nor its indexes. Custom fields may now be defined on products. Row-level security as on
every tenant table.

Revision ID: 0031
Revises: 0033
Create Date: 2026-12-04 09:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0031'
down_revision: str | None = '0033'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"
TABLES = ("products", "reference_lists", "reference_list_items", "deal_line_items")
OBJECTS_BEFORE = "'contact', 'company', 'lead', 'deal', 'activity'"
OBJECTS_AFTER = OBJECTS_BEFORE + ", 'product'"


def _timestamps() -> list[sa.Column]:
    return [sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
            sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
            sa.Column('version', sa.Integer(), nullable=False)]


def upgrade() -> None:
    op.create_table('products',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=True),
    sa.Column('prices', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=5, scale=2), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('custom_fields', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('external_ids', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('search', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple', coalesce(sku, '') || ' ' || name)",
                                                           persisted=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    *_timestamps(),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_products_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_products'))
    )
    op.create_index(op.f('ix_products_org_id_created_at_id'), 'products', ['org_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_products_org_id_updated_at_id'), 'products', ['org_id', 'updated_at', 'id'], unique=False)
    op.create_index(op.f('ix_products_org_id_sku'), 'products', ['org_id', 'sku'], unique=False)
    op.create_index('ix_products_search', 'products', ['search'], unique=False, postgresql_using='gin')
    op.create_index('ix_products_custom_fields', 'products', ['custom_fields'], unique=False, postgresql_using='gin',
                    postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.create_index('ix_products_external_ids', 'products', ['external_ids'], unique=False, postgresql_using='gin',
                    postgresql_ops={'external_ids': 'jsonb_path_ops'})

    op.create_table('reference_lists',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    *_timestamps(),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_reference_lists_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_reference_lists'))
    )
    op.create_index(op.f('ix_reference_lists_org_id_key'), 'reference_lists', ['org_id', 'key'], unique=True)
    op.create_table('reference_list_items',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('list_id', sa.UUID(), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    *_timestamps(),
    sa.ForeignKeyConstraint(['org_id', 'list_id'], ['reference_lists.org_id', 'reference_lists.id'],
                            name='fk_reference_list_items_list_id', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_reference_list_items_org_id_orgs'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_reference_list_items'))
    )
    op.create_index(op.f('ix_reference_list_items_org_id_list_id_value'), 'reference_list_items',
                    ['org_id', 'list_id', 'value'], unique=True)

    op.create_table('deal_line_items',
    sa.Column('org_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('deal_id', sa.UUID(), nullable=False),
    sa.Column('product_id', sa.UUID(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=12, scale=3), nullable=False),
    sa.Column('unit_price_amount', sa.Numeric(precision=19, scale=3), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('discount_percent', sa.Numeric(precision=5, scale=2), server_default='0', nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=5, scale=2), server_default='0', nullable=False),
    sa.Column('amount', sa.Numeric(), nullable=False),
    sa.Column('amount_with_tax', sa.Numeric(), nullable=False),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    *_timestamps(),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_deal_line_items_quantity')),
    sa.CheckConstraint('discount_percent >= 0 AND discount_percent <= 100',
                       name=op.f('ck_deal_line_items_discount_percent')),
    sa.CheckConstraint('tax_rate >= 0', name=op.f('ck_deal_line_items_tax_rate')),
    sa.ForeignKeyConstraint(['org_id', 'deal_id'], ['deals.org_id', 'deals.id'], name='fk_deal_line_items_deal_id',
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'product_id'], ['products.org_id', 'products.id'],
                            name='fk_deal_line_items_product_id'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_deal_line_items_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'id', name=op.f('pk_deal_line_items'))
    )
    op.create_index(op.f('ix_deal_line_items_org_id_deal_id_position_id'), 'deal_line_items',
                    ['org_id', 'deal_id', 'position', 'id'], unique=False)
    op.create_index(op.f('ix_deal_line_items_org_id_product_id'), 'deal_line_items', ['org_id', 'product_id'],
                    unique=False, postgresql_where=sa.text('product_id IS NOT NULL'))

    op.alter_column('deals', 'value_amount', type_=sa.Numeric(), existing_type=sa.Numeric(precision=18, scale=2),
                    existing_nullable=False, existing_server_default=sa.text('0'))
    op.add_column('deals', sa.Column('value_with_tax_amount', sa.Numeric(), nullable=True))

    op.drop_constraint(op.f('ck_custom_fields_object'), 'custom_fields', type_='check')
    op.create_check_constraint(op.f('ck_custom_fields_object'), 'custom_fields', f"object IN ({OBJECTS_AFTER})")

    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (org_id = {CURRENT_ORG}) "
                   f"WITH CHECK (org_id = {CURRENT_ORG})")


def downgrade() -> None:
    # row-level security is forced on custom_fields, which would hide every row from the tables' owner here
    op.execute("ALTER TABLE custom_fields NO FORCE ROW LEVEL SECURITY")
    op.execute("DELETE FROM custom_fields WHERE object = 'product'")
    op.execute("ALTER TABLE custom_fields FORCE ROW LEVEL SECURITY")
    op.drop_constraint(op.f('ck_custom_fields_object'), 'custom_fields', type_='check')
    op.create_check_constraint(op.f('ck_custom_fields_object'), 'custom_fields', f"object IN ({OBJECTS_BEFORE})")
    op.drop_column('deals', 'value_with_tax_amount')
    op.alter_column('deals', 'value_amount', type_=sa.Numeric(precision=18, scale=2), existing_type=sa.Numeric(),
                    existing_nullable=False, existing_server_default=sa.text('0'))
    op.drop_index(op.f('ix_deal_line_items_org_id_product_id'), table_name='deal_line_items',
                  postgresql_where=sa.text('product_id IS NOT NULL'))
    op.drop_index(op.f('ix_deal_line_items_org_id_deal_id_position_id'), table_name='deal_line_items')
    op.drop_table('deal_line_items')
    op.drop_index(op.f('ix_reference_list_items_org_id_list_id_value'), table_name='reference_list_items')
    op.drop_table('reference_list_items')
    op.drop_index(op.f('ix_reference_lists_org_id_key'), table_name='reference_lists')
    op.drop_table('reference_lists')
    op.drop_index('ix_products_external_ids', table_name='products', postgresql_using='gin',
                  postgresql_ops={'external_ids': 'jsonb_path_ops'})
    op.drop_index('ix_products_custom_fields', table_name='products', postgresql_using='gin',
                  postgresql_ops={'custom_fields': 'jsonb_path_ops'})
    op.drop_index('ix_products_search', table_name='products', postgresql_using='gin')
    op.drop_index(op.f('ix_products_org_id_sku'), table_name='products')
    op.drop_index(op.f('ix_products_org_id_updated_at_id'), table_name='products')
    op.drop_index(op.f('ix_products_org_id_created_at_id'), table_name='products')
    op.drop_table('products')
