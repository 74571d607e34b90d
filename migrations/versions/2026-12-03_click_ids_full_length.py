"""click ids at full length

A form submission keeps its ad click ids (`gclid`, `fbclid`) as long as the page URL they came in
(2048 characters): real click ids can be longer than the 300 characters the columns held, and a longer
one made the whole submission fail. Downgrading cuts longer values to 300 characters.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 08:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ('gclid', 'fbclid')


def upgrade() -> None:
    for column in COLUMNS:
        op.alter_column('form_submissions', column, type_=sa.String(length=2048),
                        existing_type=sa.String(length=300), existing_nullable=True)


def downgrade() -> None:
    for column in COLUMNS:
        op.execute(f"UPDATE form_submissions SET {column} = left({column}, 300) WHERE length({column}) > 300")
        op.alter_column('form_submissions', column, type_=sa.String(length=300),
                        existing_type=sa.String(length=2048), existing_nullable=True)
