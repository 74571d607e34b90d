"""A query parameter an operation does not declare is refused (422 naming it and the allowed ones), on every
operation, so that a typo never returns unfiltered data (API.md "Conventions")."""

from __future__ import annotations

import re
import uuid

import pytest

from app.main import create_app
from app.settings import Settings
from tests.factories import signup

_DOC = create_app(Settings(env="test", jwt_secret="x" * 40)).openapi()
GETS = [path for path, item in _DOC["paths"].items() if "get" in item]


@pytest.mark.parametrize("path", GETS)
async def test_every_read_refuses_an_unknown_parameter(client, path):
    acct = await signup(client)
    concrete = re.sub(r"\{[^}]+\}", lambda m: "erp" if m.group(0) == "{source}" else (
        "validation" if m.group(0) == "{slug}" else str(uuid.uuid4())), path)
    r = await client.get(concrete, headers=acct.headers, params={"zz_unknown": "1"})
    assert r.status_code == 422, (path, r.status_code, r.text[:300])
    body = r.json()
    assert body["errors"][0]["loc"] == ["query", "zz_unknown"] and body["errors"][0]["type"] == "extra_forbidden"
    declared = [p["name"] for p in _DOC["paths"][path]["get"].get("parameters", []) if p["in"] == "query"]
    for name in declared:  # the answer names what the operation takes
        assert name in body["errors"][0]["msg"], (path, name)


async def test_a_typo_in_a_filter_is_an_error_not_every_deal(client):
    acct = await signup(client)
    r = await client.get("/v1/deals", headers=acct.headers, params={"stage": str(uuid.uuid4()), "ownr_id": "me"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "ownr_id"], ["query", "stage"]]
    assert "stage_id" in r.json()["errors"][0]["msg"]
    ok = await client.get("/v1/deals", headers=acct.headers, params={"owner_id": "me", "cf.region": "north",
                                                                      "stage_id": str(uuid.uuid4())})
    # declared parameters and custom-field filters pass the check (an undefined custom field is its own 422)
    assert all(e["type"] != "extra_forbidden" for e in ok.json().get("errors", [])), ok.text


async def test_changes_refuse_an_unknown_object_type(client):
    acct = await signup(client)
    r = await client.get("/v1/changes", headers=acct.headers, params={"types": "contacts"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["query", "types"] and "contact" in r.json()["errors"][0]["msg"]
    assert (await client.get("/v1/changes", headers=acct.headers, params={"types": "contact,deal"})).status_code == 200


async def test_a_public_form_keeps_the_pages_campaign_parameters(client):
    acct = await signup(client)
    form = (await client.post("/v1/forms", headers=acct.headers, json={"name": "Demo"})).json()
    r = await client.post(f"/v1/public/forms/{form['public_key']}/submissions",
                          params={"utm_source": "newsletter", "gclid": "abc"}, json={"email": "u@example.com"})
    assert r.status_code == 202, r.text
