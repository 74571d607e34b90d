"""Every error a client can meet is RFC 9457 problem+json, and every response carries X-Request-ID."""

from __future__ import annotations

import base64
import json
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


# --- what PostgreSQL cannot store is refused at the edge, naming the field -----------------------------


def _cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
@pytest.mark.parametrize("param", ["created_after", "created_before", "updated_since"])
async def test_a_datetime_filter_outside_the_storable_range_is_422(client, moment, param):
    acct = await signup(client)
    r = await client.get("/v1/contacts", params={param: moment}, headers=acct.headers)
    errors = assert_validation(r, "/v1/contacts")
    assert ["query", param] in [e["loc"] for e in errors]


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
async def test_a_datetime_in_a_body_outside_the_storable_range_is_422(client, moment):
    acct = await signup(client)
    r = await client.post("/v1/activities", json={"type": "task", "subject": "x", "due_at": moment},
                          headers=acct.headers)
    errors = assert_validation(r, "/v1/activities")
    assert ["body", "due_at"] in [e["loc"] for e in errors]


async def test_the_edges_of_the_storable_range_are_accepted(client):
    acct = await signup(client)
    for moment in ("9999-12-31T09:59:59-14:00", "0001-01-01T14:00:00+14:00"):
        r = await client.get("/v1/contacts", params={"created_after": moment}, headers=acct.headers)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("cursor,sort,path", [
    (_cursor("last_name", "a\u0000b", "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"), "last_name", "/v1/contacts"),
    (_cursor("last_name", "a\udfffb", "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"), "last_name", "/v1/contacts"),
    (_cursor("-created_at", "2024-01-01T00:00:00+00:00\u0000", "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"), None,
     "/v1/contacts"),
    (_cursor("-created_at", "9999-12-31T23:59:59-14:00", "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"), None,
     "/v1/contacts"),
    (_cursor("value", "x", "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"), "value", "/v1/deals"),
    (_cursor("value", "NaN", "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"), "value", "/v1/deals"),
    (_cursor("value", {"a": 1}, "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"), "value", "/v1/deals"),
])
async def test_a_cursor_holding_what_postgresql_cannot_compare_is_422(client, cursor, sort, path):
    acct = await signup(client)
    params = {"cursor": cursor, **({"sort": sort} if sort else {})}
    r = await client.get(path, params=params, headers=acct.headers)
    errors = assert_validation(r, path)
    assert ["query", "cursor"] in [e["loc"] for e in errors]


@pytest.mark.parametrize("username", ["a\u0000b@example.com", "\u0000"])
async def test_a_nul_in_a_login_name_is_422(client, username):
    r = await client.post("/v1/auth/token", data={"username": username, "password": "whatever"})
    errors = assert_validation(r, "/v1/auth/token")
    assert ["body", "username"] in [e["loc"] for e in errors]


@pytest.mark.parametrize("raw", [
    b'{"first_name": "A", "custom_fields": {"note": "\\udfff"}}',
    b'{"first_name": "A", "custom_fields": {"note": "ok", "\\ud800": "key"}}',
    b'{"first_name": "A", "address": {"city": "\\udfff"}}',
])
async def test_an_unpaired_surrogate_anywhere_in_a_body_is_422(client, raw):
    acct = await signup(client)
    r = await client.post("/v1/custom-fields", headers=acct.headers,
                          json={"object": "contact", "key": "note", "label": "Note", "type": "text"})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/contacts", content=raw, headers={**acct.headers, "Content-Type": "application/json"})
    errors = assert_validation(r, "/v1/contacts")
    assert any("surrogate" in e["msg"] for e in errors)
    assert (await client.get("/v1/contacts", headers=acct.headers)).json()["data"] == []


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, 10**30])
async def test_a_number_custom_field_beyond_bigint_is_422_naming_it(client, value):
    acct = await signup(client)
    r = await client.post("/v1/custom-fields", headers=acct.headers,
                          json={"object": "contact", "key": "seats", "label": "Seats", "type": "number"})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/contacts", json={"first_name": "A", "custom_fields": {"seats": value}},
                          headers=acct.headers)
    errors = assert_validation(r, "/v1/contacts")
    assert ["body", "custom_fields", "seats"] in [e["loc"] for e in errors]
    r = await client.get("/v1/contacts", params={"cf.seats": str(value)}, headers=acct.headers)
    errors = assert_validation(r, "/v1/contacts")
    assert ["query", "cf.seats"] in [e["loc"] for e in errors]
    for fine in (2**63 - 1, -(2**63), 1.5e300):
        r = await client.post("/v1/contacts", json={"first_name": "A", "custom_fields": {"seats": fine}},
                              headers=acct.headers)
        assert r.status_code == 201, r.text
        assert r.json()["custom_fields"]["seats"] == fine


async def test_a_long_ad_click_id_on_a_form_submission_is_kept(client):
    acct = await signup(client)
    form = (await client.post("/v1/forms", headers=acct.headers, json={"name": "Demo"})).json()
    gclid, fbclid = "Cj0KCQ" + "x" * 600, "IwAR" + "y" * 400
    r = await client.post(f"/v1/public/forms/{form['public_key']}/submissions",
                          json={"email": "ana@example.com", "gclid": gclid, "fbclid": fbclid})
    assert r.status_code == 202, r.text
    subs = (await client.get(f"/v1/forms/{form['id']}/submissions", headers=acct.headers)).json()["data"]
    assert (subs[0]["gclid"], subs[0]["fbclid"]) == (gclid, fbclid)
    assert len((await client.get("/v1/leads", headers=acct.headers)).json()["data"]) == 1


def test_every_text_a_body_may_carry_fits_its_column():
    """Each input schema's maxLength (or enum) is within the column it is stored in, area by area."""
    import importlib
    import inspect
    import pkgutil

    from sqlalchemy import String

    import app.domain
    import app.domain.models  # noqa: F401 - every table
    from app.domain.base import Base
    from app.domain.schemas import InputModel

    normalised = {"phone"}  # stored as E.164 (at most 16 characters) whatever the input's length
    in_json = {"SegmentFilter"}  # kept whole in a jsonb column (segments.filter): its names are no columns

    def bound(prop: dict, defs: dict) -> int | None:
        if "$ref" in prop:
            prop = defs[prop["$ref"].split("/")[-1]]
        if "anyOf" in prop:
            bounds = [bound(p, defs) for p in prop["anyOf"] if p.get("type") != "null"]
            return None if None in bounds else max(bounds)
        if "enum" in prop or "const" in prop:
            return max(len(str(v)) for v in prop.get("enum", [prop.get("const")]))
        if prop.get("type") == "string":
            return prop.get("maxLength", 64 if "pattern" in prop and "{0,63}" in prop["pattern"] else None)
        return 0

    checked, wrong = 0, []
    for area in pkgutil.iter_modules(app.domain.__path__):
        try:
            schemas = importlib.import_module(f"app.domain.{area.name}.schemas")
            models = importlib.import_module(f"app.domain.{area.name}.models")
        except ModuleNotFoundError:
            continue
        columns: dict[str, int] = {}
        for table in (c for c in vars(models).values() if inspect.isclass(c) and issubclass(c, Base)
                      and hasattr(c, "__table__")):
            for column in table.__table__.columns:
                if isinstance(column.type, String) and column.type.length:
                    columns[column.name] = min(column.type.length, columns.get(column.name, 1 << 30))
        for model in (c for c in vars(schemas).values() if inspect.isclass(c) and issubclass(c, InputModel)
                      and c.__module__ == schemas.__name__ and c.__name__ not in in_json):
            schema = model.model_json_schema()
            for name, prop in schema.get("properties", {}).items():
                if name in columns and name not in normalised:
                    checked += 1
                    n = bound(prop, schema.get("$defs", {}))
                    if n is None or n > columns[name]:
                        wrong.append(f"{model.__name__}.{name}: {n} > {columns[name]}")
    assert checked > 50 and wrong == []


# --- conditional requests: the caller first, then the precondition -----------------------------------


@pytest.mark.parametrize("if_match", ['"1"', '"999"', "garbage", '"' + "9" * 4400 + '"', '"²"'.encode("latin-1")])
async def test_if_match_is_checked_after_authentication(client, if_match):
    acct = await signup(client)
    contact = (await client.post("/v1/contacts", json={"first_name": "A"}, headers=acct.headers)).json()
    activity = (await client.post("/v1/activities", json={"type": "task", "subject": "x"}, headers=acct.headers)).json()
    bad = {"Authorization": "Bearer garbage", "If-Match": if_match}
    for method, path in [("PATCH", f"/v1/contacts/{contact['id']}"), ("DELETE", f"/v1/contacts/{contact['id']}"),
                         ("POST", f"/v1/activities/{activity['id']}/complete"), ("PATCH", "/v1/org")]:
        r = await client.request(method, path, headers=bad, json={} if method != "DELETE" else None)
        assert_problem(r, 401, path, "/problems/unauthorized")


@pytest.mark.parametrize("if_match", ['"' + "9" * 4400 + '"', '"99999999999"', '"²"'.encode("latin-1"),
                                      'W/"' + "1" * 5000 + '"'])
async def test_an_if_match_no_version_can_match_is_412_not_500(client, if_match):
    acct = await signup(client)
    contact = (await client.post("/v1/contacts", json={"first_name": "A"}, headers=acct.headers)).json()
    path = f"/v1/contacts/{contact['id']}"
    r = await client.patch(path, json={"first_name": "B"}, headers={**acct.headers, "If-Match": if_match})
    assert_problem(r, 412, path, "/problems/precondition-failed")
    r = await client.get(path, headers={**acct.headers, "If-None-Match": if_match})
    assert r.status_code == 200


# --- upsert by external id ---------------------------------------------------------------------------


async def test_an_upsert_whose_body_holds_the_most_external_ids_is_422_naming_them(client):
    acct = await signup(client)
    ids = [{"source": "crm2", "id": str(i)} for i in range(20)]
    path = "/v1/contacts/by-external-id/erp/E-1"
    r = await client.put(path, json={"first_name": "A", "external_ids": ids}, headers=acct.headers)
    errors = assert_validation(r, path)
    assert ["body", "external_ids"] in [e["loc"] for e in errors]
    # with the path's own id among them there is room: nothing is added
    r = await client.put(path, json={"first_name": "A", "external_ids": [*ids[:19], {"source": "erp", "id": "E-1"}]},
                         headers=acct.headers)
    assert r.status_code == 201, r.text
    assert len(r.json()["external_ids"]) == 20


async def test_activities_have_no_upsert_by_external_id(client):
    """API.md: upsert by external id is for contacts, companies, deals and leads; activities carry no external ids."""
    acct = await signup(client)
    path = "/v1/activities/by-external-id/erp/A-1"
    r = await client.put(path, json={"type": "task", "subject": "x"}, headers=acct.headers)
    assert r.status_code in (404, 405) and r.headers["content-type"].startswith(PROBLEM), r.text
    assert (await client.get(path, headers=acct.headers)).status_code in (404, 405)
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/v1/activities/by-external-id/{source}/{external_id}" not in paths
    assert "/v1/contacts/by-external-id/{source}/{external_id}" in paths


@pytest.mark.parametrize("source,external_id", [("%0B", "E-1"), ("erp", "%20%20"), ("%09erp", "E-1")])
async def test_an_upsert_path_is_trimmed_like_the_body_and_never_blank(client, source, external_id):
    acct = await signup(client)
    path = f"/v1/companies/by-external-id/{source}/{external_id}"
    r = await client.put(path, json={"name": "Acme"}, headers=acct.headers)
    if source == "%09erp":  # "\terp" is the external id erp/E-1: created, then found by its trimmed form
        assert r.status_code == 201, r.text
        assert r.json()["external_ids"] == [{"source": "erp", "id": "E-1"}]
        again = await client.put("/v1/companies/by-external-id/erp/E-1", json={"name": "Acme 2"}, headers=acct.headers)
        assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
        return
    errors = assert_validation(r, path.replace("%0B", "\x0b").replace("%20", " "))
    assert errors[0]["loc"][0] == "path"
