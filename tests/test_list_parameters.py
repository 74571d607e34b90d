"""Every read operation with query parameters, taken from the OpenAPI document, called with every parameter it
declares (a valid sample per type, format and enum), alone and all together: never a 5xx. A parameter added
later is covered here without anyone writing a test for it. Path parameters get real ids of the caller's org."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.factories import signup

# the committed document, which `crm openapi --check` keeps equal to the app's
DOCUMENT = json.loads(Path("openapi/openapi.json").read_text())
INSTANT = "2026-01-01T00:00:00Z"


def _operations() -> list[tuple[str, dict[str, Any]]]:
    """GET operations that declare query parameters: lists, their CSV exports, sub-lists and reports."""
    return [(path, ops["get"]) for path, ops in DOCUMENT["paths"].items()
            if "get" in ops and any(p["in"] == "query" for p in ops["get"].get("parameters", []))]


def _samples(schema: dict[str, Any], name: str, ids: dict[str, str]) -> list[Any]:
    """Valid values for one parameter: each enum member or constant (`me`), both booleans, a real id where the name says what
    it names, otherwise one value of the type and format."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    values: list[Any] = []
    for s in options:
        if "enum" in s:
            values += s["enum"]
        elif "const" in s:
            values.append(s["const"])
        elif s.get("type") == "array":
            values += [[v] for v in _samples(s["items"], name, ids)[:1]]
        elif s.get("type") == "boolean":
            values += ["true", "false"]
        elif s.get("type") in ("integer", "number"):
            values.append(s.get("minimum", 1) if name != "limit" else 10)
        elif s.get("format") == "uuid":
            values.append(ids.get(name, str(uuid.uuid4())))
        elif s.get("format") == "date-time":
            values.append(INSTANT)
        elif s.get("format") == "date":
            values.append("2026-01-01")
        elif s.get("examples"):
            values.append(s["examples"][0])
        elif name == "q":
            values += ["acme", "030 1234567", "ana@example.com"]
        elif name == "sort":
            values.append("-created_at")
        else:
            values.append("a" * max(1, s.get("minLength", 1)))
    return values


async def _fixtures(client, acct) -> dict[str, str]:
    """One record of each kind the read operations take as path or filter ids."""
    h = acct.headers

    async def post(url: str, body: dict[str, Any]) -> str:
        r = await client.post(url, headers=h, json=body)
        assert r.status_code == 201, (url, r.text)
        return r.json()["id"]

    pipelines = (await client.get("/v1/pipelines", headers=h)).json()["data"]
    pipeline = next(p for p in pipelines if p["is_default"])
    ids = {"pipeline_id": pipeline["id"], "stage_id": pipeline["stages"][0]["id"],
           "owner_id": acct.user_id, "assignee_id": acct.user_id, "actor_id": acct.user_id,
           "user_id": acct.user_id}
    ids["company_id"] = await post("/v1/companies", {"name": "Acme", "phone": "+49301234567"})
    ids["contact_id"] = await post("/v1/contacts", {"first_name": "Ana", "company_id": ids["company_id"]})
    ids["lead_id"] = await post("/v1/leads", {"first_name": "Leo"})
    ids["deal_id"] = await post("/v1/deals", {"title": "Acme renewal", "contact_id": ids["contact_id"]})
    ids["activity_id"] = await post("/v1/activities", {"type": "task", "subject": "Call Acme",
                                                        "deal_id": ids["deal_id"]})
    ids["form_id"] = await post("/v1/forms", {"name": "Contact us"})
    ids["webhook_id"] = await post("/v1/webhooks", {"url": "https://hooks.example.com/crm", "events": ["*"]})
    ids["team_id"] = await post("/v1/teams", {"name": "Field sales"})
    ids["mailbox_id"] = await post("/v1/mailboxes", {
        "email": "sales@acme-mail.example.com", "imap": {"host": "127.0.0.1", "port": 9, "username": "u",
                                                          "password": "p"}, "smtp": {"host": "127.0.0.1", "port": 9}})
    ids["template_id"] = await post("/v1/templates", {"name": "T", "body_text": "Hi {{ contact.first_name }}"})
    ids["segment_id"] = await post("/v1/segments", {"name": "All"})
    ids["campaign_id"] = await post("/v1/campaigns", {"name": "C", "template_id": ids["template_id"],
                                                      "segment_id": ids["segment_id"], "mailbox_id": ids["mailbox_id"]})
    ids["product_id"] = await post("/v1/products", {"name": "Seat", "sku": "SEAT"})
    ids["automation_id"] = await post("/v1/automations", {"name": "A", "trigger": {"event": "contact.created"},
                                                          "actions": [{"type": "add_tag", "tag": "x"}]})
    document_template = await post("/v1/document-templates", {
        "name": "Invoice", "kind": "invoice", "number_prefix": "INV", "body_html": "<p>{{ document.number }}</p>"})
    r = await client.post(f"/v1/deals/{ids['deal_id']}/documents", headers=h, json={"template_id": document_template})
    assert r.status_code == 202, r.text
    ids["document_id"] = r.json()["id"]
    from tests.test_files import PDF, upload

    made = await upload(client, h, "contact", ids["contact_id"], PDF)
    assert made.status_code == 201, made.text
    ids["file_id"] = made.json()["id"]
    return ids


def _path_ids(path: str, ids: dict[str, str]) -> str | None:
    """`/v1/deals/{record_id}/timeline` → the deal's id; None when a path parameter names nothing we made."""
    singular = {"contacts": "contact", "companies": "company", "leads": "lead", "deals": "deal",
                "activities": "activity", "pipelines": "pipeline", "products": "product"}
    parts = path.strip("/").split("/")
    for i, part in enumerate(parts):
        if part.startswith("{"):
            name = part[1:-1]
            key = f"{singular[parts[i - 1]]}_id" if name in ("record_id", "id") and parts[i - 1] in singular else name
            if key not in ids:
                return None
            parts[i] = ids[key]
    return "/" + "/".join(parts)


def test_every_parameterised_read_is_found():
    """The walk below sees the lists this test was written for, so an empty walk cannot pass."""
    ids = {"listDeals", "listActivities", "listContacts", "exportDeals", "getDealTimeline",
           "listWebhookDeliveries", "listAuditLog", "getFunnelReport"}
    assert ids <= {op["operationId"] for _, op in _operations()}


async def test_every_query_parameter_of_every_read_operation_answers_without_a_server_error(client):
    acct = await signup(client)
    ids = await _fixtures(client, acct)
    failures, calls = [], 0
    for path, op in _operations():
        url = _path_ids(path, ids)
        assert url is not None, f"{op['operationId']}: no id for a path parameter of {path}"
        params = [p for p in op["parameters"] if p["in"] == "query"]
        together: dict[str, Any] = {}
        for p in params:
            samples = _samples(p["schema"], p["name"], ids)
            assert samples, f"{op['operationId']}: no sample for {p['name']} {p['schema']}"
            together[p["name"]] = samples[0]
            for value in samples:
                r = await client.get(url, headers=acct.headers, params={p["name"]: value})
                calls += 1
                if r.status_code >= 500:
                    failures.append(f"{op['operationId']} {p['name']}={value!r}: {r.status_code} {r.text[:200]}")
        if "cursor" in together:  # a made-up cursor is rightly refused before anything else is looked at
            del together["cursor"]
        r = await client.get(url, headers=acct.headers, params=together)
        calls += 1
        if r.status_code >= 500:
            failures.append(f"{op['operationId']} all of {together}: {r.status_code} {r.text[:200]}")
    assert calls > 200
    assert not failures, "\n".join(failures)
