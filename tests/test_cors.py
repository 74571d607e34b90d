"""CORS for the API's own routes: allowed origins by list or pattern, never credentials; a refused preflight is a
problem (403) naming what was refused, never a 405 or a plain-text 400."""

from __future__ import annotations

import httpx
import pytest

from app.api.cors import DEV_ORIGIN_REGEX
from app.main import create_app
from tests.factories import signup


def preflight(origin: str, method: str = "GET", headers: str = "authorization,content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


@pytest.fixture
async def dev_client(settings, app_database, redis):
    app = create_app(settings.model_copy(update={"cors_origin_regex": DEV_ORIGIN_REGEX}), db=app_database,
                     redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        yield c


async def test_local_front_ends_on_any_port_may_call_the_api_under_dev(dev_client):
    for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "http://localhost"):
        r = await dev_client.options("/v1/contacts", headers=preflight(origin, "POST"))
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin, origin
        assert "access-control-allow-credentials" not in r.headers
    acct = await signup(dev_client)
    r = await dev_client.get("/v1/contacts", headers={**acct.headers, "Origin": "http://localhost:5173"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "ETag" in r.headers["access-control-expose-headers"]
    for origin in ("http://localhost.evil.example", "https://localhost:5173", "http://127.0.0.1.evil.example:80",
                   "http://evil.example/?http://localhost:1"):
        r = await dev_client.options("/v1/contacts", headers=preflight(origin))
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers, origin


async def test_a_refused_preflight_is_a_problem_naming_the_origin(client):
    r = await client.options("/v1/contacts", headers=preflight("https://app.example.com"))
    assert r.status_code == 403, r.text  # not 405: no CORS origins are configured here
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "/problems/forbidden" and "https://app.example.com" in body["detail"]
    assert "origin" in body["detail"] and "CRM_CORS_ORIGINS" in body["detail"]
    assert "access-control-allow-origin" not in r.headers


async def test_a_listed_origin_is_allowed_but_not_a_method_or_header_outside_the_list(settings, app_database, redis):
    app = create_app(settings.model_copy(update={"cors_origins": ["https://app.example.com"]}), db=app_database,
                     redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        ok = await c.options("/v1/deals", headers=preflight("https://app.example.com", "PATCH"))
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example.com"
        for bad, refused in ((preflight("https://app.example.com", "TRACE"), "method"),
                             (preflight("https://app.example.com", "GET", "x-secret"), "headers"),
                             (preflight("http://localhost:5173"), "origin")):  # no dev pattern outside crm dev
            r = await c.options("/v1/deals", headers=bad)
            assert r.status_code == 403 and refused in r.json()["detail"], (bad, r.text)


async def test_a_form_refusing_an_origin_answers_a_problem_too(client):
    acct = await signup(client)
    made = await client.post("/v1/forms", headers=acct.headers, json={
        "name": "Contact us", "allowed_origins": ["https://www.example.com"]})
    assert made.status_code == 201, made.text
    form = made.json()
    r = await client.options(f"/v1/public/forms/{form['public_key']}/submissions",
                             headers=preflight("https://evil.example", "POST", "content-type"))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert "https://evil.example" in r.json()["detail"] and "access-control-allow-origin" not in r.headers
