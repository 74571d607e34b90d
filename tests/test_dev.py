"""`crm dev` as people run it: one process with the API and a worker. Here against the test PostgreSQL and a
Redis that goes away and comes back (no embedded servers, to keep it quick)."""

from __future__ import annotations

import time

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
