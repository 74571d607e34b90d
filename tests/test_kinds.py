"""Cross-record rules live once: one currency type, one identity rule per kind for create and update, and the
registry of record kinds as the source of every list of kinds."""

from __future__ import annotations

import typing

import pytest

from app.api.v1 import changes, imports
from app.domain import kinds
from app.domain.activities import service as activities
from app.domain.activities.models import Activity
from app.domain.custom_fields.models import OBJECTS as CUSTOM_FIELD_OBJECTS
from app.domain.custom_fields.schemas import ObjectName
from app.domain.imports import service as import_service
from app.main import create_app
from app.settings import Settings
from tests.factories import signup

BAD = "z!9"


def _problem_names(r, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert any(field in [str(x) for x in e["loc"]] for e in r.json()["errors"]), r.json()


async def test_a_currency_that_is_not_iso_4217_is_422_everywhere_one_is_accepted(client):
    acct = await signup(client)
    h = acct.headers
    money = {"amount": "10.00", "currency": BAD}
    _problem_names(await client.post("/v1/deals", headers=h, json={"title": "D", "value": money}), "currency")
    deal = (await client.post("/v1/deals", headers=h, json={"title": "D"})).json()
    _problem_names(await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"value": money}), "currency")
    _problem_names(await client.put("/v1/deals/by-external-id/erp/D-1", headers=h,
                                    json={"title": "D", "value": money}), "currency")
    batch = await client.post("/v1/deals/batch", headers=h, json={"items": [{"title": "D", "value": money}]})
    assert batch.json()["results"][0]["status"] == "failed" and batch.json()["results"][0]["error"]["status"] == 422
    lead = (await client.post("/v1/leads", headers=h, json={"first_name": "Jo"})).json()
    _problem_names(await client.post(f"/v1/leads/{lead['id']}/convert", headers=h,
                                     json={"create_deal": True, "value": money}), "currency")
    stages = [{"name": "Open", "probability": 10}, {"name": "Won", "probability": 100, "kind": "won"},
              {"name": "Lost", "probability": 0, "kind": "lost"}]
    _problem_names(await client.post("/v1/pipelines", headers=h, json={"name": "P", "currency": BAD, "stages": stages}),
                   "currency")
    _problem_names(await client.patch(f"/v1/pipelines/{deal['pipeline_id']}", headers=h, json={"currency": BAD}),
                   "currency")
    _problem_names(await client.patch("/v1/org", headers=h, json={"default_currency": BAD}), "default_currency")
    for report in ("funnel", "win-loss", "forecast"):
        _problem_names(await client.get(f"/v1/reports/{report}", headers=h, params={"currency": BAD}), "currency")
    # nothing was written with the bad currency
    assert {d["value"]["currency"] for d in (await client.get("/v1/deals", headers=h)).json()["data"]} == {"EUR"}


async def test_a_currency_is_stored_as_its_upper_case_code(client):
    acct = await signup(client)
    r = await client.post("/v1/deals", headers=acct.headers,
                          json={"title": "D", "value": {"amount": "5.00", "currency": "usd"}})
    assert r.status_code == 201 and r.json()["value"]["currency"] == "USD"


@pytest.mark.parametrize(("plural", "body", "cleared"), [
    ("leads", {"first_name": "Jo", "email": "jo@park.io"}, ["first_name", "email"]),
    ("leads", {"title": "Demo", "phone": "+49 30 1234567", "company_name": "Park"}, ["title", "phone", "company_name"]),
    ("contacts", {"first_name": "Ana", "phone": "+49 30 1234567"}, ["first_name", "phone"]),
])
async def test_a_patch_that_clears_every_identity_field_is_422(client, plural, body, cleared):
    acct = await signup(client)
    record = (await client.post(f"/v1/{plural}", headers=acct.headers, json=body)).json()
    r = await client.patch(f"/v1/{plural}/{record['id']}", headers=acct.headers, json=dict.fromkeys(cleared))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    after = (await client.get(f"/v1/{plural}/{record['id']}", headers=acct.headers)).json()
    assert after["version"] == record["version"]
    # clearing all but one identity field is fine
    r = await client.patch(f"/v1/{plural}/{record['id']}", headers=acct.headers, json=dict.fromkeys(cleared[1:]))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("plural", ["leads", "contacts"])
async def test_a_record_without_identity_is_refused_on_every_create_path(client, plural):
    acct = await signup(client)
    h = acct.headers
    assert (await client.post(f"/v1/{plural}", headers=h, json={"source": "x"})).status_code == 422
    assert (await client.put(f"/v1/{plural}/by-external-id/erp/X-1", headers=h, json={"source": "x"})).status_code == 422
    batch = (await client.post(f"/v1/{plural}/batch", headers=h, json={"items": [{"source": "x"}]})).json()
    assert batch["results"][0]["status"] == "failed" and batch["results"][0]["error"]["status"] == 422
    assert (await client.get(f"/v1/{plural}", headers=h)).json()["data"] == []


def _literal(value) -> tuple[str, ...]:
    return tuple(typing.get_args(value))


def test_the_registry_is_the_source_of_every_list_of_kinds():
    assert len(kinds.BY_TYPE) == len(kinds.ALL) and len(kinds.BY_PLURAL) == len(kinds.ALL)
    # change-feed object types: every kind that writes events
    assert set(_literal(changes.ObjectType)) == {k.object_type for k in kinds.ALL if k.feed}
    # custom-field objects: every kind with a custom_fields column, in the model, the schema and the API
    assert CUSTOM_FIELD_OBJECTS == _literal(ObjectName) == kinds.names("custom_fields")
    assert set(kinds.names("custom_fields")) == {"contact", "company", "lead", "deal", "activity", "product"}
    # import objects
    assert import_service.OBJECTS == _literal(imports.ObjectName) == tuple(k.plural for k in kinds.having("importable"))
    # what an activity can be about: one column per flagged kind
    assert [f for f, _ in activities.REFS] == [f"{k.object_type}_id" for k in kinds.having("activity_ref")]
    assert all(hasattr(Activity, f) for f, _ in activities.REFS)
    # routes: timelines, schemas, custom-field filters, imports take the same lists
    app = create_app(Settings(env="test", jwt_secret="x" * 40))
    spec = app.openapi()
    timelines = {p.split("/")[2] for p in spec["paths"] if p.endswith("/{record_id}/timeline")}
    assert timelines == {k.plural for k in kinds.having("timeline")}
    for k in kinds.ALL:
        if k.custom_fields:
            assert f"/v1/{k.plural}" in spec["paths"] and f"/v1/{k.plural}/{{record_id}}" in spec["paths"]


def test_each_service_kind_is_its_registry_entry():
    from app.domain.companies.service import COMPANY
    from app.domain.contacts.service import CONTACT
    from app.domain.deals.service import DEAL
    from app.domain.forms.service import FORM
    from app.domain.leads.service import LEAD
    from app.domain.pipelines.service import PIPELINE
    from app.domain.records import Kind
    from app.domain.webhooks.service import WEBHOOK

    for kind in (CONTACT, COMPANY, LEAD, DEAL, activities.ACTIVITY, PIPELINE, FORM, WEBHOOK, import_service.IMPORT):
        entry = kinds.named(kind.object_type)
        assert kind.record_type is entry and kind.model is entry.model and kind.label == entry.label
    with pytest.raises(TypeError):
        Kind(kinds.CONTACT.model, "contact", "Person", kinds.CONTACT.read)  # a second description of a kind
