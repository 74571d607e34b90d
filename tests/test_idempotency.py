"""Idempotency-Key on POST: replay, different body 422, in-flight 409, racing twins, per-principal scope."""

from __future__ import annotations

import asyncio
import gzip
import uuid

from tests.factories import signup


async def test_replay_returns_the_first_answer(committed_client):
    c = committed_client
    acct = await signup(c)
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await c.post("/v1/contacts", headers={**acct.headers, **key}, json={"first_name": "Ana"})
    again = await c.post("/v1/contacts", headers={**acct.headers, **key}, json={"first_name": "Ana"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"] and "idempotent-replayed" not in first.headers
    listed = (await c.get("/v1/contacts", headers=acct.headers)).json()["data"]
    assert len(listed) == 1  # created once
    other = await c.post("/v1/contacts", headers={**acct.headers, **key}, json={"first_name": "Bob"})
    assert other.status_code == 422 and other.headers["content-type"] == "application/problem+json"


async def test_errors_are_replayed_too_but_not_5xx(committed_client):
    c = committed_client
    acct = await signup(c)
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    bad = await c.post("/v1/contacts", headers={**acct.headers, **key}, json={"email": "nope"})
    again = await c.post("/v1/contacts", headers={**acct.headers, **key}, json={"email": "nope"})
    assert bad.status_code == again.status_code == 422 and again.headers["idempotent-replayed"] == "true"


async def test_racing_twins_create_once(committed_client):
    c = committed_client
    acct = await signup(c)
    key = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    results = await asyncio.gather(*[c.post("/v1/contacts", headers={**acct.headers, **key},
                                            json={"first_name": "Twin"}) for _ in range(5)])
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}
    assert len((await c.get("/v1/contacts", headers=acct.headers)).json()["data"]) == 1


async def test_keys_are_scoped_per_principal_and_validated(committed_client):
    c = committed_client
    a, b = await signup(c), await signup(c)
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    ra = await c.post("/v1/contacts", headers={**a.headers, **key}, json={"first_name": "A"})
    rb = await c.post("/v1/contacts", headers={**b.headers, **key}, json={"first_name": "B"})
    assert ra.status_code == rb.status_code == 201 and ra.json()["id"] != rb.json()["id"]
    assert "idempotent-replayed" not in rb.headers
    # the same user after a token refresh is the same principal
    fresh = (await c.post("/v1/auth/refresh", json={"refresh_token": a.refresh_token})).json()
    replay = await c.post("/v1/contacts", headers={"Authorization": f"Bearer {fresh['access_token']}", **key},
                          json={"first_name": "A"})
    assert replay.headers["idempotent-replayed"] == "true" and replay.json()["id"] == ra.json()["id"]
    long = await c.post("/v1/contacts", headers={**a.headers, "Idempotency-Key": "x" * 256}, json={"first_name": "L"})
    assert long.status_code == 400


async def test_large_lists_are_gzipped(committed_client):
    c = committed_client
    acct = await signup(c)
    for i in range(12):
        await c.post("/v1/contacts", headers=acct.headers, json={"first_name": f"Person {i}", "title": "x" * 50})
    r = await c.get("/v1/contacts", headers={**acct.headers, "Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and len(r.json()["data"]) == 12
    raw = await c.get("/v1/contacts", headers={**acct.headers, "Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < len(raw.content)


async def test_large_uploads_stream_through_and_replay_by_key(committed_client):
    c = committed_client
    acct = await signup(c)
    rows = "".join(f"Person{i},p{i}-{uuid.uuid4().hex[:6]}@example.com,{'x' * 40}\n" for i in range(20_000))
    data = ("First Name,E-Mail,Notes\n" + rows).encode()
    assert len(data) > 1 << 20  # larger than what the middleware buffers
    key = {"Idempotency-Key": f"upload-{uuid.uuid4()}"}
    first = await c.post("/v1/imports", headers={**acct.headers, **key}, files={"file": ("big.csv", data)},
                         data={"object": "contacts", "dry_run": "true"})
    again = await c.post("/v1/imports", headers={**acct.headers, **key}, files={"file": ("big.csv", data)},
                         data={"object": "contacts", "dry_run": "true"})
    assert first.status_code == 202 and again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    listed = (await c.get("/v1/imports", headers=acct.headers)).json()["data"]
    assert [i["id"] for i in listed] == [first.json()["id"]]
