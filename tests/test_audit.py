"""The audit log: record writes with before/after, exports, logins, refreshes, API keys, roles, settings;
filters, keyset pages, admin-only access, org isolation and retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from tests.factories import PASSWORD, signup

UA = {"User-Agent": "audit-test/1.0"}


async def _log(client, acct, **params):
    r = await client.get("/v1/audit-log", headers=acct.headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def test_contact_writes_are_audited_with_before_and_after(client):
    acct = await signup(client)
    headers = {**acct.headers, **UA}
    c = (await client.post("/v1/contacts", headers=headers, json={"first_name": "Ana", "email": "ana@example.com"})).json()
    r = await client.patch(f"/v1/contacts/{c['id']}", headers=headers, json={"email": "ana@example.org"})
    assert r.status_code == 200, r.text
    assert (await client.delete(f"/v1/contacts/{c['id']}", headers=headers)).status_code == 204
    assert (await client.post(f"/v1/contacts/{c['id']}/restore", headers=headers)).status_code == 200

    rows = await _log(client, acct, object_type="contact", object_id=c["id"])
    assert [row["action"] for row in rows] == ["restore", "delete", "update", "create"]  # newest first
    restore, delete, update, create = rows
    assert update["changes"] == {"email": ["ana@example.com", "ana@example.org"]}
    assert create["changes"]["first_name"] == [None, "Ana"] and create["changes"]["email"] == [None, "ana@example.com"]
    assert delete["changes"]["email"] == ["ana@example.org", None]
    for row in rows:
        assert row["actor"] == {"type": "user", "id": acct.user_id}
        assert row["object_id"] == c["id"] and row["object_type"] == "contact"
        assert row["ip"] == "127.0.0.1" and row["user_agent"] == "audit-test/1.0"
        assert datetime.fromisoformat(row["occurred_at"]).tzinfo is not None
    assert set(create) == {"id", "actor", "action", "object_type", "object_id", "changes", "ip", "user_agent",
                           "occurred_at"}


async def test_a_write_that_fails_leaves_no_audit_row(client):
    acct = await signup(client)
    c = (await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})).json()
    r = await client.patch(f"/v1/contacts/{c['id']}", headers={**acct.headers, "If-Match": '"7"'},
                           json={"first_name": "Bea"})
    assert r.status_code == 412
    assert [row["action"] for row in await _log(client, acct, object_id=c["id"])] == ["create"]


async def test_logins_failed_and_succeeded_and_refresh_are_audited(client):
    acct = await signup(client)
    wrong = await client.post("/v1/auth/token", headers=UA, data={"username": acct.email, "password": "not it at all"})
    assert wrong.status_code == 401
    ok = await client.post("/v1/auth/token", headers=UA, data={"username": acct.email, "password": PASSWORD})
    assert ok.status_code == 200
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": ok.json()["refresh_token"]})).status_code == 200

    rows = await _log(client, acct, object_id=acct.user_id)
    assert [row["action"] for row in rows] == ["token.refreshed", "login.succeeded", "login.failed"]
    refreshed, succeeded, failed = rows
    assert failed["actor"] == {"type": "anonymous", "id": None}
    assert failed["object_type"] == "user" and failed["changes"] == {"reason": [None, "invalid_credentials"]}
    assert failed["user_agent"] == "audit-test/1.0" and failed["ip"] == "127.0.0.1"
    assert succeeded["actor"] == {"type": "user", "id": acct.user_id} and succeeded["object_type"] == "user"
    assert refreshed["actor"] == {"type": "user", "id": acct.user_id}
    only_failures = await _log(client, acct, action="login.failed")
    assert [row["id"] for row in only_failures] == [failed["id"]]


async def test_api_keys_roles_settings_and_exports_are_audited(client):
    acct = await signup(client)
    key = (await client.post("/v1/api-keys", headers=acct.headers, json={"name": "ERP", "scopes": ["contacts:read"]})).json()
    assert (await client.delete(f"/v1/api-keys/{key['id']}", headers=acct.headers)).status_code == 204
    member = await acct.invite("member")
    r = await client.patch(f"/v1/users/{member.user_id}", headers=acct.headers, json={"role": "manager"})
    assert r.status_code == 200, r.text
    r = await client.patch("/v1/org", headers=acct.headers, json={"timezone": "Europe/Berlin", "name": None})
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/contacts/export.csv", headers=acct.headers)).status_code == 200

    created, revoked = (await _log(client, acct, object_id=key["id"]))[::-1]
    assert created["action"] == "api_key.created" and created["object_type"] == "api_key"
    assert created["changes"] == {"name": [None, "ERP"], "scopes": [None, ["contacts:read"]]}
    assert revoked["action"] == "api_key.revoked" and revoked["actor"]["id"] == acct.user_id
    role = (await _log(client, acct, action="role.changed"))[0]
    assert role["object_id"] == member.user_id and role["changes"] == {"role": ["member", "manager"]}
    settings_row = (await _log(client, acct, action="settings.changed"))[0]
    assert settings_row["object_id"] == acct.org_id
    assert settings_row["changes"] == {"timezone": ["UTC", "Europe/Berlin"]}
    export = (await _log(client, acct, action="export"))[0]
    assert export["object_type"] == "contact" and export["actor"] == {"type": "user", "id": acct.user_id}


async def test_filters_and_keyset_pages(client):
    acct = await signup(client)
    member = await acct.invite("member")
    for i in range(5):
        r = await client.post("/v1/contacts", headers=acct.headers, json={"first_name": f"C{i}"})
        assert r.status_code == 201
    middle = datetime.now(UTC).isoformat()
    mine = (await client.post("/v1/contacts", headers=member.headers, json={"first_name": "M"})).json()

    seen, cursor = [], None
    while True:
        params = {"object_type": "contact", "action": "create", "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/audit-log", headers=acct.headers, params=params)
        assert r.status_code == 200, r.text
        seen += r.json()["data"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and len({row["id"] for row in seen}) == 6
    times = [row["occurred_at"] for row in seen]
    assert times == sorted(times, reverse=True)

    by_member = await _log(client, acct, actor_id=member.user_id, object_type="contact")
    assert [row["object_id"] for row in by_member] == [mine["id"]]
    after = await _log(client, acct, object_type="contact", **{"from": middle})
    assert [row["object_id"] for row in after] == [mine["id"]]
    before = await _log(client, acct, object_type="contact", to=middle)
    assert len(before) == 5
    oldest_first = await _log(client, acct, object_type="contact", sort="occurred_at")
    assert oldest_first[-1]["object_id"] == mine["id"]
    several = await _log(client, acct, action=["create", "role.changed"], object_type="contact")
    assert len(several) == 6
    bad = await client.get("/v1/audit-log", headers=acct.headers, params={"from": "yesterday"})
    assert bad.status_code == 422


async def test_only_admins_and_keys_with_audit_scope_read_it(client):
    acct = await signup(client)
    assert (await client.get("/v1/audit-log")).status_code == 401
    member = await acct.invite("member")
    r = await client.get("/v1/audit-log", headers=member.headers)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    manager = await acct.invite("manager")
    assert (await client.get("/v1/audit-log", headers=manager.headers)).status_code == 403
    admin = await acct.invite("admin")
    assert (await client.get("/v1/audit-log", headers=admin.headers)).status_code == 200
    assert (await client.get("/v1/audit-log", headers=await acct.api_key(["contacts:read"]))).status_code == 403
    key = await acct.api_key(["audit:read"])
    assert (await client.get("/v1/audit-log", headers=key)).status_code == 200


async def test_rows_of_another_org_are_never_visible(client):
    a, b = await signup(client, "A"), await signup(client, "B")
    theirs = (await client.post("/v1/contacts", headers=b.headers, json={"first_name": "B only"})).json()
    await client.post("/v1/auth/token", data={"username": b.email, "password": "not the password"})
    rows = await _log(client, a, limit=200)
    assert all(row["object_id"] != theirs["id"] and row["object_id"] != b.user_id for row in rows)
    assert await _log(client, a, object_id=theirs["id"]) == []
    assert await _log(client, a, actor_id=b.user_id) == []
    assert len(await _log(client, b, object_id=theirs["id"])) == 1


async def test_api_key_writes_name_the_key_as_actor(client):
    acct = await signup(client)
    key_headers = await acct.api_key(["contacts:write"])
    me = (await client.get("/v1/me", headers=key_headers)).json()
    c = (await client.post("/v1/contacts", headers=key_headers, json={"first_name": "Via key"})).json()
    row = (await _log(client, acct, object_id=c["id"]))[0]
    assert row["actor"] == {"type": "api_key", "id": me["api_key"]["id"]}


async def test_retention_job_deletes_old_rows(committed_client, database, settings):
    from app.workers.maintenance import purge_old_audit_entries

    c = committed_client
    acct = await signup(c)
    first = (await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Old"})).json()
    second = (await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "New"})).json()
    async with database.sessions.begin() as s:
        await s.execute(text("UPDATE audit_log SET occurred_at = now() - make_interval(days => :days + 1) "
                             "WHERE org_id = :org AND object_id = :id"),
                        {"org": uuid.UUID(acct.org_id), "id": uuid.UUID(first["id"]),
                         "days": settings.audit_retention_days})
    assert await purge_old_audit_entries({"db": database, "settings": settings}) >= 1
    assert await _log(c, acct, object_id=first["id"]) == []
    assert len(await _log(c, acct, object_id=second["id"])) == 1



async def test_user_invite_edit_and_deactivation_are_audited(client):
    acct = await signup(client)
    member = await acct.invite("member")
    r = await client.patch(f"/v1/users/{member.user_id}", headers=acct.headers, json={"name": "Renamed"})
    assert r.status_code == 200
    assert (await client.delete(f"/v1/users/{member.user_id}", headers=acct.headers)).status_code == 204
    rows = await _log(client, acct, object_type="user", object_id=member.user_id, action=["create", "update"])
    deactivated, renamed, created = rows
    assert created["action"] == "create" and created["changes"]["role"] == [None, "member"]
    assert renamed["changes"] == {"name": ["A member", "Renamed"]}
    assert deactivated["changes"] == {"active": [True, False]}
    assert all(row["actor"] == {"type": "user", "id": acct.user_id} for row in rows)


async def test_the_client_address_behind_trusted_proxies(client, settings, database, redis):
    import httpx

    from app.main import create_app

    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    acct = await signup(client)
    c = (await client.post("/v1/contacts", headers={**acct.headers, **forwarded}, json={"first_name": "A"})).json()
    assert (await _log(client, acct, object_id=c["id"]))[0]["ip"] == "127.0.0.1"  # nobody's header is believed

    behind_proxy = create_app(settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]}), db=database,
                              redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=behind_proxy), base_url="http://crm.test") as p:
        other = await signup(p)
        c = (await p.post("/v1/contacts", headers={**other.headers, **forwarded}, json={"first_name": "B"})).json()
        assert (await _log(p, other, object_id=c["id"]))[0]["ip"] == "203.0.113.9"


async def test_personal_data_export_and_erasure_are_audited_without_the_persons_values(client):
    acct = await signup(client)
    c = (await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "Zelda", "email": "z@example.com"})).json()
    await client.patch(f"/v1/contacts/{c['id']}", headers=acct.headers, json={"email": "zelda@example.com"})
    assert (await client.get(f"/v1/contacts/{c['id']}/export", headers=acct.headers)).status_code == 200
    assert (await client.post(f"/v1/contacts/{c['id']}/erase", headers=acct.headers)).status_code == 202
    rows = await _log(client, acct, object_id=c["id"])
    assert [row["action"] for row in rows] == ["erase", "export", "update", "create"]
    assert all(row["actor"] == {"type": "user", "id": acct.user_id} for row in rows)
    assert all(row["changes"] == {} for row in rows)  # who, what and when stay; the person's values go
