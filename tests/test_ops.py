"""Operations endpoints: liveness, readiness (200 and 503), Prometheus metrics by route template."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from app.main import create_app
from tests.factories import signup


def samples(text: str, name: str) -> list:
    """All samples called `name` in a Prometheus text exposition."""
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


async def test_healthz(client):
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


async def test_readyz_when_everything_is_up(client):
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["checks"]["database"], body["checks"]["redis"]) == ("ok", "ok", "ok")
    assert body["checks"]["worker"] in ("ok", "missing")  # reported, not required (tests/test_worker_outage.py)


@pytest.fixture
async def client_without_redis(settings, database) -> AsyncIterator[httpx.AsyncClient]:
    dead_redis = Redis.from_url("unix:///nonexistent.sock", socket_connect_timeout=1)
    application = create_app(settings, db=database, redis=dead_redis)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application),
                                     base_url="http://crm.test") as c:
            yield c
    finally:
        await dead_redis.aclose()


async def test_readyz_is_503_when_redis_is_unreachable(client_without_redis):
    r = await client_without_redis.get("/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] != "ok"
    assert body["checks"]["redis"].startswith("failed")
    assert "nonexistent.sock" not in r.text  # reports the kind of failure, not connection details


async def test_healthz_stays_200_when_redis_is_unreachable(client_without_redis):
    # Liveness is about the process: a dependency outage must not get it restarted.
    r = await client_without_redis.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_metrics_is_prometheus_text(client):
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "version=" in r.headers["content-type"]
    assert "# TYPE crm_http_requests_total counter" in r.text
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert {"crm_http_requests", "crm_http_request_duration_seconds", "crm_db_pool_size"} <= names


async def test_metrics_count_requests_by_route_template(client):
    acct = await signup(client)
    for _ in range(2):
        assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200
    assert (await client.get("/v1/me")).status_code == 401
    some_id = str(uuid.uuid4())
    r = await client.get(f"/v1/users/{some_id}", headers=acct.headers)
    assert r.status_code == 404
    assert (await client.get(f"/v1/no-route/{some_id}")).status_code == 404

    text = (await client.get("/metrics")).text
    requests = {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
                for s in samples(text, "crm_http_requests_total")}
    assert requests[("GET", "/v1/me", "200")] == 2
    assert requests[("GET", "/v1/me", "401")] == 1
    assert requests[("GET", "/v1/users/{user_id}", "404")] == 1
    assert requests[("POST", "/v1/auth/signup", "201")] == 1
    # Raw paths never become labels (one time series per id would explode the metric).
    assert some_id not in text
    assert all(route.startswith("/") or route == "<unmatched>" for _, route, _ in requests)

    latency = {(s.labels["method"], s.labels["route"]): s.value
               for s in samples(text, "crm_http_request_duration_seconds_count")}
    assert latency[("GET", "/v1/me")] == 3
    assert latency[("GET", "/v1/users/{user_id}")] == 1


async def test_metrics_expose_the_database_pool(client, settings):
    text = (await client.get("/metrics")).text
    [pool_size] = samples(text, "crm_db_pool_size")
    assert pool_size.value == settings.db_pool_size
    [checked_out] = samples(text, "crm_db_pool_checked_out")
    assert checked_out.value >= 0
