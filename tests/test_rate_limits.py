"""Request rate limits: per credential on every authenticated route, per client address on /v1/auth."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import httpx

from app.main import create_app
from app.settings import Settings
from tests.factories import signup

FOREVER = 10**9  # one window for the whole test: no rollover between two requests


@asynccontextmanager
async def from_address(app, ip: str):
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as c:
        yield c


def _limited(app, settings, **limits) -> None:
    app.state.settings = settings.model_copy(update={"rate_limit_window_seconds": FOREVER, **limits})


async def test_each_credential_has_its_own_budget_with_headers_then_429(client, app, settings):
    acct = await signup(client)
    key, other = await acct.api_key(["contacts:read"]), await acct.api_key(["contacts:read"])
    _limited(app, settings, rate_limit_per_credential=3)
    for remaining in (2, 1, 0):
        r = await client.get("/v1/contacts", headers=key)
        assert r.status_code == 200
        assert (r.headers["ratelimit-limit"], r.headers["ratelimit-remaining"]) == ("3", str(remaining))
        assert int(r.headers["ratelimit-reset"]) >= 1 and "retry-after" not in r.headers
    r = await client.get("/v1/contacts", headers=key)
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/rate-limited"
    assert r.headers["ratelimit-remaining"] == "0" and int(r.headers["retry-after"]) >= 1
    # writes and other routes share the same budget; another key and a user login are not affected
    assert (await client.post("/v1/contacts", headers=key, json={"first_name": "X"})).status_code == 429
    assert (await client.get("/v1/contacts", headers=other)).status_code == 200
    r = await client.get("/v1/contacts", headers=acct.headers)
    assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "2"


async def test_a_refused_write_changes_nothing(client, app, settings):
    acct = await signup(client)
    key = await acct.api_key(["contacts:write"])
    _limited(app, settings, rate_limit_per_credential=1)
    name = f"Once-{uuid.uuid4().hex[:6]}"
    assert (await client.post("/v1/contacts", headers=key, json={"first_name": name})).status_code == 201
    assert (await client.post("/v1/contacts", headers=key, json={"first_name": name})).status_code == 429
    _limited(app, settings)
    found = (await client.get("/v1/contacts", headers=acct.headers, params={"q": name})).json()["data"]
    assert len(found) == 1


async def test_auth_routes_are_limited_per_client_address(client, app, settings):
    acct = await signup(client)
    _limited(app, settings, rate_limit_auth_per_ip=2)
    async with from_address(app, "203.0.113.10") as c:
        for remaining in (1, 0):
            r = await c.post("/v1/auth/token", data={"username": acct.email, "password": "not the password!"})
            assert r.status_code == 401 and r.headers["ratelimit-remaining"] == str(remaining)
        r = await c.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-limit"] == "2" and r.headers["ratelimit-remaining"] == "0"
    async with from_address(app, "203.0.113.11") as c:  # another address still logs in
        r = await c.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})
        assert r.status_code == 200, r.text


def test_the_openapi_document_states_the_limits():
    doc = create_app(Settings(env="test", jwt_secret="x" * 40)).openapi()
    limited = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or op.get("security") == []:
                continue
            if path.startswith("/v1/") and not path.startswith(("/v1/forms/public", "/v1/public")):
                too_many = op["responses"].get("429")
                if too_many is None:
                    continue
                limited += 1
                assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(too_many.get("headers", {}))
    assert limited > 100
    auth = doc["paths"]["/v1/auth/refresh"]["post"]["responses"]["429"]
    assert "CRM_RATE_LIMIT_AUTH_PER_IP" in auth["description"]
    assert "CRM_RATE_LIMIT_PER_CREDENTIAL" in doc["paths"]["/v1/contacts"]["get"]["responses"]["429"]["description"]
