"""Schema guard: `org_id` leads every key and index of a tenant table (ARCHITECTURE.md, "Data rules").

What is checked, for every table of `Base.metadata` (every module under `app/` imported, so nothing hides):
- a tenant table (one with an `org_id` column) has `org_id` first in its primary key, in every unique
  constraint and unique index, and in the local columns of every foreign key; the referenced columns start
  with the referenced table's `org_id` (the one exception: `(org_id) -> orgs(id)`);
- its non-unique indexes lead with `org_id` too, except the few in `INDEXES_WITHOUT_LEADING_ORG_ID`, each
  with its reason;
- a table without `org_id` must be one of `GLOBAL_LOOKUPS` (the documented exception: Citus reference tables);
- both allow-lists hold no stale entries, and every table is visible to alembic (`app/domain/models.py`);
- in the migrated database, every table with `org_id` (and `orgs`) has row-level security enabled and forced,
  with the `tenant_isolation` policy on `crm.org_id` (migration 0020); the global lookups also have the
  `lookup_read` policy (anyone reads the key -> org mapping) and no other table does.

The same rules run against the migrated database (reflected), so a primary key or index that the migrations
built differently from the models is caught too (`alembic check` in test_migrations.py does not compare
primary keys at all). `python -m tests.test_schema_guard` prints the Citus distribution SQL that
docs/scaling.md shows; a test keeps the two equal.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, ForeignKeyConstraint, Index, MetaData, PrimaryKeyConstraint, Table, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PGUUID

import app
import app.domain.models as alembic_models
from app.domain.base import NAMING_CONVENTION, Base

TENANT_KEY = "org_id"
DISTRIBUTION_ANCHOR = "users"  # the first distributed table; every other one is colocated with it
SCALING_DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"

# Looked up before the org is known, keyed by that value, holding the org id. On Citus: reference tables
# (one full copy on every node), so any node can answer the lookup and join it with its shards.
GLOBAL_LOOKUPS: dict[str, str] = {
    "orgs": "the tenant itself: its id is every other table's org_id; a reference table on Citus",
    "login_emails": "login email -> (org, user), read at password login before the org is known",
    "api_key_prefixes": "API-key prefix -> (org, key), read on every API-key request before the org is known",
    "form_keys": "public form key -> (org, form), read by anonymous form submissions",
}

_GIN = ("GIN on a jsonb/tsvector/array column: a GIN index cannot hold the uuid org_id without the btree_gin "
        "extension; queries pair it with org_id = :org (bitmap AND with an org_id btree index)")
_SWEEP = "cross-org sweep run by the worker, by time over all orgs; an org_id-first index cannot serve it"

# Non-unique indexes that legitimately do not lead with org_id. On Citus a non-unique index does not need the
# distribution column (each shard has its own), so these stay valid there.
INDEXES_WITHOUT_LEADING_ORG_ID: dict[str, str] = {
    "ix_activities_custom_fields": _GIN,
    "ix_activities_search": _GIN,
    "ix_companies_custom_fields": _GIN,
    "ix_companies_external_ids": _GIN,
    "ix_companies_search": _GIN,
    "ix_contacts_custom_fields": _GIN,
    "ix_contacts_external_ids": _GIN,
    "ix_contacts_search": _GIN,
    "ix_contacts_tags": _GIN,
    "ix_deals_custom_fields": _GIN,
    "ix_deals_external_ids": _GIN,
    "ix_deals_search": _GIN,
    "ix_leads_custom_fields": _GIN,
    "ix_leads_external_ids": _GIN,
    "ix_leads_search": _GIN,
    "ix_products_custom_fields": _GIN,
    "ix_products_external_ids": _GIN,
    "ix_products_search": _GIN,
    "ix_emails_contact_ids": _GIN,
    "ix_emails_deal_ids": _GIN,
    "ix_emails_lead_ids": _GIN,
    "ix_emails_references": _GIN,
    "ix_campaigns_due": f"{_SWEEP} (campaigns.sending.due: scheduled campaigns whose time came, and sending ones)",
    "ix_emails_send_due": f"{_SWEEP} (mail.sync.due_emails: queued mail whose hand-over was lost, and retries)",
    "ix_automation_runs_queued": f"{_SWEEP} (automations.service.queued: runs whose job was lost)",
    "ix_call_originations_send_due": f"{_SWEEP} (telephony.originate.due: click-to-call requests to hand over)",
    "ix_sms_messages_send_due": f"{_SWEEP} (sms.sending.due: queued texts whose hand-over was lost, and retries)",
    "ix_documents_render_due": f"{_SWEEP} (documents.rendering.pending: documents whose render job was lost)",
    "ix_mailboxes_sync_due": f"{_SWEEP} (mail.sync.due_mailboxes: the periodic sync of every mailbox)",
    "ix_activities_reminder_pending": f"{_SWEEP} (reminders.fire_due: activity.due)",
    "ix_activities_overdue_pending": f"{_SWEEP} (reminders.fire_overdue: activity.overdue)",
    "ix_sla_timers_pending": f"{_SWEEP} (forms.sla.fire: call-back SLA checks)",
    "ix_events_undispatched": f"{_SWEEP} (events.dispatch.undispatched: the outbox sweeper)",
    "ix_form_submissions_spam_received": f"{_SWEEP} (maintenance.purge_old_spam_submissions: spam retention)",
    "ix_events_occurred_at": f"{_SWEEP} (maintenance.purge_old_events: changes-feed retention)",
    "ix_webhook_deliveries_due": f"{_SWEEP} (webhooks.due_deliveries: retries whose hand-over was lost)",
    "ix_imports_unfinished": f"{_SWEEP} (imports.unfinished: queued or interrupted imports)",
    "ix_refresh_tokens_expires_at": f"{_SWEEP} (maintenance.purge_expired_refresh_tokens)",
    "ix_audit_log_occurred_at": f"{_SWEEP} (maintenance.purge_old_audit_entries: audit-log retention)",
    "ix_files_purge_due": f"{_SWEEP} (maintenance.purge_deleted_files: deleted files past the restore window)",
}


@dataclass(frozen=True, order=True)
class Violation:
    table: str
    constraint: str
    problem: str

    def __str__(self) -> str:
        return f"{self.table}: {self.constraint}: {self.problem}"


def _first_name(elements: list) -> str | None:  # noqa: ANN001 - columns or index expressions
    """The name of the leading column, or None when it is an expression (e.g. coalesce(...))."""
    if not elements:
        return None
    return elements[0].name if isinstance(elements[0], Column) else None


def check(metadata: MetaData, global_lookups: dict[str, str] | None = None,
          index_exceptions: dict[str, str] | None = None) -> list[Violation]:
    """Every breach of the tenant-key rule in `metadata`, sorted; an empty list means the schema holds it."""
    lookups = GLOBAL_LOOKUPS if global_lookups is None else global_lookups
    exceptions = INDEXES_WITHOUT_LEADING_ORG_ID if index_exceptions is None else index_exceptions
    found: list[Violation] = []
    seen_indexes: set[str] = set()
    for table in metadata.tables.values():
        name = table.name
        if name in lookups:
            if name != "orgs" and TENANT_KEY not in table.c:
                found.append(Violation(name, "-", "a global lookup must hold the org id (org_id column)"))
            continue
        if TENANT_KEY not in table.c:
            found.append(Violation(name, "-", "no org_id column and not in GLOBAL_LOOKUPS: a new table is either "
                                              "tenant-keyed or an allow-listed global lookup, with its reason"))
            continue
        pk_columns = list(table.primary_key.columns)
        if _first_name(pk_columns) != TENANT_KEY:
            found.append(Violation(name, table.primary_key.name or "primary key",
                                   f"primary key ({', '.join(c.name for c in pk_columns)}) must start with org_id"))
        for constraint in sorted(table.constraints, key=lambda c: str(c.name)):
            if isinstance(constraint, UniqueConstraint) and not isinstance(constraint, PrimaryKeyConstraint):
                cols = list(constraint.columns)
                if _first_name(cols) != TENANT_KEY:
                    found.append(Violation(name, str(constraint.name),
                                           f"unique ({', '.join(c.name for c in cols)}) must start with org_id"))
            elif isinstance(constraint, ForeignKeyConstraint):
                found.extend(_check_fk(name, constraint))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            seen_indexes.add(str(index.name))
            lead = _first_name(list(index.expressions))
            if lead == TENANT_KEY:
                if index.name in exceptions:
                    found.append(Violation(name, str(index.name), "leads with org_id now: remove it from "
                                                                  "INDEXES_WITHOUT_LEADING_ORG_ID"))
                continue
            shown = lead or str(index.expressions[0])
            if index.unique:
                found.append(Violation(name, str(index.name), f"unique index starts with {shown}, not org_id"))
            elif index.name not in exceptions:
                found.append(Violation(name, str(index.name), f"index starts with {shown}, not org_id (add org_id "
                                                              "first, or allow-list it with a reason)"))
    for table_name in sorted(set(lookups) - set(metadata.tables)):
        found.append(Violation(table_name, "-", "in GLOBAL_LOOKUPS but no such table: remove the entry"))
    for index_name in sorted(set(exceptions) - seen_indexes):
        found.append(Violation("-", index_name, "in INDEXES_WITHOUT_LEADING_ORG_ID but no such index: remove it"))
    return sorted(found)


def _check_fk(table: str, fk: ForeignKeyConstraint) -> list[Violation]:
    local = [c.name for c in fk.columns]
    target_table = fk.elements[0].column.table.name
    target = [e.column.name for e in fk.elements]
    shown = f"({', '.join(local)}) -> {target_table}({', '.join(target)})"
    if target_table == "orgs" and local == [TENANT_KEY] and target == ["id"]:
        return []
    problems = []
    if local[0] != TENANT_KEY:
        problems.append(Violation(table, str(fk.name), f"foreign key {shown}: local columns must start with org_id"))
    if target[0] != TENANT_KEY:
        problems.append(Violation(table, str(fk.name), f"foreign key {shown}: referenced columns must start with "
                                                       f"{target_table}.org_id"))
    return problems


def load_all_models() -> MetaData:
    """Import every module under app/ (a table defined anywhere is registered), then return the metadata."""
    for module in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(module.name)
    return Base.metadata


def _reflect(url: str) -> tuple[MetaData, set[str]]:
    """The migrated database's tables (reflected), and which of them are UNLOGGED (reflection drops that)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> tuple[MetaData, set[str]]:
        engine = create_async_engine(url)
        reflected = MetaData()
        async with engine.connect() as conn:
            await conn.run_sync(lambda c: reflected.reflect(c, only=lambda name, _: name != "alembic_version"))
            unlogged = set(await conn.scalars(text(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relpersistence = 'u' "
                "AND relnamespace = 'public'::regnamespace")))
        await engine.dispose()
        return reflected, unlogged

    return asyncio.run(run())


# --- row-level security ---------------------------------------------------------------------------------

CURRENT_ORG = "NULLIF(current_setting('crm.org_id'::text, true), ''::text))::uuid"
RLS_STATEMENTS = """ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {table} USING (org_id = NULLIF(current_setting('crm.org_id', true), '')::uuid)
    WITH CHECK (org_id = NULLIF(current_setting('crm.org_id', true), '')::uuid);"""
_RLS_STATE = """
SELECT c.relname AS table, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       EXISTS (SELECT 1 FROM information_schema.columns k WHERE k.table_schema = 'public'
               AND k.table_name = c.relname AND k.column_name = 'org_id') AS has_org_id,
       coalesce(array_agg(p.policyname || ' ' || p.cmd || ' ' || coalesce(p.qual, '') || ' | '
                          || coalesce(p.with_check, '')) FILTER (WHERE p.policyname IS NOT NULL), '{}') AS policies
FROM pg_class c LEFT JOIN pg_policies p ON p.schemaname = 'public' AND p.tablename = c.relname
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'
GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity ORDER BY c.relname
"""


def rls_violations(rows: list, global_lookups: dict[str, str] | None = None) -> list[Violation]:
    """Breaches of the row-level security rule, from `_RLS_STATE` rows (name, enabled, forced, has_org_id,
    policies as 'name cmd qual | with_check')."""
    lookups = GLOBAL_LOOKUPS if global_lookups is None else global_lookups
    found = []
    for table, enabled, forced, has_org_id, policies in rows:
        if not has_org_id and table != "orgs":
            continue
        key = "id" if table == "orgs" else TENANT_KEY
        wanted = f"tenant_isolation ALL ({key} = ({CURRENT_ORG}) | ({key} = ({CURRENT_ORG})"
        how = RLS_STATEMENTS.format(table=table).replace("org_id =", f"{key} =")
        if not (enabled and forced):
            found.append(Violation(table, "-", f"row-level security not enabled and forced; its migration needs:\n{how}"))
        if wanted not in policies:
            found.append(Violation(table, "tenant_isolation", f"no tenant_isolation policy on crm.org_id; its "
                                                              f"migration needs:\n{how}"))
        others = sorted(set(policies) - {wanted})
        allowed = ["lookup_read SELECT true | "] if table in lookups and table != "orgs" else []
        if others != allowed:
            found.append(Violation(table, "-", f"policies {others} besides tenant_isolation, expected {allowed}"))
    return sorted(found)


async def _rls_rows(url: str, before: str | None = None) -> list:
    """The `_RLS_STATE` rows of the database at `url` (after running `before` in the same, rolled-back
    transaction)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn, conn.begin() as tx:
            for statement in filter(None, (before or "").split(";")):
                await conn.execute(text(statement))
            rows = [tuple(r) for r in await conn.execute(text(_RLS_STATE))]
            await tx.rollback()
        return rows
    finally:
        await engine.dispose()


# --- Citus ---------------------------------------------------------------------------------------------


def _set_null_or_default(fk: ForeignKeyConstraint) -> bool:
    return any((action or "").upper().startswith("SET ") for action in (fk.ondelete, fk.onupdate))


def citus_sql(metadata: MetaData, unlogged: set[str] | None = None,
              global_lookups: dict[str, str] | None = None) -> str:
    """The statements that turn the migrated schema into a Citus one, in foreign-key order. `unlogged`:
    the UNLOGGED tables (default: read from the models' table prefixes)."""
    lookups = GLOBAL_LOOKUPS if global_lookups is None else global_lookups
    if unlogged is None:
        unlogged = {t.name for t in metadata.tables.values() if "UNLOGGED" in (p.upper() for p in t._prefixes)}
    tables = metadata.sorted_tables  # referenced tables before the tables that reference them
    reference = [t for t in tables if t.name in lookups]
    distributed = [t for t in tables if t.name not in lookups]
    distributed.sort(key=lambda t: t.name != DISTRIBUTION_ANCHOR)  # stable: the anchor first, order kept otherwise

    def fks(table: Table) -> list[ForeignKeyConstraint]:
        found = (c for c in table.constraints if isinstance(c, ForeignKeyConstraint))
        return sorted(found, key=lambda c: str(c.name))

    # Citus has no foreign key from a reference table to a distributed table, and none with ON DELETE
    # SET NULL/SET DEFAULT between distributed tables when the key includes the distribution column.
    dropped = [(t, fk) for t in reference for fk in fks(t) if fk.elements[0].column.table.name not in lookups]
    readded = [(t, fk) for t in distributed for fk in fks(t)
               if fk.elements[0].column.table.name not in lookups and _set_null_or_default(fk)]
    lines = ["CREATE EXTENSION IF NOT EXISTS citus;", ""]
    lines += [f"ALTER TABLE {t.name} DROP CONSTRAINT {fk.name};" for t, fk in dropped + readded]
    lines += [""] if dropped or readded else []
    lines += [f"SELECT create_reference_table('{t.name}');" for t in reference]
    lines.append("")
    for table in distributed:
        if table.name == DISTRIBUTION_ANCHOR:
            colocate = ""
        elif table.name in unlogged:  # the non-blocking rebalancer cannot move unlogged shards: own group
            colocate = ", colocate_with => 'none'"
        else:
            colocate = f", colocate_with => '{DISTRIBUTION_ANCHOR}'"
        lines.append(f"SELECT create_distributed_table('{table.name}', '{TENANT_KEY}'{colocate});")
    if readded:
        lines.append("")
    for table, fk in readded:
        target = fk.elements[0].column.table.name
        lines.append(f"ALTER TABLE {table.name} ADD CONSTRAINT {fk.name} FOREIGN KEY "
                     f"({', '.join(c.name for c in fk.columns)}) REFERENCES {target} "
                     f"({', '.join(e.column.name for e in fk.elements)});")
    return "\n".join(lines) + "\n"


# --- tests ---------------------------------------------------------------------------------------------


def test_every_tenant_table_leads_with_org_id():
    violations = check(load_all_models())
    assert not violations, "tenant-key rule broken:\n" + "\n".join(map(str, violations))


def test_alembic_sees_every_table():
    """migrations/env.py uses app.domain.models: a table defined elsewhere would get no migration."""
    metadata = load_all_models()
    exported = {getattr(alembic_models, n).__table__.name for n in alembic_models.__all__ if n != "Base"}
    missing = sorted(set(metadata.tables) - exported)
    assert not missing, f"tables not imported by app/domain/models.py (invisible to alembic): {missing}"


def test_the_guard_reports_bad_tables():
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    uuid = PGUUID(as_uuid=True)
    Table("orgs", metadata, Column("id", uuid, primary_key=True))
    Table("contacts", metadata, Column("org_id", uuid, primary_key=True), Column("id", uuid, primary_key=True))
    Table("bad_pk", metadata, Column("id", uuid, primary_key=True), Column("org_id", uuid))
    Table("bad_fk", metadata,
          Column("org_id", uuid, primary_key=True), Column("id", uuid, primary_key=True),
          Column("contact_id", uuid), Column("email", JSONB), Column("code", uuid),
          ForeignKeyConstraint(["contact_id"], ["contacts.id"], name="fk_bad_fk_contact"),
          ForeignKeyConstraint(["org_id", "contact_id"], ["contacts.org_id", "contacts.id"], name="fk_good"),
          UniqueConstraint("code", name="uq_bad_fk_code"),
          Index("ix_bad_fk_contact", "contact_id"),
          Index("uq_bad_fk_code_idx", "code", "org_id", unique=True),
          Index("ix_bad_fk_email", "email", postgresql_using="gin"),
          Index("ix_bad_fk_org_id_code", "org_id", "code"))
    Table("global_thing", metadata, Column("key", uuid, primary_key=True))

    violations = check(metadata, global_lookups={"orgs": "the tenant", "gone": "stale"},
                       index_exceptions={"ix_bad_fk_email": "GIN", "ix_bad_fk_org_id_code": "stale",
                                         "ix_missing": "stale"})

    assert [(v.table, v.constraint) for v in violations] == [
        ("-", "ix_missing"),
        ("bad_fk", "fk_bad_fk_contact"),
        ("bad_fk", "fk_bad_fk_contact"),
        ("bad_fk", "ix_bad_fk_contact"),
        ("bad_fk", "ix_bad_fk_org_id_code"),
        ("bad_fk", "uq_bad_fk_code"),
        ("bad_fk", "uq_bad_fk_code_idx"),
        ("bad_pk", "pk_bad_pk"),
        ("global_thing", "-"),
        ("gone", "-"),
    ]
    messages = "\n".join(map(str, violations))
    assert "bad_pk: pk_bad_pk: primary key (id) must start with org_id" in messages
    assert ("bad_fk: fk_bad_fk_contact: foreign key (contact_id) -> contacts(id): local columns must start with "
            "org_id") in messages
    assert "bad_fk: fk_bad_fk_contact: foreign key (contact_id) -> contacts(id): referenced columns must start " \
           "with contacts.org_id" in messages
    assert "bad_fk: uq_bad_fk_code: unique (code) must start with org_id" in messages
    assert "bad_fk: uq_bad_fk_code_idx: unique index starts with code, not org_id" in messages
    assert "global_thing: -: no org_id column and not in GLOBAL_LOOKUPS" in messages


def test_the_migrated_database_holds_the_rule_too(database_url):
    """The database as the migrations built it (not the models): same rules, same Citus statements."""
    reflected, unlogged = _reflect(database_url)
    violations = check(reflected)
    assert not violations, "tenant-key rule broken in the migrated database:\n" + "\n".join(map(str, violations))
    assert citus_sql(reflected, unlogged) == citus_sql(load_all_models())


def test_every_tenant_table_has_row_level_security(database_url):
    """A table with org_id that the policies do not cover (e.g. one added after migration 0020) fails here."""
    violations = rls_violations(asyncio.run(_rls_rows(database_url)))
    assert not violations, "row-level security missing:\n" + "\n".join(map(str, violations))


def test_the_rls_guard_reports_an_unprotected_table(database_url):
    rows = asyncio.run(_rls_rows(database_url, before=(
        "CREATE TABLE rls_probe (org_id uuid, id uuid);"
        "CREATE TABLE rls_half (org_id uuid);"
        "ALTER TABLE rls_half ENABLE ROW LEVEL SECURITY;"
        "CREATE POLICY tenant_isolation ON rls_half USING (org_id IS NOT NULL);"
        "CREATE POLICY lookup_read ON contacts FOR SELECT USING (true);")))

    violations = rls_violations(rows)

    assert [(v.table, v.constraint) for v in violations] == [
        ("contacts", "-"), ("rls_half", "-"), ("rls_half", "-"), ("rls_half", "tenant_isolation"),
        ("rls_probe", "-"), ("rls_probe", "tenant_isolation")]
    messages = "\n".join(map(str, violations))
    assert "rls_probe: -: row-level security not enabled and forced" in messages
    assert "ALTER TABLE rls_probe FORCE ROW LEVEL SECURITY;" in messages


def test_scaling_doc_lists_every_table_for_citus():
    sql = citus_sql(load_all_models())
    assert sql in SCALING_DOC.read_text(), (
        "docs/scaling.md is missing the current Citus statements: run `python -m tests.test_schema_guard` "
        "and paste its output into the Citus section")


if __name__ == "__main__":
    print(citus_sql(load_all_models()), end="")
