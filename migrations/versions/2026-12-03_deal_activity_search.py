"""deal and activity search: `q` on deals (title) and activities (subject)

A generated full-text column on each, with a GIN index, as contacts, companies and leads have: `q` matches
word prefixes through the index instead of scanning. Adding a stored generated column rewrites each table once.

Revision ID: 0019
Revises: 0014
Create Date: 2026-12-03 23:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0019'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHED = (('deals', 'title'), ('activities', 'subject'))


def upgrade() -> None:
    for table, column in SEARCHED:
        op.add_column(table, sa.Column('search', postgresql.TSVECTOR(),
                                       sa.Computed(f"to_tsvector('simple', {column})", persisted=True),
                                       nullable=False))
        op.create_index(f'ix_{table}_search', table, ['search'], unique=False, postgresql_using='gin')


def downgrade() -> None:
    for table, _ in SEARCHED:
        op.drop_index(f'ix_{table}_search', table_name=table, postgresql_using='gin')
        op.drop_column(table, 'search')
