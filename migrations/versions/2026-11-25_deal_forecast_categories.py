"""deal forecast categories

Stages carry a forecast category (pipeline, best_case, commit, omitted), derived from their kind and
probability unless set; a deal copies its stage's category when it enters the stage, unless the client sets
one. Existing stages get the derived default, existing deals their stage's category. Closed deals get an
index on (org_id, closed_at) for the win-loss report's periods.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 14:39:27.094773+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = "forecast_category IN ('pipeline', 'best_case', 'commit', 'omitted')"


def upgrade() -> None:
    op.add_column('pipeline_stages', sa.Column('forecast_category', sa.String(length=16), nullable=True))
    op.execute("""
        UPDATE pipeline_stages SET forecast_category = CASE
            WHEN kind = 'won' THEN 'commit'
            WHEN kind = 'lost' THEN 'omitted'
            WHEN probability >= 70 THEN 'commit'
            WHEN probability >= 40 THEN 'best_case'
            ELSE 'pipeline' END""")
    op.alter_column('pipeline_stages', 'forecast_category', nullable=False)
    op.create_check_constraint(op.f('ck_pipeline_stages_forecast_category'), 'pipeline_stages', CATEGORIES)

    op.add_column('deals', sa.Column('forecast_category', sa.String(length=16), server_default='pipeline',
                                     nullable=False))
    op.execute("""
        UPDATE deals SET forecast_category = s.forecast_category
        FROM pipeline_stages s
        WHERE s.org_id = deals.org_id AND s.id = deals.stage_id AND s.forecast_category <> 'pipeline'""")
    op.create_check_constraint(op.f('ck_deals_forecast_category'), 'deals', CATEGORIES)
    op.create_index(op.f('ix_deals_org_id_closed_at'), 'deals', ['org_id', 'closed_at'], unique=False,
                    postgresql_where=sa.text('closed_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index(op.f('ix_deals_org_id_closed_at'), table_name='deals', postgresql_where=sa.text('closed_at IS NOT NULL'))
    op.drop_constraint(op.f('ck_deals_forecast_category'), 'deals', type_='check')
    op.drop_column('deals', 'forecast_category')
    op.drop_constraint(op.f('ck_pipeline_stages_forecast_category'), 'pipeline_stages', type_='check')
    op.drop_column('pipeline_stages', 'forecast_category')
