"""OWASP API Security Top 10 (2023) checks that are not already proven elsewhere (docs/security.md maps each
risk to its tests): function-level authorization over the whole route table, mass assignment, CORS."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from fastapi.routing import APIRoute

from app.api.router import routers
from app.domain.auth.models import Role
from app.main import create_app
from tests.factories import signup


def _calls(dependant):  # noqa: ANN001, ANN202
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def _admin_routes() -> list[tuple[str, str]]:
    found = []
    for route in (r for router in routers for r in router.routes if isinstance(r, APIRoute)):
        roles = [getattr(c, "required_role", None) for c in _calls(route.dependant)]
        if any(role is not None and role.at_least(Role.admin) for role in roles):
            found += [(method, route.path) for method in sorted(route.methods)]
    return found


ADMIN_ROUTES = _admin_routes()


def test_the_admin_surface_is_known():
    paths = {p for _, p in ADMIN_ROUTES}
    for expected in ("/v1/api-keys", "/v1/webhooks", "/v1/audit-log", "/v1/teams", "/v1/custom-fields"):
        assert any(p.startswith(expected) for p in paths), expected


# API5: broken function-level authorization: every admin route refuses members, managers and viewers
async def test_every_admin_route_refuses_non_admins(client):
    owner = await signup(client)
    people = [await owner.invite(role) for role in ("manager", "member", "viewer")]
    refused = []
    for method, path in ADMIN_ROUTES:
        url = re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), path)
        for person in people:
            r = await client.request(method, url, headers=person.headers,
                                     json={} if method in ("POST", "PUT", "PATCH") else None)
            if r.status_code != 403:
                refused.append(f"{method} {path} as {person.email.split('-')[0]}: {r.status_code}")
    assert refused == []


# API3: broken object property level authorization (mass assignment)
@pytest.mark.parametrize("field, value", [("org_id", "0190f5a0-0000-7000-8000-00000000000a"), ("version", 99),
                                          ("id", "0190f5a0-0000-7000-8000-00000000000b"),
                                          ("created_at", "2020-01-01T00:00:00Z"), ("deleted_at", None)])
async def test_server_owned_fields_are_refused_on_create_and_update(client, field, value):
    owner = await signup(client)
    r = await client.post("/v1/contacts", headers=owner.headers, json={"first_name": "Ana", field: value})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"][-1] == field
    contact = (await client.post("/v1/contacts", headers=owner.headers, json={"first_name": "Ana"})).json()
    r = await client.patch(f"/v1/contacts/{contact['id']}", headers=owner.headers, json={field: value})
    assert r.status_code == 422
    assert (await client.get(f"/v1/contacts/{contact['id']}", headers=owner.headers)).json()["version"] == 1


async def test_owner_and_role_cannot_be_assigned_beyond_the_callers_reach(client):
    owner, other = await signup(client), await signup(client, "Other")
    member = await owner.invite("member")
    r = await client.post("/v1/contacts", headers=owner.headers, json={"first_name": "Ana", "owner_id": other.user_id})
    assert r.status_code == 422  # another org's user is no one here
    r = await client.patch(f"/v1/users/{member.user_id}", headers=member.headers, json={"role": "admin"})
    assert r.status_code == 403
    me = (await client.get(f"/v1/users/{member.user_id}", headers=owner.headers)).json()
    assert me["role"] == "member"


# API8: security misconfiguration: CORS never lets any origin read answers with credentials
@pytest.mark.parametrize("origins", [["*"], ["https://app.example.com"]])
async def test_cors_never_allows_credentials_for_any_origin(settings, database, redis, origins):
    app = create_app(settings.model_copy(update={"cors_origins": origins}), db=database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        for origin in ("https://evil.example", "https://app.example.com", "null"):
            r = await c.options("/v1/contacts", headers={
                "Origin": origin, "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization"})
            allowed = r.headers.get("access-control-allow-origin")
            assert r.headers.get("access-control-allow-credentials") != "true"
            if origins == ["*"]:
                assert allowed in (None, "*")
            else:
                assert allowed in (None, "https://app.example.com")
                assert origin == "https://app.example.com" or allowed is None
