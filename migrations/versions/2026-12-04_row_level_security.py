"""row-level security: every tenant table admits only the rows of the org the transaction acts for

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 21:00:00.000000+00:00

The app sets `crm.org_id` per transaction (`app.db.set_org`, `set_config(..., true)`); the policies compare
every row's `org_id` (the org's own `id` for `orgs`) with it, for reads and for writes. Unset (or reset to
the empty string at the end of an earlier transaction on the same connection), no row matches.

ENABLE + FORCE: the policies hold for the tables' owner too (a single-role setup still gets the wall);
superusers and roles with BYPASSRLS pass them (the worker's sweeps over every org, README "Database roles").

The global lookups (login email, API-key prefix, public form key -> org) are read before the org is known:
anyone may read them (they hold only the key -> org mapping), but writes are limited to the org's own rows.

Tables with `org_id` are found in the catalog when this runs; a table added later needs the same statements
in its own migration (tests/test_schema_guard.py fails until it has them).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('crm.org_id', true), '')::uuid"
GLOBAL_LOOKUPS = ("login_emails", "api_key_prefixes", "form_keys")


def _tenant_tables() -> list[str]:
    rows = op.get_bind().execute(sa.text(
        "SELECT c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = 'public' AND c.column_name = 'org_id' AND t.table_type = 'BASE TABLE' "
        "ORDER BY c.table_name"))
    return [r[0] for r in rows]


def upgrade() -> None:
    for table in ["orgs", *_tenant_tables()]:
        key = "id" if table == "orgs" else "org_id"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({key} = {CURRENT_ORG}) "
                   f"WITH CHECK ({key} = {CURRENT_ORG})")
        if table in GLOBAL_LOOKUPS:
            op.execute(f"CREATE POLICY lookup_read ON {table} FOR SELECT USING (true)")


def downgrade() -> None:
    for table in ["orgs", *_tenant_tables()]:
        op.execute(f"DROP POLICY IF EXISTS lookup_read ON {table}")
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
