"""Personal access tokens: a user's own bearer credentials, acting as the user within their scopes and never
beyond the user's current role; rows show last_used_at and last_used_ip."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import update

from app.domain.auth.models import ApiKey
from tests.factories import signup
from tests.test_round_trips import count_statements


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _pat(client, headers: dict[str, str], scopes: list[str], expect: int = 201, **extra: object) -> dict:
    r = await client.post("/v1/me/tokens", headers=headers, json={"name": "Phone", "scopes": scopes, **extra})
    assert r.status_code == expect, r.text
    return r.json()


async def test_create_use_list_and_revoke(app):
    owner_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 4711)),
                                     base_url="http://crm.test")
    async with owner_client as client:
        owner = await signup(client)
        member = await owner.invite("member")
        made = await _pat(client, member.headers, ["contacts:write"], expires_at="2099-01-01T00:00:00Z")
        assert made["secret"].startswith("crm_") and made["prefix"] in made["secret"]
        assert made["scopes"] == ["contacts:write"] and made["last_used_at"] is None
        assert made["expires_at"].startswith("2099-01-01")
        pat = bearer(made["secret"])

        me = (await client.get("/v1/me", headers=pat)).json()
        assert (me["type"], me["user"]["id"], me["role"], me["scopes"]) == ("user", member.user_id, "member",
                                                                           ["contacts:write"])
        ping = (await client.get("/v1/ping", headers=pat)).json()
        assert (ping["type"], ping["id"]) == ("user", member.user_id)
        contact = await client.post("/v1/contacts", headers=pat, json={"first_name": "Ana"})
        assert contact.status_code == 201 and contact.json()["owner_id"] == member.user_id
        assert (await client.get("/v1/deals", headers=pat)).status_code == 403  # outside its scopes

        listed = (await client.get("/v1/me/tokens", headers=member.headers)).json()["data"]
        assert [t["id"] for t in listed] == [made["id"]]
        assert "secret" not in listed[0] and made["secret"] not in str(listed)
        assert listed[0]["last_used_at"] is not None and listed[0]["last_used_ip"] == "203.0.113.7"
        assert (await client.get("/v1/me/tokens", headers=owner.headers)).json()["data"] == []  # only one's own

        r = await client.delete(f"/v1/me/tokens/{made['id']}", headers=owner.headers)
        assert r.status_code == 404  # another user's token
        r = await client.delete(f"/v1/me/tokens/{made['id']}", headers=member.headers)
        assert r.status_code == 204
        assert (await client.get("/v1/me", headers=pat)).status_code == 401
        assert (await client.get("/v1/me/tokens", headers=member.headers)).json()["data"] == []
        assert (await client.delete(f"/v1/me/tokens/{made['id']}", headers=member.headers)).status_code == 404


async def test_tokens_and_org_keys_are_managed_apart(client):
    owner = await signup(client)
    pat = await _pat(client, owner.headers, ["*"])
    r = await client.post("/v1/api-keys", headers=owner.headers, json={"name": "ERP", "scopes": ["*"]})
    key = r.json()
    assert pat["id"] not in {k["id"] for k in (await client.get("/v1/api-keys", headers=owner.headers)).json()["data"]}
    assert key["id"] not in {t["id"] for t in (await client.get("/v1/me/tokens", headers=owner.headers)).json()["data"]}
    assert (await client.get(f"/v1/api-keys/{pat['id']}", headers=owner.headers)).status_code == 404
    assert (await client.delete(f"/v1/api-keys/{pat['id']}", headers=owner.headers)).status_code == 404
    assert (await client.delete(f"/v1/me/tokens/{key['id']}", headers=owner.headers)).status_code == 404
    assert (await client.get("/v1/me", headers=bearer(pat["secret"]))).status_code == 200
    assert (await client.get("/v1/me", headers=bearer(key["secret"]))).status_code == 200
    # an org key is no user: it has no personal tokens
    r = await client.post("/v1/me/tokens", headers=bearer(key["secret"]), json={"name": "x", "scopes": ["*"]})
    assert r.status_code == 403
    assert (await client.get("/v1/me/tokens", headers=bearer(key["secret"]))).status_code == 403


async def test_a_token_never_acts_beyond_its_users_current_role(client):
    owner = await signup(client)
    member = await owner.invite("member")
    pat = bearer((await _pat(client, member.headers, ["*"]))["secret"])
    r = await client.post("/v1/users", headers=pat, json={"email": "x@example.com", "name": "X", "role": "admin"})
    assert r.status_code == 403
    assert (await client.post("/v1/api-keys", headers=pat, json={"name": "k", "scopes": ["*"]})).status_code == 403
    assert (await client.patch("/v1/org", headers=pat, json={"timezone": "Europe/Berlin"})).status_code == 403
    assert (await client.post("/v1/contacts", headers=pat, json={"first_name": "Ok"})).status_code == 201
    await client.patch(f"/v1/users/{member.user_id}", headers=owner.headers, json={"role": "viewer"})
    assert (await client.get("/v1/me", headers=pat)).json()["role"] == "viewer"
    assert (await client.post("/v1/contacts", headers=pat, json={"first_name": "No"})).status_code == 403
    assert (await client.get("/v1/contacts", headers=pat)).status_code == 200
    await client.patch(f"/v1/users/{member.user_id}", headers=owner.headers, json={"role": "admin"})
    assert (await client.post("/v1/api-keys", headers=pat, json={"name": "k", "scopes": ["deals:read"]})).status_code == 201


async def test_deactivating_the_user_disables_their_tokens_at_once(client):
    owner = await signup(client)
    member = await owner.invite("member")
    pat = bearer((await _pat(client, member.headers, ["contacts:read"]))["secret"])
    assert (await client.get("/v1/contacts", headers=pat)).status_code == 200
    await client.post(f"/v1/users/{member.user_id}/deactivate", headers=owner.headers, json={})
    assert (await client.get("/v1/contacts", headers=pat)).status_code == 401
    await client.post(f"/v1/users/{member.user_id}/reactivate", headers=owner.headers)
    assert (await client.get("/v1/contacts", headers=pat)).status_code == 200


async def test_a_token_cannot_mint_more_than_it_holds(client):
    owner = await signup(client)
    viewer = await owner.invite("viewer")
    made = await _pat(client, viewer.headers, ["contacts:read"])  # viewers may have tokens too (read only)
    pat = bearer(made["secret"])
    assert (await client.get("/v1/me/tokens", headers=pat)).status_code == 403  # lacks tokens:read
    minter = bearer((await _pat(client, viewer.headers, ["contacts:read", "tokens:write"]))["secret"])
    r = await client.post("/v1/me/tokens", headers=minter, json={"name": "x", "scopes": ["contacts:write"]})
    assert r.status_code == 403 and r.json()["missing_scopes"] == ["contacts:write"]
    r = await client.post("/v1/me/tokens", headers=minter, json={"name": "x", "scopes": ["*"]})
    assert r.status_code == 403
    await _pat(client, minter, ["contacts:read"])
    listed = (await client.get("/v1/me/tokens", headers=minter)).json()["data"]
    assert len(listed) == 3


async def test_bad_requests(client):
    owner = await signup(client)
    r = await client.post("/v1/me/tokens", json={"name": "x", "scopes": ["*"]})
    assert r.status_code == 401
    await _pat(client, owner.headers, ["deals:delete"], expect=422)
    await _pat(client, owner.headers, [], expect=422)
    await _pat(client, owner.headers, ["*"], expect=422, expires_at="2020-01-01T00:00:00Z")
    await _pat(client, owner.headers, ["*"], expect=422, owner_id=owner.user_id)
    assert (await client.delete(f"/v1/me/tokens/{uuid.uuid4()}", headers=owner.headers)).status_code == 404
    other = await signup(client, "Other")
    made = await _pat(client, owner.headers, ["*"])
    assert (await client.delete(f"/v1/me/tokens/{made['id']}", headers=other.headers)).status_code == 404


async def test_an_expired_token_is_401(client, session):
    owner = await signup(client)
    made = await _pat(client, owner.headers, ["*"], expires_at="2099-01-01T00:00:00Z")
    await session.execute(update(ApiKey).where(ApiKey.id == uuid.UUID(made["id"]))
                          .values(expires_at=ApiKey.created_at))
    assert (await client.get("/v1/me", headers=bearer(made["secret"]))).status_code == 401


async def test_a_token_and_an_org_key_resolve_in_two_round_trips(client, database):
    """The prefix names the org and sets it for the transaction; row-level security admits the key and its creator
    only then, so they come in a second statement (tests/test_row_level_security.py)."""
    owner = await signup(client)
    pat = bearer((await _pat(client, owner.headers, ["*"]))["secret"])
    key = await owner.api_key(["*"])
    for credential in (pat, key):
        await client.get("/v1/ping", headers=credential)  # first use records last_used_at and the address
        with count_statements(database) as seen:
            assert (await client.get("/v1/ping", headers=credential)).status_code == 200
        assert len(seen) == 2, seen
        assert "set_config" in seen[0] and "api_keys" in seen[1]
