"""`crm dev` as people run it: one process with the API and a worker. Here against the test PostgreSQL and a
Redis that goes away and comes back (no embedded servers, to keep it quick)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.servers import RestartableRedis, crm_env, free_port, wait_http
from tests.test_server import _submit_three, output, running


@pytest.fixture
def flaky_redis():
    server = RestartableRedis()
    yield server
    server.close()


def _until(check, within: float, what: str, workdir) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {within}s\n{output(workdir)}")
        time.sleep(0.1)


def test_dev_ignores_forwarded_for_and_restarts_its_worker_after_a_redis_outage(database_url, flaky_redis,
                                                                                tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = crm_env(database_url, flaky_redis.url, tmp_path, CRM_FORM_RATE_LIMIT="2",
                  CRM_FORM_RATE_WINDOW_SECONDS="86400", CRM_WORKER_HEARTBEAT_SECONDS="0.5",
                  CRM_WORKER_RECONNECT_MIN_SECONDS="0.2", CRM_WORKER_RECONNECT_MAX_SECONDS="1", CRM_LOG_LEVEL="INFO")
    with running(["dev", "--port", str(port)], env, tmp_path) as proc, httpx.Client(base_url=base, timeout=10) as http:
        wait_http(f"{base}/healthz", proc, timeout=120)
        # 127.0.0.1 is not a trusted proxy unless CRM_TRUSTED_PROXIES says so: three posts, one address
        assert _submit_three(base, ["198.51.100.1", "198.51.100.2", "198.51.100.3"]) == [202, 202, 429]

        def worker_seen() -> bool:
            r = http.get("/readyz")
            return r.status_code == 200 and r.json()["checks"]["worker"] == "ok"

        _until(worker_seen, 60, "a worker heartbeat", tmp_path)
        flaky_redis.stop()
        _until(lambda: proc.poll() is not None or output(tmp_path).count("worker_redis_unavailable") >= 8, 120,
               "reconnect attempts", tmp_path)
        assert proc.poll() is None, output(tmp_path)
        flaky_redis.start()  # empty: the heartbeat can only come from a worker started again
        _until(worker_seen, 120, "the restarted worker's heartbeat", tmp_path)


def test_dev_demo_org_is_a_working_crm_on_the_first_request(pg, redis_server, tmp_path):
    """A newcomer's first calls with the printed key find a sales team's data: companies, contacts, leads, deals
    in every stage, tasks due today, a web form, and phone numbers read in the org's region. A restart keeps it
    as it is (no second copy)."""
    database_url = pg.create_database(f"dev_demo_{free_port()}")
    env = crm_env(database_url, redis_server.url, tmp_path)

    def counts(http: httpx.Client) -> dict[str, int]:
        return {kind: len(http.get(f"/v1/{kind}", params={"limit": 200}).json()["data"])
                for kind in ("companies", "contacts", "leads", "deals", "activities", "forms")}

    first_counts: dict[str, int] = {}
    for start in (1, 2):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running(["dev", "--port", str(port), "--no-worker"], env, tmp_path) as proc:
            wait_http(f"{base}/healthz", proc, timeout=120)
            key = json.loads((tmp_path / "demo-credentials.json").read_text())["api_key"]
            with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"}) as http:
                if start == 2:
                    assert counts(http) == first_counts
                    continue
                org = http.get("/v1/org").json()
                assert org["default_phone_region"] == "DE"
                first_counts.update(counts(http))
                assert first_counts["companies"] >= 3 and first_counts["contacts"] >= 5
                assert first_counts["leads"] >= 3 and first_counts["forms"] == 1
                (pipeline,) = http.get("/v1/pipelines").json()["data"]
                deals = http.get("/v1/deals").json()["data"]
                assert {d["stage_id"] for d in deals} == {s["id"] for s in pipeline["stages"]}
                assert {d["status"] for d in deals} == {"open", "won", "lost"}
                now = datetime.now(ZoneInfo(org["timezone"]))
                midnight = datetime.combine(now.date() + timedelta(days=1), clock(), now.tzinfo)
                today = http.get("/v1/activities", params={
                    "assignee_id": "me", "done": "false", "due_after": now.isoformat(),
                    "due_before": midnight.isoformat(), "sort": "due_at"}).json()["data"]
                assert len(today) >= 3 and all(t["deal_id"] for t in today)
                found = http.get("/v1/contacts", params={"q": "0151 23456789"}).json()["data"]
                assert [c["phone"] for c in found] == ["+4915123456789"]
                assert http.get("/v1/deals", params={"q": "globex"}).json()["data"]
                # a front end in development, on any local port, may call the API from the browser
                for origin, allowed in (("http://localhost:5173", True), ("http://127.0.0.1:3000", True),
                                        ("https://evil.example", False)):
                    pre = http.options("/v1/deals", headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                                             "Access-Control-Request-Headers": "authorization"})
                    assert (pre.status_code, pre.headers.get("access-control-allow-origin")) == (
                        (200, origin) if allowed else (403, None))
