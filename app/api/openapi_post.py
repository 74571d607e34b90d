"""What the OpenAPI document says beyond what FastAPI derives from the routes, so that clients generated from it
know everything the server does: the headers every route reads or sends (Idempotency-Key, ETag, If-Match,
If-None-Match, RateLimit-*), the answers every route can give (304, 400, 412, 413, 429), which routes are
public (`security: []`), and the tags, servers, contact and licence of the document itself.

It runs once over the generated document (app/main.py). tests/test_openapi_lint.py lints the result with
Spectral's `spectral:oas` and Redocly's recommended rulesets."""

from __future__ import annotations

import inspect
from typing import Any

from app.api.problems import PROBLEM_MEDIA_TYPE, RATE_LIMIT_HEADERS

TAGS: dict[str, str] = {
    "operations": "Liveness, readiness, metrics and the pages behind problem `type` URIs.",
    "auth": "Sign-up, OAuth2 password and refresh grants, logout.",
    "users": "The people of an organisation: roles, managers, activation.",
    "teams": "Teams and their managers: record visibility follows them.",
    "api keys": "Organisation API keys with scopes, for partner systems.",
    "organisation": "The organisation's settings, members' tokens, logins and security policy.",
    "audit log": "Who did what, when and from where.",
    "contacts": "People, with their whole history.",
    "companies": "Organisations your contacts work for.",
    "leads": "Unqualified interest, from forms, imports or by hand; converted into contacts and deals.",
    "pipelines": "Sales pipelines, their stages, and a board's totals per stage.",
    "deals": "Opportunities moving through a pipeline's stages, and what they sell (line items).",
    "catalog": "Products that deals' line items sell, and reference lists of allowed values (lost reasons, "
               "industries, lead sources).",
    "activities": "Tasks, calls, meetings, notes and emails on records, with reminders.",
    "custom fields": "Typed fields an organisation adds to its records.",
    "schema and timeline": "The fields of each record kind, and the timeline of a record.",
    "webhooks": "Endpoints notified of events (Standard Webhooks signatures), with delivery history.",
    "notifications": "What the system tells a user: assignments, reminders, escalations.",
    "forms": "Web forms that create leads: settings, embed snippets, submissions.",
    "public forms": "Where a website posts a form, cross-origin, without credentials.",
    "sync": "The changes feed: every change in commit order, for partner systems and mobile delta sync.",
    "imports": "CSV imports with mapping and de-duplication.",
    "reports": ("Funnel, win/loss, forecast, stage durations, velocity, rotting deals, activities, lead sources, "
                "response times, emails and customers, computed live."),
    "mail": "Mailboxes synced over IMAP onto timelines, email sent through their SMTP servers, and templates.",
    "automations": "Rules that hand work on: an event or a schedule, conditions, actions run in order by a worker, "
                   "each run logged (docs/automations.md).",
    "campaigns": "Segments (saved filters) and campaigns sent to them, every recipient's outcome kept.",
    "documents": "Quotes, invoices, contracts and letters: templates, numbered documents rendered to PDF, payments "
                 "and signed public links.",
    "files": "Files attached to contacts, companies, leads, deals and activities: streamed uploads, downloads as "
             "attachments, on the records' timelines.",
    "telephony": "Calls logged onto timelines (by the API or the provider's signed events), the screen pop for a "
                 "ringing number, click-to-call, and the provider's settings.",
}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes a retry safe: the first answer for this key (24 h, per credential) is stored and "
                   "replayed with `Idempotent-Replayed: true`; the same key with another request → 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255}, "example": "4f7d1c2e-6a0b-4c53-9d5e-2b1f8e0c7a91",
}
IF_NONE_MATCH = {
    "name": "If-None-Match", "in": "header", "required": False,
    "description": "the ETag you hold: 304 with no body when it is still current",
    "schema": {"type": "string"}, "example": '"3"',
}
ETAG = {"ETag": {"description": "the version of what was answered: send it back in If-Match / If-None-Match",
                 "schema": {"type": "string"}}}


CHANGES_CURSOR_HEADER = {"X-Changes-Cursor": {
    "description": "the changes feed's position of this read: `GET /v1/changes?cursor=<it>` brings every change "
                   "after what this response shows, none before it (docs/sync.md)", "schema": {"type": "string"}}}


_ID = "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e90"
_ID2 = "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91"
_BATCH = {"mode": "upsert", "items": [{"external_ids": [{"source": "erp", "id": "10042"}], "name": "Acme GmbH"}]}
EXAMPLES: dict[str, Any] = {
    "uploadFile": {"object_type": "deal", "object_id": _ID, "file": "(the file's bytes)"},
    # request body examples for operations whose schema carries none (by operation id, then media type)
    "createToken": {"username": "ana@example.com", "password": "correct horse battery 9", "grant_type": "password"},
    "refreshToken": {"refresh_token": "crm_rt_0190a8f4...secret"},
    "logout": {"refresh_token": "crm_rt_0190a8f4...secret"},
    "updateUser": {"role": "manager", "manager_id": _ID, "out_of_office": False},
    "deactivateUser": {"reassign_to": _ID},
    "setUserPassword": {"password": "a new long passphrase 7"},
    "batchContacts": {"mode": "create", "items": [{"first_name": "Ana", "email": "ana@example.com"},
                                                  {"first_name": "Bo", "phone": "+4930123456"}]},
    "updateContact": {"title": "Head of Sales", "tags": ["vip"]},
    "batchCompanies": _BATCH,
    "updateCompany": {"industry": "Software", "size": "51-200"},
    "batchLeads": {"mode": "create", "items": [{"first_name": "Cy", "email": "cy@example.com", "source": "import"}]},
    "updateLead": {"status": "working"},
    "updatePipeline": {"name": "Enterprise", "is_default": True},
    "createStage": {"name": "Demo", "probability": 40, "position": 1},
    "updateStage": {"probability": 60, "rotting_days": 14},
    "reorderStages": {"stage_ids": [_ID, _ID2]},
    "batchDeals": {"mode": "update", "items": [{"id": _ID, "stage_id": _ID2}]},
    "updateDeal": {"stage_id": _ID2, "value": {"amount": "15000.00", "currency": "EUR"}},
    "batchActivities": {"mode": "create", "items": [{"type": "call", "subject": "Intro call", "deal_id": _ID,
                                                     "due_at": "2026-12-04T10:00:00+01:00"}]},
    "updateActivity": {"done_at": "2026-12-04T10:25:00+01:00"},
    "batchProducts": {"mode": "upsert", "items": [{"external_ids": [{"source": "erp", "id": "SEAT-PRO"}],
                                                   "name": "Pro seat", "prices": [{"amount": "240.00",
                                                                                   "currency": "EUR"}]}]},
    "updateProduct": {"prices": [{"amount": "250.00", "currency": "EUR"}], "tax_rate": "19.00"},
    "updateDealLineItem": {"quantity": "25", "discount_percent": "12.5"},
    "updateReferenceList": {"label": "Why we lost"},
    "updateReferenceListItem": {"active": False},
    "updateCustomField": {"label": "Contract type", "options": ["annual", "monthly", "pilot"]},
    "updateWebhook": {"events": ["deal.won", "deal.lost"], "enabled": True},
    "updateMailbox": {"sync_since_days": 60, "routing": {"unknown_sender": "create_lead", "assignees": [_ID]}},
    "updateTemplate": {"subject": "Welcome to {{ org.name }}, {{ contact.first_name }}"},
    "previewTemplate": {"contact_id": _ID, "deal_id": _ID2},
    "updateSegment": {"filter": {"tags": ["vip"], "source": "referral"}},
    "updateCampaign": {"send_at": "2026-12-10T09:00:00+01:00"},
    "updateAutomation": {"enabled": False},
    "updateDocumentTemplate": {"number_prefix": "RE", "name": "Invoice (German)"},
    "dryRunAutomation": {"object_id": _ID},
    "updateForm": {"allowed_origins": ["https://www.example.com"], "min_fill_seconds": 3},
    "submitForm": {"first_name": "Ana", "email": "ana@example.com", "_ts": "1764838800000", "_hp": ""},
    "previewImport": {"object": "contacts", "file": "contacts.csv"},
    "receiveCallEvent": {"direction": "inbound", "from": "+4915112345678", "to": "+4930901820",
                         "started_at": "2026-12-04T10:15:00+01:00", "duration_seconds": 0, "status": "missed"},
    "createImport": {"object": "contacts", "file": "contacts.csv", "dedupe_by": "email", "on_duplicate": "update"},
}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if headers:
        response["headers"] = headers
    return response


def _source(route: Any) -> str:
    try:
        return inspect.getsource(route.endpoint)
    except (OSError, TypeError):
        return ""


def _api_routes(routes: list[Any]) -> list[Any]:
    """The app's routes with included routers walked into."""
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None) or (route if hasattr(route, "include_router") else None)
        found += _api_routes(list(inner.routes)) if inner is not None else [route]
    return found


def finish(schema: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """`routes`: the app's API routes; an operation is documented with ETag / If-None-Match / 304 when its
    endpoint answers conditionally (`conditional`, `conditional_list`), with ETag when it sends one."""
    sources = {r.operation_id: _source(r) for r in _api_routes(routes) if getattr(r, "operation_id", None)}
    conditional = {op for op, src in sources.items() if "conditional(" in src or "conditional_list(" in src}
    tagged = {op for op, src in sources.items() if "one(" in src or "etag_of(" in src or "ETag" in src}
    positioned = {op for op, src in sources.items() if "CHANGES_CURSOR" in src}
    info = schema["info"]
    info.setdefault("contact", {"name": "Headless CRM maintainers"})
    info.setdefault("license", {"name": "Apache-2.0", "identifier": "Apache-2.0"})
    schema.setdefault("servers", [{"url": "/", "description": "the server this document was read from"}])
    schemes = schema.get("components", {}).get("securitySchemes", {})
    schema["security"] = [{name: []} for name in schemes]
    used: set[str] = set()
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            _operation(path, method, op, op.get("operationId") in conditional, op.get("operationId") in tagged)
            if op.get("operationId") in positioned and "200" in op["responses"]:
                op["responses"]["200"].setdefault("headers", {}).update(CHANGES_CURSOR_HEADER)
            used.update(op.get("tags", []))
    schema["tags"] = [{"name": t, "description": TAGS.get(t, "")} for t in sorted(used)]
    return schema


def _operation(path: str, method: str, op: dict[str, Any], answers_conditionally: bool, sends_etag: bool) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    # Errors are problem+json only: drop the twin FastAPI adds for `model=` (or the route's response class).
    for response in responses.values():
        content = response.get("content", {})
        if PROBLEM_MEDIA_TYPE in content:  # and the text/html of a route that answers pages
            for media in [m for m in content if m != PROBLEM_MEDIA_TYPE]:
                content.pop(media)
    example = EXAMPLES.get(op.get("operationId", ""))
    for content in op.get("requestBody", {}).get("content", {}).values():
        if example is not None and "example" not in content and "examples" not in content:
            content["example"] = example
    op.setdefault("security", [])  # FastAPI sets it on authenticated routes: the others are public
    authed = bool(op["security"])
    params: list[dict[str, Any]] = op.setdefault("parameters", [])
    names = {(p.get("in"), p.get("name", "").lower()) for p in params}
    ok = next((responses[s] for s in ("200", "201") if s in responses), None)

    if method == "post" and ("header", "idempotency-key") not in names:
        params.append(dict(IDEMPOTENCY_KEY))
    # any request can be unreadable: a NUL in the URL, a malformed header (Idempotency-Key, If-Match), a body
    responses.setdefault("400", _problem("Bad request: a malformed URL, header or body"))
    if "requestBody" in op:
        responses.setdefault("413", _problem("Request body too large"))
    if method == "get" and answers_conditionally and ok is not None:
        # single records carry their version as a strong ETag, lists a weak one over the page
        if ("header", "if-none-match") not in names:
            params.append(dict(IF_NONE_MATCH))
        responses.setdefault("304", {"description": "Not modified: the ETag sent in If-None-Match is current",
                                     "headers": ETAG})
        ok.setdefault("headers", {}).update(ETAG)
    elif sends_etag and ok is not None:
        ok.setdefault("headers", {}).update(ETAG)
    if ("header", "if-match") in names:
        responses.setdefault("412", _problem("If-Match does not match the current version"))
    if authed:
        responses.setdefault("429", _problem("Rate limit reached; see Retry-After", RATE_LIMIT_HEADERS))
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {}).update(
                    {k: v for k, v in RATE_LIMIT_HEADERS.items() if k != "Retry-After"})
    if not any(s.startswith("4") for s in responses):
        responses["422"] = _problem("An unknown query parameter (every operation refuses them)")
    op.setdefault("tags", ["operations"])
