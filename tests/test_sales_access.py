"""Who may call which sales-core route: authentication, roles, API-key scopes, tenancy, and input rules.

The records the matrix works on are committed once per module (two organisations, their users, keys and
records); each test then runs in the usual rolled-back transaction, so whatever a request changes is
undone before the next test. One app serves the whole module (as `client` does per test, every request
gets its own session inside the test's outer transaction), which keeps several hundred cases fast.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.api.deps import get_session
from app.db import transaction
from app.main import create_app
from tests.conftest import savepoint_session
from tests.factories import Account, signup

PROBLEM = "application/problem+json"
AREAS = ("contacts", "companies", "leads", "deals", "activities", "pipelines", "custom_fields")
Ids = dict[str, Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # placeholders name records of the world: {contact}, {deleted_deal}, {pipeline}, ...
    scope: str  # what an API key needs
    ok: int = 200  # the status its owner gets
    admin: bool = False  # admins only (pipelines, custom fields)
    body: Callable[[Ids], Any] | None = None
    probe: str | None = None  # GET (by the owner) that shows the record the route acts on
    also: tuple[str, ...] = ()  # scopes needed besides `scope`: the kinds the route also writes

    @property
    def reads(self) -> bool:
        return self.method == "GET"

    @property
    def targets_a_record(self) -> bool:
        return "{" in self.path

    def url(self, ids: Ids) -> str:
        return self.path.format(**ids)

    def json(self, ids: Ids) -> Any:
        return self.body(ids) if self.body else None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _const(value: Any) -> Callable[[Ids], Any]:
    return lambda ids: value


RECORD_KINDS = [
    # plural, singular, a valid create body, a valid patch body
    ("contacts", "contact", {"first_name": "New"}, {"title": "Changed"}),
    ("companies", "company", {"name": "New Co"}, {"industry": "Changed"}),
    ("leads", "lead", {"title": "New lead"}, {"status": "working"}),
    ("deals", "deal", {"title": "New deal"}, {"title": "Changed"}),
    ("activities", "activity", {"type": "note", "subject": "New note"}, {"subject": "Changed"}),
]
NEW_PIPELINE = {"name": "Another", "stages": [{"name": "Open", "probability": 10},
                                              {"name": "Won", "probability": 100, "kind": "won"},
                                              {"name": "Lost", "probability": 0, "kind": "lost"}]}


def _routes() -> list[Route]:
    routes: list[Route] = []
    for plural, one, create, patch in RECORD_KINDS:
        read, write = f"{plural}:read", f"{plural}:write"
        probe = f"/v1/{plural}/{{{one}}}?include_deleted=true"
        routes += [
            Route("GET", f"/v1/{plural}", read),
            Route("POST", f"/v1/{plural}", write, 201, body=_const(create)),
            Route("GET", f"/v1/{plural}/{{{one}}}", read, probe=probe),
            Route("PATCH", f"/v1/{plural}/{{{one}}}", write, body=_const(patch), probe=probe),
            Route("DELETE", f"/v1/{plural}/{{{one}}}", write, 204, probe=probe),
            Route("POST", f"/v1/{plural}/{{deleted_{one}}}/restore", write,
                  probe=f"/v1/{plural}/{{deleted_{one}}}?include_deleted=true"),
        ]
        if plural != "activities":
            routes.append(Route("GET", f"/v1/{plural}/{{{one}}}/timeline", read, probe=probe))
    routes += [
        Route("POST", "/v1/leads/{lead}/convert", "leads:write", body=_const({"create_deal": True}),
              also=("contacts:write", "companies:write", "deals:write"),
              probe="/v1/leads/{lead}"),
        Route("GET", "/v1/deals/{deal}/stage-history", "deals:read", probe="/v1/deals/{deal}"),
        Route("POST", "/v1/activities/{activity}/complete", "activities:write", probe="/v1/activities/{activity}"),
    ]
    pipeline = "/v1/pipelines/{pipeline}"
    routes += [
        Route("GET", "/v1/pipelines", "pipelines:read"),
        Route("POST", "/v1/pipelines", "pipelines:write", 201, admin=True, body=_const(NEW_PIPELINE)),
        Route("GET", pipeline, "pipelines:read", probe=pipeline),
        Route("PATCH", pipeline, "pipelines:write", admin=True, body=_const({"name": "Changed"}), probe=pipeline),
        Route("DELETE", pipeline, "pipelines:write", 204, admin=True, probe=pipeline),
        Route("GET", f"{pipeline}/stages", "pipelines:read", probe=pipeline),
        Route("POST", f"{pipeline}/stages", "pipelines:write", 201, admin=True,
              body=_const({"name": "Added", "probability": 20}), probe=pipeline),
        Route("PATCH", f"{pipeline}/stages/{{stage}}", "pipelines:write", admin=True,
              body=_const({"name": "Renamed"}), probe=pipeline),
        Route("DELETE", f"{pipeline}/stages/{{stage}}", "pipelines:write", 204, admin=True, probe=pipeline),
        Route("POST", f"{pipeline}/stages/reorder", "pipelines:write", admin=True,
              body=lambda ids: {"stage_ids": list(reversed(ids["stages"]))}, probe=pipeline),
        Route("GET", "/v1/custom-fields", "custom_fields:read"),
        Route("POST", "/v1/custom-fields", "custom_fields:write", 201, admin=True,
              body=_const({"object": "deal", "key": "added_field", "label": "Added", "type": "text"})),
        Route("PATCH", "/v1/custom-fields/{field}", "custom_fields:write", admin=True,
              body=_const({"label": "Changed"}), probe="/v1/custom-fields"),
        Route("DELETE", "/v1/custom-fields/{field}", "custom_fields:write", 204, admin=True,
              probe="/v1/custom-fields"),
    ]
    routes += [Route("GET", f"/v1/schema/{obj}", "custom_fields:read")
               for obj in ("contact", "company", "lead", "deal", "activity")]
    return routes


ROUTES = _routes()
RECORD_ROUTES = [r for r in ROUTES if r.targets_a_record]


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}"
    assert r.headers["content-type"] == PROBLEM, r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["type"].startswith("/problems/") and body["title"]
    return body


def _ok(r: httpx.Response, route: Route) -> None:
    assert r.status_code == route.ok, f"{route}: {r.status_code} {r.text}"


# --- the world --------------------------------------------------------------------------------------------


@dataclass
class World:
    a: Account  # the org whose records every route acts on
    b: Account  # another org
    viewer: Account
    member: Account
    admin: Account
    ids: Ids
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # scope -> headers of a key with only that scope

    def random_ids(self) -> Ids:
        return {k: (str(uuid.uuid4()) if isinstance(v, str) else v) for k, v in self.ids.items()}


async def _post(c: httpx.AsyncClient, who: Account, path: str, body: Any, status: int = 201) -> dict[str, Any]:
    r = await c.post(path, headers=who.headers, json=body)
    assert r.status_code == status, r.text
    return r.json()


@pytest.fixture(scope="module")
async def world(settings, database, redis) -> World:
    app = create_app(settings, db=database, redis=redis)  # the real unit of work: all of this is committed
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        a, b = await signup(c, "Access A"), await signup(c, "Access B")
        viewer, member, admin = await a.invite("viewer"), await a.invite("member"), await a.invite("admin")
        ids: Ids = {}
        for plural, one, create, _ in RECORD_KINDS:
            # Owned by the member, so that whatever rule decides who may delete, the member may.
            mine = {**create, "owner_id": member.user_id}
            ids[one] = (await _post(c, a, f"/v1/{plural}", mine))["id"]
            ids[f"deleted_{one}"] = gone = (await _post(c, a, f"/v1/{plural}", mine))["id"]
            assert (await c.delete(f"/v1/{plural}/{gone}", headers=a.headers)).status_code == 204
        # The lead has a company name; the timelines have an entry; the deal has moved once (stage history).
        r = await c.patch(f"/v1/leads/{ids['lead']}", headers=a.headers, json={"company_name": "Lead Co"})
        assert r.status_code == 200, r.text
        await _post(c, a, "/v1/activities", {"type": "task", "subject": "Call", "contact_id": ids["contact"],
                                             "deal_id": ids["deal"], "lead_id": ids["lead"]})
        default = (await c.get("/v1/pipelines", headers=a.headers)).json()["data"][0]
        r = await c.patch(f"/v1/deals/{ids['deal']}", headers=a.headers, json={"stage_id": default["stages"][1]["id"]})
        assert r.status_code == 200, r.text
        extra = await _post(c, a, "/v1/pipelines", {"name": "Extra", "stages": [
            {"name": "First", "probability": 10}, {"name": "Spare", "probability": 30},
            {"name": "Won", "probability": 100, "kind": "won"}, {"name": "Lost", "probability": 0, "kind": "lost"}]})
        ids["pipeline"] = extra["id"]
        ids["stages"] = [s["id"] for s in extra["stages"]]
        ids["stage"] = extra["stages"][1]["id"]  # an open stage without deals: can be deleted
        ids["field"] = (await _post(c, a, "/v1/custom-fields",
                                    {"object": "contact", "key": "segment", "label": "Segment", "type": "text"}))["id"]
        keys = {}
        for area in AREAS:
            for level in ("read", "write"):
                keys[f"{area}:{level}"] = await a.api_key([f"{area}:{level}"])
        return World(a, b, viewer, member, admin, ids, keys)


@pytest.fixture(scope="module")
async def _shared_app(settings, database, redis):
    current: dict[str, Any] = {}
    application = create_app(settings, db=database, redis=redis)

    async def test_session():
        async with savepoint_session(current["connection"]) as s, transaction(s):
            yield s

    application.dependency_overrides[get_session] = test_session
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://crm.test") as c:
        yield c, current


@pytest.fixture
async def api(_shared_app, connection) -> httpx.AsyncClient:
    """Like `client`: everything a test's requests write is rolled back at its end."""
    c, current = _shared_app
    current["connection"] = connection
    return c


def _route_ids(routes: list[Route]) -> list[str]:
    return [str(r) for r in routes]


# --- authentication ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=_route_ids(ROUTES))
async def test_no_or_bad_credentials_are_401(api, route):
    ids = {k: str(uuid.uuid4()) for k in ("contact", "company", "lead", "deal", "activity", "pipeline", "stage",
                                           "field", "deleted_contact", "deleted_company", "deleted_lead",
                                           "deleted_deal", "deleted_activity")}
    ids["stages"] = [ids["stage"]]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = await api.request(route.method, route.url(ids), headers=headers, json=route.json(ids))
        body = _problem(r, 401)
        assert body["type"] == "/problems/unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", ["Bearer crm_nope_nope", "Basic dXNlcjpwYXNz", "Bearer ", "bearer",
                                           "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
async def test_malformed_credentials_are_401(api, authorization):
    r = await api.get("/v1/contacts", headers={"Authorization": authorization})
    assert _problem(r, 401)["type"] == "/problems/unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


# --- roles ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=_route_ids(ROUTES))
async def test_viewers_read_members_write_admins_manage(api, world, route):
    ids = world.ids
    r = await api.request(route.method, route.url(ids), headers=world.viewer.headers, json=route.json(ids))
    if route.reads:
        _ok(r, route)
    else:
        assert _problem(r, 403)["type"] == "/problems/forbidden"

    r = await api.request(route.method, route.url(ids), headers=world.member.headers, json=route.json(ids))
    if route.admin:
        assert _problem(r, 403)["type"] == "/problems/forbidden"
        r = await api.request(route.method, route.url(ids), headers=world.admin.headers, json=route.json(ids))
    _ok(r, route)


# --- API-key scopes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=_route_ids(ROUTES))
async def test_api_keys_need_the_routes_scope(api, world, route):
    ids = world.ids
    area, _, level = route.scope.partition(":")
    lacking = [world.keys[f"{area}:read"]] if level == "write" else []
    lacking += [world.keys[f"{other}:write"] for other in AREAS if other != area]
    if route.scope != "contacts:read":
        lacking.append(world.keys["contacts:read"])  # e.g. a contacts reader writing a contact or reading deals
    for headers in lacking:
        r = await api.request(route.method, route.url(ids), headers=headers, json=route.json(ids))
        assert _problem(r, 403)["type"] == "/problems/forbidden"

    if route.also:  # holding the route's own scope is not enough: every kind it writes needs its scope
        r = await api.request(route.method, route.url(ids), headers=world.keys[route.scope], json=route.json(ids))
        assert _problem(r, 403)["missing_scopes"] == list(route.also)
    holder = world.keys[route.scope]
    if route.also:
        made = await api.post("/v1/api-keys", headers=world.a.headers, json={"name": "k", "scopes": [route.scope, *route.also]})
        holder = {"Authorization": f"Bearer {made.json()['secret']}"}
    r = await api.request(route.method, route.url(ids), headers=holder, json=route.json(ids))
    _ok(r, route)
    if level == "read":  # write implies read
        r = await api.request(route.method, route.url(ids), headers=world.keys[f"{area}:write"])
        _ok(r, route)


# --- tenancy ----------------------------------------------------------------------------------------------


def _comparable(r: httpx.Response) -> tuple:
    body = r.json()
    body.pop("instance", None)  # the path differs, of course
    return r.status_code, r.headers["content-type"], body


@pytest.mark.parametrize("route", RECORD_ROUTES, ids=_route_ids(RECORD_ROUTES))
async def test_another_orgs_record_is_404_like_a_random_id(api, world, route):
    ids, a, b = world.ids, world.a, world.b
    probe = route.probe.format(**ids) if route.probe else None
    before = (await api.get(probe, headers=a.headers)).json() if probe else None

    theirs = await api.request(route.method, route.url(ids), headers=b.headers, json=route.json(ids))
    nobody = await api.request(route.method, route.url(world.random_ids()), headers=b.headers,
                                  json=route.json(world.random_ids()))
    assert _problem(theirs, 404)["type"] == "/problems/not-found"
    assert _comparable(theirs) == _comparable(nobody)
    assert "Access A" not in theirs.text

    if probe:
        after = await api.get(probe, headers=a.headers)
        assert after.status_code == 200 and after.json() == before  # untouched, version included

    # The same request by the record's own org works: the route exists and the 404 was about tenancy.
    r = await api.request(route.method, route.url(ids), headers=a.headers, json=route.json(ids))
    _ok(r, route)


@pytest.mark.parametrize("plural", ["contacts", "companies", "leads", "deals", "activities", "pipelines"])
async def test_lists_never_show_another_orgs_records(api, world, plural):
    r = await api.get(f"/v1/{plural}", headers=world.b.headers, params={"limit": 200})
    assert r.status_code == 200
    theirs = {v for k, v in world.ids.items() if isinstance(v, str)}
    assert not {row["id"] for row in r.json()["data"]} & theirs
    r = await api.get(f"/v1/{plural}", headers=world.a.headers, params={"limit": 200})
    assert {row["id"] for row in r.json()["data"]} & theirs  # A does see them


# --- input rules ------------------------------------------------------------------------------------------

WRITES_WITH_BODY = [r for r in ROUTES if r.body is not None]


@pytest.mark.parametrize("route", WRITES_WITH_BODY, ids=_route_ids(WRITES_WITH_BODY))
async def test_unknown_body_field_is_422_naming_it(api, world, route):
    ids = world.ids
    r = await api.request(route.method, route.url(ids), headers=world.a.headers,
                             json={**route.json(ids), "nickname": "x"})
    body = _problem(r, 422)
    assert ["body", "nickname"] in [e["loc"] for e in body["errors"]]
    assert "nickname" in body["detail"]


WRONG_TYPES = [
    ("POST", "/v1/contacts", {"first_name": "A", "tags": "vip"}, ["body", "tags"]),
    ("POST", "/v1/contacts", {"first_name": 5}, ["body", "first_name"]),
    ("POST", "/v1/contacts", {"first_name": "A", "birthday": "last spring"}, ["body", "birthday"]),
    ("POST", "/v1/contacts", {"first_name": "A", "company_id": "not-a-uuid"}, ["body", "company_id"]),
    ("PATCH", "/v1/contacts/{contact}", {"utm": "google"}, ["body", "utm"]),
    ("POST", "/v1/companies", {"name": ["Acme"]}, ["body", "name"]),
    ("POST", "/v1/companies", {"name": "Acme", "size": "huge"}, ["body", "size"]),
    ("POST", "/v1/leads", {"title": "L", "status": 3}, ["body", "status"]),
    ("PATCH", "/v1/leads/{lead}", {"status": "converted"}, ["body", "status"]),
    ("POST", "/v1/deals", {"title": "D", "value": {"amount": "lots"}}, ["body", "value", "amount"]),
    ("POST", "/v1/deals", {"title": "D", "expected_close_date": 20261231}, ["body", "expected_close_date"]),
    ("PATCH", "/v1/deals/{deal}", {"value": 100}, ["body", "value"]),
    ("POST", "/v1/activities", {"type": "note", "subject": "s", "due_at": "tomorrow"}, ["body", "due_at"]),
    ("POST", "/v1/activities", {"type": "fax", "subject": "s"}, ["body", "type"]),
    ("POST", "/v1/pipelines", {**NEW_PIPELINE, "is_default": "perhaps"}, ["body", "is_default"]),
    ("POST", "/v1/pipelines/{pipeline}/stages", {"name": "S", "probability": "high"}, ["body", "probability"]),
    ("POST", "/v1/custom-fields", {"object": "deal", "key": "k", "label": "K", "type": "text", "required": "maybe"},
     ["body", "required"]),
    ("POST", "/v1/leads/{lead}/convert", {"create_deal": "yes please"}, ["body", "create_deal"]),
]


@pytest.mark.parametrize(("method", "path", "body", "loc"), WRONG_TYPES,
                         ids=[f"{m} {p} {'.'.join(map(str, loc[1:]))}" for m, p, _, loc in WRONG_TYPES])
async def test_wrong_type_is_422_naming_the_field(api, world, method, path, body, loc):
    r = await api.request(method, path.format(**world.ids), headers=world.a.headers, json=body)
    assert loc in [e["loc"] for e in _problem(r, 422)["errors"]]


LISTS = [r for r in ROUTES if r.reads and (r.path.endswith("/timeline") or r.path in (
    "/v1/contacts", "/v1/companies", "/v1/leads", "/v1/deals", "/v1/activities", "/v1/pipelines"))]


@pytest.mark.parametrize("route", LISTS, ids=_route_ids(LISTS))
async def test_limit_is_1_to_200(api, world, route):
    url = route.url(world.ids)
    for bad in ("201", "0", "-1", "ten"):
        r = await api.get(url, headers=world.a.headers, params={"limit": bad})
        assert ["query", "limit"] in [e["loc"] for e in _problem(r, 422)["errors"]], bad
    for good in ("1", "200"):
        r = await api.get(url, headers=world.a.headers, params={"limit": good})
        assert r.status_code == 200 and len(r.json()["data"]) <= int(good)


SORTS = {"contacts": ["created_at", "updated_at", "last_name"], "leads": ["created_at", "updated_at", "last_name"],
         "companies": ["created_at", "updated_at"], "activities": ["created_at", "updated_at", "due_at"],
         "deals": ["created_at", "updated_at", "value", "expected_close_date", "stage_entered_at"],
         "pipelines": ["created_at", "updated_at"]}


@pytest.mark.parametrize("route", LISTS, ids=_route_ids(LISTS))
async def test_unknown_sort_is_422(api, world, route):
    url = route.url(world.ids)
    for bad in ("bogus", "-bogus", "email", "owner_id;drop table contacts"):
        r = await api.get(url, headers=world.a.headers, params={"sort": bad})
        assert ["query", "sort"] in [e["loc"] for e in _problem(r, 422)["errors"]], bad
    plural = url.split("/")[2]
    if not url.endswith("/timeline"):
        for good in SORTS[plural]:
            for key in (good, f"-{good}"):
                r = await api.get(url, headers=world.a.headers, params={"sort": key})
                assert r.status_code == 200, (key, r.text)


SPARSE = [r for r in ROUTES if r.reads and r.path.startswith(
    ("/v1/contacts", "/v1/companies", "/v1/leads", "/v1/deals", "/v1/activities", "/v1/pipelines"))
    and not r.path.endswith(("/timeline", "/stage-history", "/stages"))]


@pytest.mark.parametrize("route", SPARSE, ids=_route_ids(SPARSE))
async def test_sparse_fields(api, world, route):
    url = route.url(world.ids)
    r = await api.get(url, headers=world.a.headers, params={"fields": "id,bogus"})
    body = _problem(r, 422)
    assert ["query", "fields"] in [e["loc"] for e in body["errors"]] and "bogus" in body["detail"]

    r = await api.get(url, headers=world.a.headers, params={"fields": "id,created_at"})
    assert r.status_code == 200
    rows = r.json()["data"] if "data" in r.json() else [r.json()]
    assert rows and all(set(row) == {"id", "created_at"} for row in rows)


SERVER_OWNED = {
    "contacts": ({"first_name": "A"}, ["id", "org_id", "version", "created_at", "updated_at", "deleted_at"]),
    "companies": ({"name": "A"}, ["id", "org_id", "version", "created_at", "updated_at", "deleted_at"]),
    "leads": ({"title": "A"}, ["id", "version", "created_at", "contact_id", "converted_at", "deal_id"]),
    "deals": ({"title": "A"}, ["id", "version", "created_at", "status", "closed_at", "stage_entered_at"]),
    "activities": ({"type": "note", "subject": "A"}, ["id", "version", "created_at", "updated_at"]),
    "pipelines": (NEW_PIPELINE, ["id", "version", "created_at"]),
    "custom-fields": ({"object": "deal", "key": "k", "label": "K", "type": "text"}, ["id", "version", "created_at"]),
}
VALUES = {"id": str(uuid.uuid4()), "org_id": str(uuid.uuid4()), "version": 7, "created_at": "2020-01-01T00:00:00Z",
          "updated_at": "2020-01-01T00:00:00Z", "deleted_at": None, "status": "won", "closed_at": "2020-01-01T00:00:00Z",
          "stage_entered_at": "2020-01-01T00:00:00Z", "contact_id": str(uuid.uuid4()),
          "converted_at": "2020-01-01T00:00:00Z", "deal_id": str(uuid.uuid4())}


@pytest.mark.parametrize("plural", list(SERVER_OWNED))
async def test_server_owned_fields_cannot_be_set(api, world, plural):
    base, owned = SERVER_OWNED[plural]
    one = {"contacts": "contact", "companies": "company", "leads": "lead", "deals": "deal",
           "activities": "activity", "pipelines": "pipeline", "custom-fields": "field"}[plural]
    before = (await api.get(f"/v1/{plural}", headers=world.a.headers)).json()["data"]
    for name in owned:
        r = await api.post(f"/v1/{plural}", headers=world.a.headers, json={**base, name: VALUES[name]})
        assert ["body", name] in [e["loc"] for e in _problem(r, 422)["errors"]], name
        r = await api.patch(f"/v1/{plural}/{world.ids[one]}", headers=world.a.headers, json={name: VALUES[name]})
        assert ["body", name] in [e["loc"] for e in _problem(r, 422)["errors"]], name
    assert (await api.get(f"/v1/{plural}", headers=world.a.headers)).json()["data"] == before
