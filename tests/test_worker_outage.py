"""The worker outlives its dependencies: Redis stopped for longer than arq's own retries, then started again
(empty, as a lost server comes back), and `crm worker` goes on delivering; `/readyz` tells whether a worker
is alive."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings

from app.main import create_app
from app.workers.heartbeat import HEARTBEAT_KEY
from tests.factories import signup
from tests.servers import Receiver, RestartableRedis, crm_command, crm_env
from tests.workers import eventually, running_worker


@pytest.fixture
def flaky_redis():
    server = RestartableRedis()
    yield server
    server.close()


async def _async(value):
    return value


async def test_crm_worker_reconnects_after_a_redis_outage_and_delivers(database, database_url, fast_settings,
                                                                       flaky_redis, tmp_path):
    receiver = Receiver()
    pool = await create_pool(RedisSettings.from_dsn(flaky_redis.url))
    app = create_app(fast_settings.model_copy(update={"redis_url": flaky_redis.url}), db=database, redis=pool)
    env = crm_env(database_url, flaky_redis.url, tmp_path, CRM_ALLOW_PRIVATE_NETWORKS="1", CRM_LOG_LEVEL="INFO",
                  CRM_OUTBOX_SWEEP_SECONDS="0.3", CRM_OUTBOX_SWEEP_GRACE_SECONDS="0.5",
                  CRM_WEBHOOK_RETRY_SCHEDULE="0.3,0.3,0.3", CRM_WORKER_HEARTBEAT_SECONDS="0.5",
                  CRM_WORKER_RECONNECT_MIN_SECONDS="0.2", CRM_WORKER_RECONNECT_MAX_SECONDS="1")
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen([*crm_command(), "worker"], env=env, stdout=out,  # noqa: ASYNC220
                                stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as api:
            async def worker_seen():
                r = await api.get("/readyz")
                return r.status_code == 200 and r.json()["checks"]["worker"] == "ok"

            async def delivered(contact_id):
                return any(json.loads(r["body"])["object_id"] == contact_id for r in receiver.requests)

            acct = await signup(api)
            r = await api.post("/v1/webhooks", headers=acct.headers,
                               json={"url": receiver.url, "events": ["contact.created"]})
            assert r.status_code == 201, r.text
            await eventually(worker_seen, within=60)
            before = (await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Before"})).json()
            await eventually(lambda: delivered(before["id"]), within=60)

            flaky_redis.stop()
            during = await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "During"})
            assert during.status_code == 201, during.text  # written; its hand-over to the queue failed

            async def retrying():  # longer than arq's own 5 connection retries, and still alive
                assert proc.poll() is None, log_path.read_text()
                return log_path.read_text().count("worker_redis_unavailable") >= 8

            await eventually(retrying, within=120)
            flaky_redis.start()

            after = await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "After"})
            assert after.status_code == 201, after.text
            await eventually(lambda: delivered(after.json()["id"]), within=120)
            await eventually(lambda: delivered(during.json()["id"]), within=120)  # the sweeper found it
            await eventually(worker_seen, within=60)
            assert '"worker_redis_back"' in log_path.read_text()
        proc.terminate()  # SIGTERM: a clean stop
        assert proc.wait(60) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        receiver.stop()
        await pool.aclose()


async def test_readyz_reports_the_worker_without_failing_on_it(client, redis, fast_settings):
    await redis.delete(HEARTBEAT_KEY)  # whatever an earlier, killed worker left behind
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "checks": {
        "database": "ok", "redis": "ok", "worker": "missing"}}

    async def worker_is(state):
        got = await client.get("/readyz")
        return got.status_code == 200 and got.json()["checks"]["worker"] == state

    async with running_worker(fast_settings):
        await eventually(lambda: worker_is("ok"))
    assert await worker_is("missing")  # a worker that stopped says so at once
