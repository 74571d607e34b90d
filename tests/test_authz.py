"""A credential never grants more than it holds: every route checks a scope; an API key acts with the lesser of
its scopes and its creator's current role; creating keys or users never exceeds the caller's own scopes and
role; deactivating or demoting a key's creator takes effect on the key at once."""

from __future__ import annotations

import csv
import io

from fastapi.routing import APIRoute

from app.api.deps import authenticate
from app.api.router import routers
from tests.factories import PASSWORD, signup, unique_email

# Routes any authenticated caller may use whatever its scopes: they only say who is calling.
ANY_CALLER = {("GET", "/v1/me"), ("GET", "/v1/ping")}


def _calls(dependant):  # noqa: ANN001, ANN202
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def test_every_authenticated_route_requires_a_scope():
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 100
    unscoped = []
    for route in routes:
        calls = list(_calls(route.dependant))
        if authenticate not in calls:
            continue  # public
        scoped = any(getattr(c, "required_scope", None) for c in calls)
        for method in route.methods:
            if not scoped and (method, route.path) not in ANY_CALLER:
                unscoped.append(f"{method} {route.path}")
    assert unscoped == []


async def _key(client, headers: dict[str, str], scopes: list[str]) -> dict[str, str]:
    r = await client.post("/v1/api-keys", headers=headers, json={"name": "k", "scopes": scopes})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['secret']}"}


async def test_a_key_without_users_write_cannot_change_users(client):
    owner = await signup(client)
    member, admin = await owner.invite("member"), await owner.invite("admin")
    key = await owner.api_key(["contacts:read"])
    for target, body in ((member, {"role": "admin"}), (admin, {"role": "member"}),
                         (member, {"email": unique_email("taken")}), (member, {"name": "Renamed"})):
        r = await client.patch(f"/v1/users/{target.user_id}", headers=key, json=body)
        assert r.status_code == 403, r.text
        assert "users:write" in r.json()["detail"]
    users = {u["id"]: u for u in (await client.get("/v1/users", headers=owner.headers)).json()["data"]}
    assert users[member.user_id]["role"] == "member" and users[admin.user_id]["role"] == "admin"
    assert users[member.user_id]["email"] == member.email and users[member.user_id]["name"] == "A member"


async def test_a_key_cannot_mint_a_key_with_scopes_it_does_not_hold(client):
    owner = await signup(client)
    key = await owner.api_key(["api_keys:write"])
    r = await client.post("/v1/api-keys", headers=key, json={"name": "x", "scopes": ["*"]})
    assert r.status_code == 403 and "*" in r.json()["detail"]
    r = await client.post("/v1/api-keys", headers=key, json={"name": "x", "scopes": ["contacts:read", "api_keys:read",
                                                                                     "deals:write"]})
    assert r.status_code == 403
    assert r.json()["missing_scopes"] == ["contacts:read", "deals:write"]
    r = await client.post("/v1/api-keys", headers=key, json={"name": "x", "scopes": ["api_keys:read"]})
    assert r.status_code == 201  # within what it holds (write implies read)
    writer = await owner.api_key(["contacts:write", "api_keys:write"])
    r = await client.post("/v1/api-keys", headers=writer, json={"name": "x", "scopes": ["contacts:read"]})
    assert r.status_code == 201


async def test_a_users_write_key_cannot_hand_out_a_login(client):
    owner = await signup(client)
    key = await owner.api_key(["users:write"])
    r = await client.post("/v1/users", headers=key, json={"email": unique_email("a"), "name": "A", "role": "admin",
                                                         "password": PASSWORD})
    assert r.status_code == 403, r.text
    r = await client.post("/v1/users", headers=key, json={"email": unique_email("m"), "name": "M", "role": "member",
                                                         "password": PASSWORD})
    assert r.status_code == 403
    r = await client.post("/v1/users", headers=key, json={"email": unique_email("m"), "name": "M", "role": "member"})
    assert r.status_code == 201  # an invitee without a password cannot log in
    r = await client.post(f"/v1/users/{r.json()['id']}/password", headers=key, json={"password": PASSWORD})
    assert r.status_code == 403
    everything = await owner.api_key(["*"])
    email = unique_email("a")
    r = await client.post("/v1/users", headers=everything,
                          json={"email": email, "name": "A", "role": "admin", "password": PASSWORD})
    assert r.status_code == 201
    assert (await client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})).status_code == 200


async def test_a_key_of_a_deactivated_admin_stops_working_at_once(client):
    owner = await signup(client)
    admin = await owner.invite("admin")
    key = await _key(client, admin.headers, ["*"])
    assert (await client.get("/v1/me", headers=key)).status_code == 200
    r = await client.post(f"/v1/users/{admin.user_id}/deactivate", headers=owner.headers, json={})
    assert r.status_code == 200
    assert (await client.get("/v1/me", headers=key)).status_code == 401
    r = await client.post("/v1/api-keys", headers=key, json={"name": "new", "scopes": ["*"]})
    assert r.status_code == 401
    # and it comes back with its creator
    assert (await client.post(f"/v1/users/{admin.user_id}/reactivate", headers=owner.headers)).status_code == 200
    assert (await client.get("/v1/me", headers=key)).status_code == 200


async def test_a_key_of_a_demoted_user_acts_with_the_new_role(client):
    owner = await signup(client)
    admin = await owner.invite("admin")
    key = await _key(client, admin.headers, ["*"])
    r = await client.patch(f"/v1/users/{admin.user_id}", headers=owner.headers, json={"role": "viewer"})
    assert r.status_code == 200
    ping = (await client.get("/v1/ping", headers=key)).json()
    assert (ping["type"], ping["role"]) == ("api_key", "viewer")
    r = await client.post("/v1/users", headers=key, json={"email": unique_email("x"), "name": "X", "role": "admin"})
    assert r.status_code == 403
    assert (await client.post("/v1/api-keys", headers=key, json={"name": "n", "scopes": ["*"]})).status_code == 403
    assert (await client.post("/v1/contacts", headers=key, json={"first_name": "No"})).status_code == 403
    assert (await client.get("/v1/contacts", headers=key)).status_code == 200
    await client.patch(f"/v1/users/{admin.user_id}", headers=owner.headers, json={"role": "manager"})
    assert (await client.post("/v1/contacts", headers=key, json={"first_name": "Yes"})).status_code == 201
    assert (await client.get("/v1/api-keys", headers=key)).status_code == 403


async def test_no_one_grants_a_role_above_their_own(client):
    owner = await signup(client)
    admin = await owner.invite("admin")
    member = await owner.invite("member")
    r = await client.post("/v1/users", headers=admin.headers,
                          json={"email": unique_email("o"), "name": "O", "role": "owner"})
    assert r.status_code == 403
    r = await client.patch(f"/v1/users/{member.user_id}", headers=admin.headers, json={"role": "owner"})
    assert r.status_code == 403
    owner_key = await owner.api_key(["*"])  # an org key acts as admin at most, even an owner's
    r = await client.patch(f"/v1/users/{member.user_id}", headers=owner_key, json={"role": "owner"})
    assert r.status_code == 403
    r = await client.patch(f"/v1/users/{member.user_id}", headers=admin.headers, json={"role": "admin"})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    r = await client.patch(f"/v1/users/{member.user_id}", headers=owner.headers, json={"role": "owner"})
    assert r.status_code == 200 and r.json()["role"] == "owner"
    # users still change their own name and absence, viewers included, but nothing else
    viewer = await owner.invite("viewer")
    r = await client.patch(f"/v1/users/{viewer.user_id}", headers=viewer.headers, json={"out_of_office": True})
    assert r.status_code == 200 and r.json()["out_of_office"] is True
    r = await client.patch(f"/v1/users/{viewer.user_id}", headers=viewer.headers, json={"role": "member"})
    assert r.status_code == 403


async def test_org_keys_created_by_an_admin_do_everything_their_scopes_allow(client):
    owner = await signup(client)
    admin = await owner.invite("admin")
    member = await owner.invite("member")
    key = await _key(client, admin.headers, ["*"])
    contact = await client.post("/v1/contacts", headers=key, json={"first_name": "Ana"})
    assert contact.status_code == 201 and contact.json()["owner_id"] == admin.user_id
    deal = await client.post("/v1/deals", headers=key, json={"title": "Big", "contact_id": contact.json()["id"]})
    assert deal.status_code == 201
    assert (await client.get(f"/v1/contacts/{contact.json()['id']}/timeline", headers=key)).status_code == 200
    r = await client.post("/v1/users", headers=key, json={"email": unique_email("m"), "name": "M", "role": "admin",
                                                         "password": PASSWORD})
    assert r.status_code == 201
    assert (await client.patch(f"/v1/users/{member.user_id}", headers=key, json={"role": "manager"})).status_code == 200
    assert (await client.post(f"/v1/users/{member.user_id}/deactivate", headers=key, json={})).status_code == 200
    assert (await client.post(f"/v1/users/{member.user_id}/reactivate", headers=key)).status_code == 200
    r = await client.post(f"/v1/users/{member.user_id}/password", headers=key, json={"password": PASSWORD + "!"})
    assert r.status_code == 204
    r = await client.post("/v1/api-keys", headers=key, json={"name": "child", "scopes": ["deals:read"]})
    assert r.status_code == 201
    assert (await client.get("/v1/api-keys", headers=key)).status_code == 200
    assert (await client.patch("/v1/org", headers=key, json={"timezone": "Europe/Lisbon"})).status_code == 200
    assert (await client.post("/v1/custom-fields", headers=key, json={
        "object": "contact", "key": "tier", "label": "Tier", "type": "text"})).status_code == 201
    scoped = await _key(client, admin.headers, ["contacts:write"])
    assert (await client.post("/v1/contacts", headers=scoped, json={"first_name": "Bo"})).status_code == 201
    assert (await client.get("/v1/deals", headers=scoped)).status_code == 403
    assert (await client.get("/v1/me/notifications", headers=scoped)).status_code == 403


async def test_the_timeline_shows_only_kinds_the_key_may_read(client):
    owner = await signup(client)
    h = owner.headers
    ana = (await client.post("/v1/contacts", headers=h, json={"first_name": "Ana"})).json()
    deal = (await client.post("/v1/deals", headers=h, json={"title": "D", "contact_id": ana["id"]})).json()
    note = (await client.post("/v1/activities", headers=h,
                              json={"type": "note", "subject": "on contact", "contact_id": ana["id"]})).json()
    call = (await client.post("/v1/activities", headers=h,
                              json={"type": "call", "subject": "on deal", "deal_id": deal["id"]})).json()
    url = f"/v1/contacts/{ana['id']}/timeline"

    async def entries(scopes: list[str]) -> set[tuple[str, str]]:
        r = await client.get(url, headers=await owner.api_key(scopes))
        assert r.status_code == 200, r.text
        return {(e["kind"], e["id"]) for e in r.json()["data"]}

    assert await entries(["contacts:read"]) == set()
    assert await entries(["contacts:read", "activities:read"]) == {("activity", note["id"])}
    everything = await entries(["contacts:read", "activities:read", "deals:read"])
    assert {("activity", note["id"]), ("activity", call["id"])} < everything
    assert {k for k, _ in everything} == {"activity", "stage_change"}
    assert await entries(["*"]) == everything
    only_deals = await entries(["contacts:read", "deals:read"])
    assert {k for k, _ in only_deals} == {"stage_change"}
    missing = "/v1/contacts/00000000-0000-0000-0000-000000000000/timeline"
    assert (await client.get(missing, headers=await owner.api_key(["contacts:read"]))).status_code == 404


def _csv(*rows: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


async def test_an_import_needs_the_write_scope_of_what_it_imports(client):
    owner = await signup(client)
    data = _csv(["Email", "First Name"], [unique_email("i"), "Ivo"])
    key = await owner.api_key(["imports:write"])
    for path in ("/v1/imports", "/v1/imports/preview"):
        r = await client.post(path, headers=key, files={"file": ("a.csv", data)}, data={"object": "contacts"})
        assert r.status_code == 403, r.text
        assert "contacts:write" in r.json()["detail"]
    both = await owner.api_key(["imports:write", "contacts:write"])
    r = await client.post("/v1/imports/preview", headers=both, files={"file": ("a.csv", data)},
                          data={"object": "contacts"})
    assert r.status_code == 200, r.text
    r = await client.post("/v1/imports/preview", headers=both, files={"file": ("a.csv", data)},
                          data={"object": "deals"})
    assert r.status_code == 403


async def test_a_scoped_key_cannot_reach_other_areas_through_filters_or_notifications(client):
    owner = await signup(client)
    key = await owner.api_key(["contacts:read"])
    assert (await client.get("/v1/activities", headers=key)).status_code == 403
    assert (await client.get("/v1/deals", headers=key)).status_code == 403
    assert (await client.post("/v1/me/notifications/read-all", headers=key)).status_code == 403


async def test_the_changes_feed_shows_only_kinds_the_key_may_read(committed_client):
    client = committed_client  # the feed reads committed events
    owner = await signup(client)
    await client.post("/v1/contacts", headers=owner.headers, json={"first_name": "Ana"})
    await client.post("/v1/deals", headers=owner.headers, json={"title": "D"})

    async def types(scopes: list[str], **params: str) -> set[str]:
        r = await client.get("/v1/changes", headers=await owner.api_key(scopes), params=params)
        assert r.status_code == 200, r.text
        assert r.json()["next_cursor"]
        return {e["object_type"] for e in r.json()["data"]}

    assert await types(["changes:read"]) == set()
    assert await types(["changes:read", "contacts:read"]) == {"contact"}
    assert {"contact", "deal"} <= await types(["*"])
    assert await types(["changes:read", "contacts:read", "deals:read"], types="deal") == {"deal"}
    r = await client.get("/v1/changes", headers=await owner.api_key(["changes:read", "contacts:read"]),
                         params={"types": "contact,deal"})
    assert r.status_code == 403 and r.json()["missing_scopes"] == ["deals:read"]
    assert {"contact", "deal"} <= {e["object_type"] for e in
                                   (await client.get("/v1/changes", headers=owner.headers)).json()["data"]}


async def test_a_webhook_subscribes_only_to_events_the_key_may_read(client):
    owner = await signup(client)
    key = await owner.api_key(["webhooks:write", "deals:read"])
    url = "https://erp.example.com/hooks/crm"
    r = await client.post("/v1/webhooks", headers=key, json={"url": url, "events": ["contact.created"]})
    assert r.status_code == 403 and r.json()["missing_scopes"] == ["contacts:read"]
    r = await client.post("/v1/webhooks", headers=key, json={"url": url, "events": ["*"]})
    assert r.status_code == 403
    r = await client.post("/v1/webhooks", headers=key, json={"url": url, "events": ["deal.*"]})
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    r = await client.patch(f"/v1/webhooks/{hook}", headers=key, json={"events": ["deal.*", "lead.*"]})
    assert r.status_code == 403 and r.json()["missing_scopes"] == ["leads:read"]
    r = await client.patch(f"/v1/webhooks/{hook}", headers=owner.headers, json={"events": ["*"]})
    assert r.status_code == 200


async def test_converting_a_lead_needs_the_write_scopes_of_what_it_makes(client):
    owner = await signup(client)
    lead = (await client.post("/v1/leads", headers=owner.headers,
                              json={"first_name": "Lu", "email": unique_email("lead"), "company_name": "Park"})).json()
    url = f"/v1/leads/{lead['id']}/convert"
    leads_only = await owner.api_key(["leads:write"])
    r = await client.post(url, headers=leads_only, json={"create_deal": True})
    assert r.status_code == 403
    assert r.json()["missing_scopes"] == ["contacts:write", "companies:write", "deals:write"]
    partial = await owner.api_key(["leads:write", "contacts:write", "companies:write"])
    r = await client.post(url, headers=partial, json={"create_deal": True})
    assert r.status_code == 403 and r.json()["missing_scopes"] == ["deals:write"]
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=owner.headers)).json()["status"] == "new"
    r = await client.post(url, headers=partial, json={"create_deal": False})
    assert r.status_code == 200, r.text
    assert r.json()["contact"]["id"] and r.json()["company"]["name"] == "Park"
