"""API keys: shown once, hashed at rest, scoped, revocable, with last_used_at."""

from __future__ import annotations

from sqlalchemy import select

from app.domain.auth.models import ApiKey
from tests.factories import signup


async def test_create_use_and_list_without_secret(client, session):
    owner = await signup(client)
    r = await client.post("/v1/api-keys", headers=owner.headers, json={"name": "ERP", "scopes": ["users:read"]})
    assert r.status_code == 201
    key = r.json()
    secret = key["secret"]
    assert secret.startswith("crm_") and key["prefix"] in secret and key["created_by"] == owner.user_id
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200
    assert me.json()["type"] == "api_key" and me.json()["scopes"] == ["users:read"]
    listed = await client.get("/v1/api-keys", headers=owner.headers)
    assert secret not in listed.text and listed.json()["data"][0]["last_used_at"] is not None
    stored = await session.scalar(select(ApiKey).where(ApiKey.id == key["id"]))
    assert secret.encode() not in stored.secret_hash and len(stored.secret_hash) == 32


async def test_scopes_are_enforced(client):
    owner = await signup(client)
    read_only = await owner.api_key(["users:read"])
    assert (await client.get("/v1/users", headers=read_only)).status_code == 200
    r = await client.post("/v1/users", headers=read_only, json={"email": "x@example.com", "name": "X"})
    assert r.status_code == 403 and "users:write" in r.json()["detail"]
    assert (await client.get("/v1/org", headers=read_only)).status_code == 403
    writer = await owner.api_key(["users:write"])
    assert (await client.get("/v1/users", headers=writer)).status_code == 200  # write implies read
    everything = await owner.api_key(["*"])
    assert (await client.get("/v1/org", headers=everything)).status_code == 200


async def test_unknown_scope_and_empty_scopes_are_422(client):
    owner = await signup(client)
    r = await client.post("/v1/api-keys", headers=owner.headers, json={"name": "x", "scopes": ["deals:delete"]})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][:2] == ["body", "scopes"]
    r = await client.post("/v1/api-keys", headers=owner.headers, json={"name": "x", "scopes": []})
    assert r.status_code == 422


async def test_revoked_key_is_401(client):
    owner = await signup(client)
    r = await client.post("/v1/api-keys", headers=owner.headers, json={"name": "tmp", "scopes": ["*"]})
    key = r.json()
    auth = {"Authorization": f"Bearer {key['secret']}"}
    assert (await client.get("/v1/me", headers=auth)).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{key['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get("/v1/me", headers=auth)).status_code == 401
    assert (await client.get(f"/v1/api-keys/{key['id']}", headers=owner.headers)).status_code == 404
    tampered = {"Authorization": f"Bearer {key['secret'][:-2]}xx"}
    assert (await client.get("/v1/me", headers=tampered)).status_code == 401


async def test_expired_key_is_401_and_past_expiry_is_422(client):
    owner = await signup(client)
    r = await client.post("/v1/api-keys", headers=owner.headers,
                          json={"name": "old", "scopes": ["*"], "expires_at": "2020-01-01T00:00:00Z"})
    assert r.status_code == 422


async def test_only_admins_manage_keys(client):
    owner = await signup(client)
    manager = await owner.invite("manager")
    assert (await client.get("/v1/api-keys", headers=manager.headers)).status_code == 403
    r = await client.post("/v1/api-keys", headers=manager.headers, json={"name": "x", "scopes": ["*"]})
    assert r.status_code == 403
    admin = await owner.invite("admin")
    r = await client.post("/v1/api-keys", headers=admin.headers, json={"name": "x", "scopes": ["*"]})
    assert r.status_code == 201


async def test_api_key_cannot_create_owners(client):
    owner = await signup(client)
    key = await owner.api_key(["*"])
    r = await client.post("/v1/users", headers=key, json={"email": "o2@example.com", "name": "O", "role": "owner"})
    assert r.status_code == 403


async def test_ping_answers_who_is_calling_for_a_key_and_a_user_and_401_without(client):
    owner = await signup(client)
    key = await owner.api_key(["deals:read"])
    r = await client.get("/v1/ping", headers=key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["type"], body["org_id"], body["role"], body["scopes"]) == ("api_key", owner.org_id, "admin",
                                                                           ["deals:read"])
    r = await client.get("/v1/ping", headers=owner.headers)
    assert (r.json()["type"], r.json()["id"], r.json()["role"]) == ("user", owner.user_id, "owner")
    r = await client.get("/v1/ping")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/v1/ping", headers={"Authorization": "Bearer crm_nope_nope"})
    assert r.status_code == 401
