"""customer metrics: won deals, lifetime value, last won, last activity on contacts and companies

Kept by triggers, so that every path that writes a deal or an activity (the API, batches, imports, COPY,
sweeps) keeps them exact in its own transaction. Statement-level triggers with transition tables: a batch of
any size recomputes each affected contact and company once, from its deals (the org_id-leading indexes) and
its done activities (two partial indexes added here). A change of the org's default currency recomputes the
org. The existing rows are backfilled. The functions are SECURITY INVOKER: row-level security holds.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04 08:04:30.830931+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0028'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Recompute the won-deal metrics of (org, id) pairs of one table; deals in the org's default currency only.
REFRESH_WON = """
CREATE FUNCTION crm_refresh_won(p_table text, p_column text, p_orgs uuid[], p_ids uuid[]) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
  IF array_length(array_remove(p_ids, NULL), 1) IS NULL THEN
    RETURN;  -- no record to refresh (deals without a contact or company): no statement to plan
  END IF;
  EXECUTE format($q$
    UPDATE %1$I r SET won_deals_count = m.n, lifetime_value = m.v, last_won_at = m.last, metrics_currency = m.cur
    FROM (SELECT t.org, t.id, o.default_currency AS cur, count(d.id) AS n,
                 coalesce(sum(d.value_amount), 0) AS v, max(d.closed_at) AS last
          FROM (SELECT DISTINCT org, id FROM unnest($1, $2) AS t(org, id) WHERE id IS NOT NULL) t
          JOIN orgs o ON o.id = t.org
          LEFT JOIN deals d ON d.org_id = t.org AND d.%2$I = t.id AND d.status = 'won'
                           AND d.deleted_at IS NULL AND d.currency = o.default_currency
          GROUP BY t.org, t.id, o.default_currency) m
    WHERE r.org_id = m.org AND r.id = m.id
      AND (r.won_deals_count, r.lifetime_value, r.last_won_at, r.metrics_currency)
          IS DISTINCT FROM (m.n::int, m.v, m.last, m.cur)$q$, p_table, p_column)
  USING p_orgs, p_ids;
END $$"""

REFRESH_ACTIVITY = """
CREATE FUNCTION crm_refresh_last_activity(p_table text, p_column text, p_orgs uuid[], p_ids uuid[]) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
  IF array_length(array_remove(p_ids, NULL), 1) IS NULL THEN
    RETURN;  -- no record to refresh (deals without a contact or company): no statement to plan
  END IF;
  EXECUTE format($q$
    UPDATE %1$I r SET last_activity_at = m.last
    FROM (SELECT t.org, t.id, (SELECT max(a.done_at) FROM activities a
                               WHERE a.org_id = t.org AND a.%2$I = t.id AND a.deleted_at IS NULL
                                 AND a.done_at IS NOT NULL) AS last
          FROM (SELECT DISTINCT org, id FROM unnest($1, $2) AS t(org, id) WHERE id IS NOT NULL) t) m
    WHERE r.org_id = m.org AND r.id = m.id AND r.last_activity_at IS DISTINCT FROM m.last$q$, p_table, p_column)
  USING p_orgs, p_ids;
END $$"""

# What a deal row contributes: a row counts only when won (before or after the write).
DEALS_TRIGGER = """
CREATE FUNCTION crm_deals_metrics() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
  orgs uuid[]; contacts uuid[]; companies uuid[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(n.org_id), array_agg(n.contact_id), array_agg(n.company_id) INTO orgs, contacts, companies
    FROM new_rows n WHERE n.status = 'won';
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(o.org_id), array_agg(o.contact_id), array_agg(o.company_id) INTO orgs, contacts, companies
    FROM old_rows o WHERE o.status = 'won';
  ELSE
    SELECT array_agg(x.org_id), array_agg(x.contact_id), array_agg(x.company_id) INTO orgs, contacts, companies
    FROM old_rows o JOIN new_rows n ON n.org_id = o.org_id AND n.id = o.id,
         LATERAL (VALUES (o.org_id, o.contact_id, o.company_id), (n.org_id, n.contact_id, n.company_id))
           AS x(org_id, contact_id, company_id)
    WHERE (o.status = 'won' OR n.status = 'won')
      AND (o.status, o.value_amount, o.currency, o.contact_id, o.company_id, o.closed_at, o.deleted_at)
          IS DISTINCT FROM (n.status, n.value_amount, n.currency, n.contact_id, n.company_id, n.closed_at, n.deleted_at);
  END IF;
  IF orgs IS NOT NULL THEN
    PERFORM crm_refresh_won('contacts', 'contact_id', orgs, contacts);
    PERFORM crm_refresh_won('companies', 'company_id', orgs, companies);
  END IF;
  RETURN NULL;
END $$"""

ACTIVITIES_TRIGGER = """
CREATE FUNCTION crm_activities_metrics() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
  orgs uuid[]; contacts uuid[]; companies uuid[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(n.org_id), array_agg(n.contact_id), array_agg(n.company_id) INTO orgs, contacts, companies
    FROM new_rows n WHERE n.done_at IS NOT NULL;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(o.org_id), array_agg(o.contact_id), array_agg(o.company_id) INTO orgs, contacts, companies
    FROM old_rows o WHERE o.done_at IS NOT NULL;
  ELSE
    SELECT array_agg(x.org_id), array_agg(x.contact_id), array_agg(x.company_id) INTO orgs, contacts, companies
    FROM old_rows o JOIN new_rows n ON n.org_id = o.org_id AND n.id = o.id,
         LATERAL (VALUES (o.org_id, o.contact_id, o.company_id), (n.org_id, n.contact_id, n.company_id))
           AS x(org_id, contact_id, company_id)
    WHERE (o.done_at IS NOT NULL OR n.done_at IS NOT NULL)
      AND (o.done_at, o.contact_id, o.company_id, o.deleted_at)
          IS DISTINCT FROM (n.done_at, n.contact_id, n.company_id, n.deleted_at);
  END IF;
  IF orgs IS NOT NULL THEN
    PERFORM crm_refresh_last_activity('contacts', 'contact_id', orgs, contacts);
    PERFORM crm_refresh_last_activity('companies', 'company_id', orgs, companies);
  END IF;
  RETURN NULL;
END $$"""

# The rows that exist already (tests/test_customer_metrics.py runs these too).
BACKFILL = [f"SELECT {function}('{table}', '{column}', array_agg(org_id), array_agg(id)) FROM {table}"
            for table, column in (("contacts", "contact_id"), ("companies", "company_id"))
            for function in ("crm_refresh_won", "crm_refresh_last_activity")]

ORGS_TRIGGER = """
CREATE FUNCTION crm_orgs_metrics() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER AS $$
BEGIN
  IF NEW.default_currency IS DISTINCT FROM OLD.default_currency THEN
    PERFORM crm_refresh_won('contacts', 'contact_id', array_agg(c.org_id), array_agg(c.id))
    FROM contacts c WHERE c.org_id = NEW.id;
    PERFORM crm_refresh_won('companies', 'company_id', array_agg(c.org_id), array_agg(c.id))
    FROM companies c WHERE c.org_id = NEW.id;
  END IF;
  RETURN NULL;
END $$"""


def upgrade() -> None:
    op.create_index('ix_activities_contact_done', 'activities', ['org_id', 'contact_id', 'done_at'], unique=False,
                    postgresql_where=sa.text('deleted_at IS NULL AND done_at IS NOT NULL'))
    op.create_index('ix_activities_company_done', 'activities', ['org_id', 'company_id', 'done_at'], unique=False,
                    postgresql_where=sa.text('deleted_at IS NULL AND done_at IS NOT NULL'))
    op.add_column('companies', sa.Column('won_deals_count', sa.Integer(), server_default='0', nullable=False))
    op.add_column('companies', sa.Column('lifetime_value', sa.Numeric(precision=18, scale=2), server_default='0', nullable=False))
    op.add_column('companies', sa.Column('last_won_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('companies', sa.Column('last_activity_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('companies', sa.Column('metrics_currency', sa.String(length=3), nullable=True))
    op.create_index(op.f('ix_companies_org_id_last_activity_at_id'), 'companies', ['org_id', 'last_activity_at', 'id'], unique=False)
    op.create_index(op.f('ix_companies_org_id_last_won_at_id'), 'companies', ['org_id', 'last_won_at', 'id'], unique=False)
    op.create_index(op.f('ix_companies_org_id_lifetime_value_id'), 'companies', ['org_id', 'lifetime_value', 'id'], unique=False)
    op.create_index(op.f('ix_companies_org_id_won_deals_count_id'), 'companies', ['org_id', 'won_deals_count', 'id'], unique=False)
    op.add_column('contacts', sa.Column('won_deals_count', sa.Integer(), server_default='0', nullable=False))
    op.add_column('contacts', sa.Column('lifetime_value', sa.Numeric(precision=18, scale=2), server_default='0', nullable=False))
    op.add_column('contacts', sa.Column('last_won_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('contacts', sa.Column('last_activity_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('contacts', sa.Column('metrics_currency', sa.String(length=3), nullable=True))
    op.create_index(op.f('ix_contacts_org_id_last_activity_at_id'), 'contacts', ['org_id', 'last_activity_at', 'id'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_last_won_at_id'), 'contacts', ['org_id', 'last_won_at', 'id'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_lifetime_value_id'), 'contacts', ['org_id', 'lifetime_value', 'id'], unique=False)
    op.create_index(op.f('ix_contacts_org_id_won_deals_count_id'), 'contacts', ['org_id', 'won_deals_count', 'id'], unique=False)

    for sql in (REFRESH_WON, REFRESH_ACTIVITY, DEALS_TRIGGER, ACTIVITIES_TRIGGER, ORGS_TRIGGER):
        op.execute(sql)
    for table, function in (("deals", "crm_deals_metrics"), ("activities", "crm_activities_metrics")):
        op.execute(f"CREATE TRIGGER {table}_metrics_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_metrics_update AFTER UPDATE ON {table} "
                   f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
        op.execute(f"CREATE TRIGGER {table}_metrics_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
    op.execute("CREATE TRIGGER orgs_metrics AFTER UPDATE OF default_currency ON orgs "
               "FOR EACH ROW EXECUTE FUNCTION crm_orgs_metrics()")
    for statement in BACKFILL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER orgs_metrics ON orgs")
    for table in ("deals", "activities"):
        for action in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER {table}_metrics_{action} ON {table}")
    for function in ("crm_orgs_metrics()", "crm_activities_metrics()", "crm_deals_metrics()",
                     "crm_refresh_last_activity(text, text, uuid[], uuid[])",
                     "crm_refresh_won(text, text, uuid[], uuid[])"):
        op.execute(f"DROP FUNCTION {function}")
    op.drop_index('ix_activities_company_done', table_name='activities',
                  postgresql_where=sa.text('deleted_at IS NULL AND done_at IS NOT NULL'))
    op.drop_index('ix_activities_contact_done', table_name='activities',
                  postgresql_where=sa.text('deleted_at IS NULL AND done_at IS NOT NULL'))
    op.drop_index(op.f('ix_contacts_org_id_won_deals_count_id'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_lifetime_value_id'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_last_won_at_id'), table_name='contacts')
    op.drop_index(op.f('ix_contacts_org_id_last_activity_at_id'), table_name='contacts')
    op.drop_column('contacts', 'metrics_currency')
    op.drop_column('contacts', 'last_activity_at')
    op.drop_column('contacts', 'last_won_at')
    op.drop_column('contacts', 'lifetime_value')
    op.drop_column('contacts', 'won_deals_count')
    op.drop_index(op.f('ix_companies_org_id_won_deals_count_id'), table_name='companies')
    op.drop_index(op.f('ix_companies_org_id_lifetime_value_id'), table_name='companies')
    op.drop_index(op.f('ix_companies_org_id_last_won_at_id'), table_name='companies')
    op.drop_index(op.f('ix_companies_org_id_last_activity_at_id'), table_name='companies')
    op.drop_column('companies', 'metrics_currency')
    op.drop_column('companies', 'last_activity_at')
    op.drop_column('companies', 'last_won_at')
    op.drop_column('companies', 'lifetime_value')
    op.drop_column('companies', 'won_deals_count')
