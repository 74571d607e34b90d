"""Row-level security, the second wall: even a query that forgets `org_id = :org` sees one org only."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import migrate
from app.db import set_org
from app.domain.auth import service as auth_service
from tests.factories import signup
from tests.workers import eventually, running_worker


async def _two_orgs_with_contacts(client):
    a, b = await signup(client, "Org A"), await signup(client, "Org B")
    for account, name in ((a, "Ana"), (b, "Bea")):
        r = await client.post("/v1/contacts", headers=account.headers, json={"first_name": name})
        assert r.status_code == 201, r.text
    return a, b


async def test_an_unfiltered_select_through_the_apps_session_sees_one_org(client, session):
    a, b = await _two_orgs_with_contacts(client)

    for account in (a, b):
        await set_org(session, account.org_id)
        contacts = (await session.execute(text("SELECT org_id::text, first_name FROM contacts"))).all()
        assert {(org, name) for org, name in contacts} == {(account.org_id, "Ana" if account is a else "Bea")}
        assert set(await session.scalars(text("SELECT id::text FROM orgs"))) == {account.org_id}
        assert set(await session.scalars(text("SELECT DISTINCT org_id::text FROM users"))) == {account.org_id}


async def test_rows_of_another_org_cannot_be_written(client, session):
    a, b = await _two_orgs_with_contacts(client)
    await set_org(session, a.org_id)

    with pytest.raises(DBAPIError, match="row-level security"):
        async with session.begin_nested():
            await session.execute(text("INSERT INTO contacts (org_id, id, first_name) VALUES (:org, :id, 'x')"),
                                  {"org": b.org_id, "id": uuid.uuid4()})
    changed = await session.execute(text("UPDATE contacts SET first_name = 'pwned' WHERE first_name = 'Bea'"))
    assert changed.rowcount == 0
    deleted = await session.execute(text("DELETE FROM refresh_tokens"))
    assert deleted.rowcount == 1  # A's login at signup only (rolled back with the test)


async def test_the_app_role_is_neither_owner_nor_superuser(session):
    row = (await session.execute(text(
        "SELECT r.rolsuper, r.rolbypassrls, pg_get_userbyid(c.relowner) = current_user AS owns "
        "FROM pg_roles r, pg_class c WHERE r.rolname = current_user AND c.oid = 'contacts'::regclass"))).one()
    assert (row.rolsuper, row.rolbypassrls, row.owns) == (False, False, False)


async def test_the_org_does_not_outlive_its_transaction_on_a_pooled_connection(api, app_database):
    a = await signup(api, "Org A")
    assert (await api.post("/v1/contacts", headers=a.headers, json={"first_name": "Ana"})).status_code == 201

    async with app_database.engine.connect() as conn:
        async with conn.begin():
            await conn.execute(text("SELECT set_config('crm.org_id', :org, true)"), {"org": a.org_id})
            assert await conn.scalar(text("SELECT count(*) FROM contacts")) == 1
        async with conn.begin():  # the same connection, the next transaction: no org, no rows, no error
            assert await conn.scalar(text("SELECT count(*) FROM contacts")) == 0
            assert await conn.scalar(text("SELECT count(*) FROM orgs")) == 0


async def test_lookups_before_the_org_is_known_still_work_and_stay_read_only_for_others(client, session):
    a, b = await _two_orgs_with_contacts(client)
    key = await a.api_key(["contacts:read"])
    assert (await client.get("/v1/contacts", headers=key)).json()["data"][0]["first_name"] == "Ana"

    await set_org(session, b.org_id)
    # the key -> org mapping is readable by everyone, its rows writable by their own org only
    assert await session.scalar(text("SELECT count(*) FROM login_emails WHERE org_id = :a"), {"a": a.org_id}) == 1
    gone = await session.execute(text("DELETE FROM api_key_prefixes WHERE org_id = :a"), {"a": a.org_id})
    assert gone.rowcount == 0
    assert (await client.get("/v1/contacts", headers=key)).status_code == 200


def test_migrations_grant_the_app_role_rows_only():
    statements = migrate.grant_statements('app"role')
    assert statements[0] == 'GRANT USAGE ON SCHEMA public TO "app""role"'
    assert not any("ALL PRIVILEGES" in s or "TRUNCATE" in s for s in statements)


async def test_sweeps_refuse_a_role_that_row_level_security_limits(fast_settings, app_database_url):
    from app.db import Database, SweepRoleLimited, ensure_sweeps_bypass_rls

    db = Database.from_settings(fast_settings.model_copy(update={"database_sweep_url": app_database_url}),
                                sweeps=True)
    try:
        with pytest.raises(SweepRoleLimited, match="BYPASSRLS"):
            await ensure_sweeps_bypass_rls(db)
    finally:
        await db.dispose()


async def test_a_worker_acts_for_each_org_and_sweeps_across_them(api, fast_settings, database):
    """Events of two orgs reach each org's webhook-free outbox end (dispatched) with the app role limited."""
    a, b = await signup(api, "Org A"), await signup(api, "Org B")
    for account in (a, b):
        assert (await api.post("/v1/contacts", headers=account.headers, json={"first_name": "X"})).status_code == 201

    async def all_dispatched():
        async with database.engine.connect() as conn:
            pending = 0
            for account in (a, b):
                async with conn.begin():
                    await conn.execute(text("SELECT set_config('crm.org_id', :org, true)"), {"org": account.org_id})
                    pending += await conn.scalar(text("SELECT count(*) FROM events WHERE dispatched_at IS NULL"))
            return pending == 0

    async with running_worker(fast_settings):
        await eventually(all_dispatched)


async def test_bearer_resolution_sets_the_org(client, session, settings):
    a = await signup(client, "Org A")
    await session.execute(text("SELECT set_config('crm.org_id', '', true)"))
    await auth_service.resolve_bearer(session, settings, a.access_token)
    assert await session.scalar(text("SELECT current_setting('crm.org_id')")) == a.org_id
