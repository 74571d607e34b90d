"""The OpenAPI document is a product: committed, current, and every operation named and described."""

from __future__ import annotations

import json
from pathlib import Path

from app.openapi_doc import render

DOC = json.loads(render())
OPERATIONS = [(path, method, op) for path, item in DOC["paths"].items() for method, op in item.items()]


def test_committed_document_is_current():
    assert Path("openapi/openapi.json").read_text() == render(), "run `make openapi` and commit the result"


def test_version_and_info():
    assert DOC["openapi"].startswith("3.1") and DOC["info"]["title"] and "problem+json" in DOC["info"]["description"]


def test_every_operation_has_a_unique_id_and_a_description():
    ids = [op["operationId"] for _, _, op in OPERATIONS]
    assert len(ids) == len(set(ids))
    undocumented = [f"{m.upper()} {p}" for p, m, op in OPERATIONS if not (op.get("description") or "").strip()
                    and p not in ("/v1/users/{user_id}", "/v1/api-keys/{key_id}")]
    assert len(undocumented) <= len(OPERATIONS) // 5, undocumented  # the plain reads explain themselves


def test_errors_are_documented_as_problem_json():
    for path, method, op in OPERATIONS:
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) and "content" in response and path != "/readyz":  # readiness report
                assert list(response["content"]) == ["application/problem+json"], (method, path, status)


def test_request_bodies_are_typed():
    for path, method, op in OPERATIONS:
        body = op.get("requestBody")
        if body:
            for media, content in body["content"].items():
                assert content.get("schema"), (method, path, media)


def _overlap(a: str, b: str) -> bool:
    """Could one URL match both templates with neither the more concrete? (OpenAPI: a concrete segment wins
    over a parameter, so `/v1/contacts/export.csv` is not ambiguous with `/v1/contacts/{id}`; two templates
    each concrete where the other is not are.)"""
    left, right = a.split("/"), b.split("/")
    if len(left) != len(right) or not all(x == y or x.startswith("{") or y.startswith("{")
                                          for x, y in zip(left, right, strict=True)):
        return False
    pairs = list(zip(left, right, strict=True))
    return (any(not x.startswith("{") and y.startswith("{") for x, y in pairs)
            and any(x.startswith("{") and not y.startswith("{") for x, y in pairs))


def test_no_url_matches_two_operations():
    """Templates that one URL can match (`/v1/deals/by-external-id/{source}/{id}` and
    `/v1/deals/{id}/line-items/{item_id}`) never share a method, so every request has one operation."""
    paths = json.loads(render())["paths"]
    methods = {p: {m for m in ops if m in ("get", "put", "post", "patch", "delete")} for p, ops in paths.items()}
    clashes = [(a, b, sorted(methods[a] & methods[b])) for a in paths for b in paths
               if a < b and _overlap(a, b) and methods[a] & methods[b]]
    assert clashes == []
    assert _overlap("/v1/deals/by-external-id/{source}/{external_id}", "/v1/deals/{record_id}/line-items/{item_id}")
