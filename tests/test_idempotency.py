"""Idempotency-Key on POST: replay, different body 422, in-flight 409, racing twins, per-principal scope."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import signal
import subprocess
import sys
import uuid

import httpx
import pytest

from app.api.deps import AnyCaller
from app.main import create_app
from tests.factories import signup
from tests.servers import crm_env, free_port, wait_http
from tests.workers import eventually


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


# --- claimed after authentication; a short, renewed "running" mark --------------------------------------


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def _markers(redis, key: str) -> list[bytes]:
    return [k async for k in redis.scan_iter(match=f"idem:*:{_digest(key)}")]


async def _until(condition):  # noqa: ANN001, ANN202
    return await eventually(condition, within=20, interval=0.05)


async def test_an_unauthenticated_request_with_a_key_gets_401_and_leaves_no_marker(committed_client, redis):
    c = committed_client
    acct = await signup(c)
    key = f"k-{uuid.uuid4()}"
    for authorization in ("Bearer garbage", "Bearer crm_not-a-real-key", None):
        headers = {"Idempotency-Key": key, **({"Authorization": authorization} if authorization else {})}
        r = await c.post("/v1/contacts", headers=headers, json={"first_name": "Ana"})
        assert r.status_code == 401 and "idempotent-replayed" not in r.headers
        assert await _markers(redis, key) == []
    r = await c.post("/v1/contacts", headers={**acct.headers, "Idempotency-Key": key}, json={"first_name": "Ana"})
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers


async def test_the_caller_is_authenticated_once_per_keyed_request(committed_client, database):
    from sqlalchemy import event

    c = committed_client
    acct = await signup(c)
    lookups: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        if "FROM users" in statement and "password_hash" not in statement and "INSERT" not in statement:
            lookups.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        r = await c.post("/v1/contacts", headers={**acct.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"},
                         json={"first_name": "Ana"})
        keyed = len(lookups)
        lookups.clear()
        plain = await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Bob"})
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
    assert r.status_code == plain.status_code == 201
    assert keyed == len(lookups)  # no second authentication in a session of the middleware's own


@pytest.fixture
def hanging(fast_settings, database, redis):
    """An app with POST /v1/hang, which holds its request until `release` is set; marks last 1 s."""
    release = asyncio.Event()

    async def hang(who: AnyCaller) -> dict:
        await release.wait()
        return {"by": str(who.id)}

    app = create_app(fast_settings.model_copy(update={"idempotency_running_seconds": 1}), db=database, redis=redis)
    app.add_api_route("/v1/hang", hang, methods=["POST"])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test"), release


async def test_a_running_mark_is_short_and_renewed_while_the_request_runs(hanging, redis):
    client, release = hanging
    async with client as c:
        acct = await signup(c)
        headers = {**acct.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
        first = asyncio.create_task(c.post("/v1/hang", headers=headers, json={}))
        [marker] = await _until(lambda: _markers(redis, headers["Idempotency-Key"]))
        assert 0 < await redis.pttl(marker) <= 1000  # not the 24 h answers are kept
        await _until(_renewal_of(redis, marker))  # renewed while the request runs
        again = await c.post("/v1/hang", headers=headers, json={})
        assert again.status_code == 409 and again.headers["retry-after"] == "1"
        release.set()
        assert (await first).status_code == 200
        replay = await c.post("/v1/hang", headers=headers, json={})
        assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
        assert await redis.ttl(marker) > 3600


def _renewal_of(redis, marker: bytes):  # noqa: ANN001, ANN202
    """A check that turns true once the mark's remaining time goes up again (it only falls between renewals)."""
    lowest: list[int] = []

    async def renewed() -> bool:
        now = await redis.pttl(marker)
        if lowest and now > lowest[0]:
            return True
        lowest[:] = [min([now, *lowest])]
        return False

    return renewed


HANGING_SERVER = """
import asyncio, sys, uvicorn
from app.api.deps import AnyCaller
from app.main import create_app
app = create_app()
async def hang(who: AnyCaller) -> dict:
    await asyncio.Event().wait()
app.add_api_route("/v1/hang", hang, methods=["POST"])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.fixture
def hanging_server(settings, database_url, redis_server, tmp_path):
    """`crm`'s app in its own process with POST /v1/hang (never answers) and 1 s running marks."""
    port = free_port()
    env = crm_env(database_url, redis_server.url, tmp_path, CRM_ENV="test", CRM_IDEMPOTENCY_RUNNING_SECONDS="1",
                  CRM_JWT_SECRET=settings.jwt_secret.get_secret_value())
    server = subprocess.Popen([sys.executable, "-c", HANGING_SERVER, str(port)], env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", server)
        yield port, server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


async def test_a_key_held_by_a_killed_process_is_free_again_after_the_running_mark_lapses(
        settings, database, redis, hanging_server):
    async def done(who: AnyCaller) -> dict:
        return {"by": str(who.id)}

    app = create_app(settings, db=database, redis=redis)
    app.add_api_route("/v1/hang", done, methods=["POST"])
    port, server = hanging_server
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as remote:
        acct = await signup(c)
        headers = {**acct.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
        stuck = asyncio.create_task(remote.post("/v1/hang", headers=headers, json={"n": 1}))
        await _until(lambda: _markers(redis, headers["Idempotency-Key"]))
        server.send_signal(signal.SIGKILL)  # mid-request: no answer, no clean-up
        with contextlib.suppress(httpx.TransportError):
            await stuck

        async def retried() -> httpx.Response | None:
            r = await c.post("/v1/hang", headers=headers, json={"n": 1})
            assert r.status_code in (200, 409), r.text
            return r if r.status_code == 200 else None

        r = await _until(retried)
        assert r.json() == {"by": acct.user_id} and "idempotent-replayed" not in r.headers
