"""dropped form submissions are kept: status, spam reason, invalid fields; spam counted on the form

A submission the intake drops (honeypot filled, sent faster than `min_fill_seconds`, over the rate limit) is
stored with `status = 'spam'` and its `spam_reason` for `CRM_FORM_SPAM_RETENTION_DAYS`, listed with
`?status=spam` and counted on the form (`spam_count`, `last_spam_at`). Values that fail validation (an invalid
email) are kept in `invalid_fields`.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 03:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('form_submissions', sa.Column('status', sa.String(length=8), server_default='accepted',
                                                nullable=False))
    op.add_column('form_submissions', sa.Column('spam_reason', sa.String(length=16), nullable=True))
    op.add_column('form_submissions', sa.Column('invalid_fields', postgresql.JSONB(astext_type=sa.Text()),
                                                nullable=True))
    op.create_check_constraint(op.f('ck_form_submissions_status'), 'form_submissions',
                               "status IN ('accepted', 'spam')")
    op.create_check_constraint(op.f('ck_form_submissions_spam_reason'), 'form_submissions',
                               "spam_reason IN ('honeypot', 'too_fast', 'rate_limited')")
    op.create_index(op.f('ix_form_submissions_org_id_form_id_status_received_at_id'), 'form_submissions',
                    ['org_id', 'form_id', 'status', 'received_at', 'id'], unique=False)
    op.create_index('ix_form_submissions_spam_received', 'form_submissions', ['received_at'], unique=False,
                    postgresql_where=sa.text("status = 'spam'"))
    op.add_column('forms', sa.Column('spam_count', sa.Integer(), server_default='0', nullable=False))
    op.add_column('forms', sa.Column('last_spam_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('forms', 'last_spam_at')
    op.drop_column('forms', 'spam_count')
    op.drop_index('ix_form_submissions_spam_received', table_name='form_submissions')
    op.drop_index(op.f('ix_form_submissions_org_id_form_id_status_received_at_id'), table_name='form_submissions')
    op.drop_constraint(op.f('ck_form_submissions_spam_reason'), 'form_submissions', type_='check')
    op.drop_constraint(op.f('ck_form_submissions_status'), 'form_submissions', type_='check')
    op.drop_column('form_submissions', 'invalid_fields')
    op.drop_column('form_submissions', 'spam_reason')
    op.drop_column('form_submissions', 'status')
