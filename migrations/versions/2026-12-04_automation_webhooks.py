"""automation webhooks: each rule's signing secret, and the retries of a run's current webhook action

Existing rules get a fresh `whsec_` secret each (rotate it to read it).

Revision ID: 0035
Revises: 0029
Create Date: 2026-12-04 10:00:00.000000+00:00
"""

import base64
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0035'
down_revision: str | None = '0029'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('automations', sa.Column('webhook_secret', sa.String(length=64), nullable=True))
    bind = op.get_bind()
    for org_id, rule_id in bind.execute(sa.text("SELECT org_id, id FROM automations")).all():
        bind.execute(sa.text("UPDATE automations SET webhook_secret = :s WHERE org_id = :o AND id = :i"),
                     {"s": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(), "o": org_id, "i": rule_id})
    op.alter_column('automations', 'webhook_secret', nullable=False)
    op.add_column('automation_runs', sa.Column('retries', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('automation_runs', 'retries')
    op.drop_column('automations', 'webhook_secret')
