"""Every error a client can meet is RFC 9457 problem+json, and every response carries X-Request-ID."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from tests.factories import PASSWORD, signup, unique_email

PROBLEM = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def assert_problem(r: httpx.Response, status: int, path: str, type_: str | None = None) -> dict:
    """The response is an RFC 9457 problem for `path` with `status` (and `type_`, when given)."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].split(";")[0].strip() == PROBLEM
    body = r.json()
    assert PROBLEM_KEYS <= body.keys(), body
    assert body["status"] == status
    assert body["instance"] == path
    assert isinstance(body["type"], str) and body["type"].startswith("/problems/")
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if type_ is not None:
        assert body["type"] == type_
    assert SANE_REQUEST_ID.match(r.headers.get("x-request-id", "")), r.headers
    return body


def assert_validation(r: httpx.Response, path: str) -> list[dict]:
    body = assert_problem(r, 422, path, "/problems/validation")
    errors = body["errors"]
    assert isinstance(errors, list) and errors
    for e in errors:
        assert set(e) == {"loc", "msg", "type"}, e
        assert isinstance(e["loc"], list) and e["loc"]
        assert isinstance(e["msg"], str) and e["msg"]
        assert isinstance(e["type"], str) and e["type"]
    return errors


def signup_body(**overrides: object) -> dict:
    body = {"org_name": "Acme", "email": unique_email("owner"), "password": PASSWORD, "name": "Olga Owner"}
    body.update(overrides)
    return body


# --- routing -------------------------------------------------------------------------------------


async def test_unknown_route_is_404_problem(client):
    r = await client.get("/v1/no-such-thing")
    body = assert_problem(r, 404, "/v1/no-such-thing", "/problems/not-found")
    assert "/v1/no-such-thing" in body["detail"]


async def test_unknown_route_outside_v1_is_404_problem(client):
    r = await client.post("/nope/at/all", json={"a": 1})
    assert_problem(r, 404, "/nope/at/all", "/problems/not-found")


async def test_wrong_method_is_405_problem_with_allow(client):
    r = await client.delete("/v1/me")
    assert_problem(r, 405, "/v1/me", "/problems/method-not-allowed")
    assert "GET" in r.headers["allow"]


# --- request bodies --------------------------------------------------------------------------------


async def test_malformed_json_is_400_problem(client):
    r = await client.post("/v1/auth/signup", content=b'{"org_name": "Acme", "email": ',
                          headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "/v1/auth/signup", "/problems/malformed-json")


async def test_unknown_field_is_422_naming_it(client):
    r = await client.post("/v1/auth/signup", json=signup_body(is_superuser=True))
    errors = assert_validation(r, "/v1/auth/signup")
    assert ["body", "is_superuser"] in [e["loc"] for e in errors]
    assert all(e["loc"][-1] == "is_superuser" for e in errors)


@pytest.mark.parametrize("body", [
    {"first_name": "Ana\u0000"},
    {"first_name": "Ana", "custom_fields": {"note": "a\u0000b"}},
    {"first_name": "Ana", "custom_fields": {"k\u0000": "v"}},
    {"first_name": "Ana", "tags": ["ok", "b\u0000d"]},
])
async def test_a_nul_character_anywhere_in_a_body_is_422_not_a_database_error(client, body):
    acct = await signup(client)
    r = await client.post("/v1/contacts", json=body, headers=acct.headers)
    errors = assert_validation(r, "/v1/contacts")
    assert any("NUL" in e["msg"] for e in errors)
    r = await client.get("/v1/contacts", headers=acct.headers)
    assert r.json()["data"] == []


@pytest.mark.parametrize("url", ["/v1/contacts?q=a%00b", "/v1/contacts/by-external-id/erp/a%00b"])
async def test_a_nul_character_in_the_url_is_400(client, url):
    acct = await signup(client)
    r = await client.get(url, headers=acct.headers)
    assert_problem(r, 400, url.split("?")[0].replace("%00", ""), "/problems/bad-request")


async def test_server_owned_field_cannot_be_set(client):
    r = await client.post("/v1/auth/signup", json=signup_body(id="0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"))
    errors = assert_validation(r, "/v1/auth/signup")
    assert ["body", "id"] in [e["loc"] for e in errors]


async def test_wrong_type_is_422_without_echoing_the_input(client):
    secret = ["hunter2-secret-value"]
    r = await client.post("/v1/auth/signup", json=signup_body(password=secret, org_name=12345))
    errors = assert_validation(r, "/v1/auth/signup")
    locs = [e["loc"] for e in errors]
    assert ["body", "password"] in locs
    assert ["body", "org_name"] in locs
    assert "hunter2-secret-value" not in r.text  # inputs are never echoed back


async def test_missing_field_is_422(client):
    body = signup_body()
    del body["password"]
    r = await client.post("/v1/auth/signup", json=body)
    errors = assert_validation(r, "/v1/auth/signup")
    assert [e["loc"] for e in errors] == [["body", "password"]]
    assert errors[0]["type"] == "missing"


async def test_missing_body_is_422(client):
    r = await client.post("/v1/auth/signup")
    errors = assert_validation(r, "/v1/auth/signup")
    assert errors[0]["loc"][0] == "body"


async def test_body_over_limit_with_content_length_is_413(client, settings):
    payload = b'{"org_name": "' + b"x" * settings.max_body_bytes + b'"}'
    r = await client.post("/v1/auth/signup", content=payload, headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "/v1/auth/signup", "/problems/payload-too-large")


async def test_body_over_limit_streamed_without_content_length_is_413(client, settings):
    chunk = b"x" * 65_536
    chunks_needed = settings.max_body_bytes // len(chunk) + 2
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"org_name": "'
        for _ in range(chunks_needed):
            sent += 1
            yield chunk
        yield b'"}'

    request = client.build_request("POST", "/v1/auth/signup", content=body(),
                                   headers={"Content-Type": "application/json"})
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    r = await client.send(request)
    assert_problem(r, 413, "/v1/auth/signup", "/problems/payload-too-large")


async def test_body_just_under_limit_is_not_413(client, settings):
    # The limit is the limit: a body below it is parsed (and here refused for its content, not its size).
    padding = "x" * (settings.max_body_bytes - 200)
    payload = orjson.dumps({"org_name": "Acme", "padding": padding})
    assert len(payload) < settings.max_body_bytes
    r = await client.post("/v1/auth/signup", content=payload, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text


# --- list parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc"])
async def test_limit_out_of_range_is_422(client, limit):
    acct = await signup(client)
    r = await client.get("/v1/users", params={"limit": limit}, headers=acct.headers)
    errors = assert_validation(r, "/v1/users")
    assert ["query", "limit"] in [e["loc"] for e in errors]


@pytest.mark.parametrize("limit", ["1", "200"])
async def test_limit_bounds_are_accepted(client, limit):
    acct = await signup(client)
    r = await client.get("/v1/users", params={"limit": limit}, headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["id"] == acct.user_id


@pytest.mark.parametrize("cursor", [
    "not-a-cursor!!",
    base64.urlsafe_b64encode(b"[1, 2]").decode().rstrip("="),
    base64.urlsafe_b64encode(b'["-created_at", "yesterday", "not-a-uuid"]').decode().rstrip("="),
    base64.urlsafe_b64encode(b'["-updated_at", "2024-01-01T00:00:00+00:00",'
                             b' "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"]').decode().rstrip("="),
])
async def test_invalid_cursor_is_422(client, cursor):
    acct = await signup(client)
    r = await client.get("/v1/users", params={"cursor": cursor}, headers=acct.headers)
    errors = assert_validation(r, "/v1/users")
    assert ["query", "cursor"] in [e["loc"] for e in errors]


async def test_unknown_sort_is_422(client):
    acct = await signup(client)
    r = await client.get("/v1/users", params={"sort": "-password_hash"}, headers=acct.headers)
    errors = assert_validation(r, "/v1/users")
    assert ["query", "sort"] in [e["loc"] for e in errors]


# --- authentication ------------------------------------------------------------------------------


async def test_missing_authorization_is_401_with_challenge(client):
    r = await client.get("/v1/me")
    assert_problem(r, 401, "/v1/me", "/problems/unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", [
    "Bearer garbage",
    "Bearer crm_not-a-real-key",
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
    "Basic dXNlcjpwYXNz",
    "Bearer",
])
async def test_bad_credentials_are_401_with_challenge(client, authorization):
    r = await client.get("/v1/me", headers={"Authorization": authorization})
    assert_problem(r, 401, "/v1/me", "/problems/unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


# --- unexpected failures -------------------------------------------------------------------------


async def _get_boom(app, **headers: str) -> httpx.Response:
    """GET a route whose handler raises an unexpected exception carrying sensitive text."""

    async def boom() -> None:
        raise RuntimeError("secret sql here: SELECT password_hash FROM users")

    app.add_api_route("/boom", boom, methods=["GET"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as c:
        return await c.get("/boom", headers=headers)


async def test_unexpected_exception_is_opaque_500_problem(app):
    r = await _get_boom(app)
    assert r.status_code == 500
    assert r.headers["content-type"].split(";")[0].strip() == PROBLEM
    body = r.json()
    assert PROBLEM_KEYS <= body.keys()
    assert body["status"] == 500
    assert body["type"] == "/problems/internal"
    assert body["instance"] == "/boom"
    assert "secret sql" not in r.text
    assert "password_hash" not in r.text
    assert "Traceback" not in r.text
    assert "RuntimeError" not in r.text


async def test_unexpected_exception_500_carries_the_request_id(app):
    # The 500 detail says "the request id identifies it in our logs": the client must be given that id.
    r = await _get_boom(app, **{"X-Request-ID": "trace-500-abc"})
    assert r.status_code == 500
    assert r.headers.get("x-request-id") == "trace-500-abc"


async def test_unexpected_exception_500_gets_a_fresh_request_id(app):
    r = await _get_boom(app)
    assert r.status_code == 500
    assert SANE_REQUEST_ID.match(r.headers.get("x-request-id", "")), r.headers


# --- request id ----------------------------------------------------------------------------------


async def test_every_response_carries_a_request_id(client):
    acct = await signup(client)
    responses = [
        await client.get("/healthz"),
        await client.get("/v1/me", headers=acct.headers),
        await client.get("/v1/me"),
        await client.get("/v1/nowhere"),
        await client.delete("/v1/me"),
        await client.post("/v1/auth/signup", json={}),
    ]
    assert [r.status_code for r in responses] == [200, 200, 401, 404, 405, 422]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(i and SANE_REQUEST_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)  # a new one per request


@pytest.mark.parametrize("path", ["/healthz", "/v1/nowhere"])
async def test_sane_request_id_is_echoed(client, path):
    incoming = "req-1234.abcd_EF"
    r = await client.get(path, headers={"X-Request-ID": incoming})
    assert r.headers["x-request-id"] == incoming


async def test_request_id_of_128_chars_is_echoed(client):
    incoming = "a" * 128
    r = await client.get("/healthz", headers={"X-Request-ID": incoming})
    assert r.headers["x-request-id"] == incoming


@pytest.mark.parametrize("incoming", [
    "a" * 300,
    "a" * 129,
    "has spaces in it",
    "semi;colon",
    "quote\"d",
    "<script>",
])
@pytest.mark.parametrize("path", ["/healthz", "/v1/nowhere"])
async def test_insane_request_id_is_replaced(client, incoming, path):
    r = await client.get(path, headers={"X-Request-ID": incoming})
    returned = r.headers["x-request-id"]
    assert returned != incoming
    assert SANE_REQUEST_ID.match(returned)
    assert len(r.headers.get_list("x-request-id")) == 1
