"""Webhooks end to end: real PostgreSQL, real Redis, a real arq worker, a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from datetime import timedelta

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.domain.auth.principal import Principal
from app.domain.contacts import service as contacts
from app.domain.events.models import Event
from app.domain.outbound import BlockedDestination, resolve_checked
from app.domain.webhooks.models import WebhookDelivery
from app.main import create_app
from tests.factories import signup
from tests.servers import Receiver, crm_command, crm_env
from tests.workers import eventually, running_worker


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


async def _hook(api, acct, url, events=("contact.*",)):
    r = await api.post("/v1/webhooks", headers=acct.headers, json={"url": url, "events": list(events)})
    assert r.status_code == 201, r.text
    return r.json()


async def test_delivery_is_signed_and_logged(api, fast_settings, receiver):
    acct = await signup(api)
    hook = await _hook(api, acct, receiver.url)
    assert hook["secret"].startswith("whsec_")
    async with running_worker(fast_settings):
        contact = (await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})).json()

        async def log():
            return (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=acct.headers)).json()["data"]

        await eventually(lambda: _check(log, lambda rows: rows and rows[0]["status"] == "succeeded"))
    got = receiver.requests[0]
    payload = Webhook(hook["secret"]).verify(got["body"], got["headers"])  # independent verifier
    assert payload["type"] == "contact.created" and payload["object_id"] == contact["id"]
    assert payload["actor"] == {"type": "user", "id": acct.user_id} and payload["version"] == 1
    assert payload["data"]["object"]["first_name"] == "Ana"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(got["body"], got["headers"])
    log = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=acct.headers)).json()["data"]
    assert len(log) == 1 and log[0]["status"] == "succeeded" and log[0]["event_type"] == "contact.created"
    assert log[0]["attempts"][0]["status_code"] == 200 and log[0]["attempts"][0]["duration_ms"] >= 0
    assert got["headers"]["webhook-id"] == log[0]["id"]  # the delivery log row is the message
    listed = await api.get("/v1/webhooks", headers=acct.headers)
    assert hook["secret"] not in listed.text


async def _async(value):
    return value


async def test_fails_twice_then_succeeds_with_the_same_webhook_id(api, fast_settings):
    receiver = Receiver(statuses=[500, 503, 200])
    try:
        acct = await signup(api)
        hook = await _hook(api, acct, receiver.url)
        async with running_worker(fast_settings):
            await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})

            async def log():
                return (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=acct.headers)).json()["data"]

            await eventually(lambda: _check(log, lambda rows: rows and rows[0]["status"] == "succeeded"))
        ids = {r["headers"]["webhook-id"] for r in receiver.requests}
        assert len(receiver.requests) == 3 and len(ids) == 1
        log = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=acct.headers)).json()["data"]
        assert [a["status_code"] for a in log[0]["attempts"]] == [500, 503, 200]
        assert log[0]["status"] == "succeeded" and log[0]["next_attempt_at"] is None  # no fourth attempt planned
    finally:
        receiver.stop()


async def test_410_disables_endpoint_and_tells_admins(api, fast_settings, database):
    receiver = Receiver(statuses=[410])
    try:
        acct = await signup(api)
        hook = await _hook(api, acct, receiver.url)
        async with running_worker(fast_settings):
            await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})

            async def disabled():
                r = await api.get(f"/v1/webhooks/{hook['id']}", headers=acct.headers)
                return r.json()["enabled"] is False and r.json()

            state = await eventually(disabled)
            assert "410" in state["disabled_reason"]

            async def told():
                r = await api.get("/v1/me/notifications", headers=acct.headers)
                return [n for n in r.json()["data"] if n["kind"] == "webhook_disabled"]

            assert await eventually(told)
        async with database.sessions() as s:
            types = set(await s.scalars(select(Event.type).where(Event.object_id == hook["id"])))
        assert {"webhook.created", "webhook.disabled"} <= types
        await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Bo"})
        assert len(receiver.requests) == 1  # nothing more goes to a disabled endpoint
    finally:
        receiver.stop()


async def test_rolled_back_event_is_never_delivered(api, fast_settings, receiver, database):
    acct = await signup(api)
    await _hook(api, acct, receiver.url)
    async with running_worker(fast_settings):
        bad = await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "A", "owner_id": acct.org_id})
        assert bad.status_code == 422
        async with database.sessions() as s:  # a transaction that wrote an event, then rolled back
            me = Principal.for_user(uuid.UUID(acct.org_id), uuid.UUID(acct.user_id), "owner")
            await contacts.create(s, me, {"first_name": "Ghost"})
            await s.rollback()
        ok = await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Real"})
        await eventually(lambda: _async(len(receiver.requests) >= 1))
    # the worker stopped once nothing was left to run: a ghost would have had its delivery by now
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert [b["object_id"] for b in bodies] == [ok.json()["id"]]
    async with database.sessions() as s:  # and nothing is waiting to send it later
        ghosts = await s.scalar(select(func.count()).select_from(Event).where(
            Event.org_id == uuid.UUID(acct.org_id), Event.data["object"]["first_name"].astext == "Ghost"))
    assert ghosts == 0


async def test_event_committed_while_redis_is_down_is_delivered_later(fast_settings, database, receiver, redis):
    dead = Redis.from_url("unix:///nonexistent/redis.sock")  # the API cannot reach Redis at all
    app = create_app(fast_settings, db=database, redis=dead)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as api:
        acct = await signup(api)
        await _hook(api, acct, receiver.url)
        r = await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})
        assert r.status_code == 201  # the write succeeds; the hand-over to the queue failed
        assert receiver.requests == []  # and no worker runs yet
        async with running_worker(fast_settings):  # Redis is "back": the sweeper finds the event
            await eventually(lambda: _async(len(receiver.requests) >= 1))
    assert json.loads(receiver.requests[0]["body"])["object_id"] == r.json()["id"]
    await dead.aclose()


async def test_thousand_events_thousand_deliveries(api, fast_settings, receiver, database):
    acct = await signup(api)
    hook = await _hook(api, acct, receiver.url, events=("contact.created",))
    me = Principal.for_user(uuid.UUID(acct.org_id), uuid.UUID(acct.user_id), "owner")
    async with running_worker(fast_settings.model_copy(update={"worker_max_jobs": 50})):
        for batch in range(10):
            async with database.sessions.begin() as s:
                for i in range(100):
                    await contacts.create(s, me, {"first_name": f"C{batch}-{i}"})
        async def statuses():
            async with database.sessions() as s:
                rows = (await s.execute(select(WebhookDelivery.status, func.count()).where(
                    WebhookDelivery.endpoint_id == hook["id"]).group_by(WebhookDelivery.status))).all()
            return dict(rows)

        await eventually(lambda: _check(statuses, lambda d: d.get("succeeded") == 1000), within=120)
    # stopped once no job was due or running: a duplicate would have been sent by now
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert await statuses() == {"succeeded": 1000}


async def test_worker_killed_mid_delivery_delivers_after_restart(api, fast_settings, database_url, redis_server,
                                                                 tmp_path):
    receiver = Receiver(delay_first=3.0)
    env = crm_env(database_url, redis_server.url, tmp_path, CRM_ALLOW_PRIVATE_NETWORKS="1",
                  CRM_OUTBOX_SWEEP_SECONDS="0.3", CRM_OUTBOX_SWEEP_GRACE_SECONDS="0.5",
                  CRM_WEBHOOK_TIMEOUT_SECONDS="1", CRM_WORKER_JOB_TIMEOUT_SECONDS="2",
                  CRM_WEBHOOK_RETRY_SCHEDULE="0.3,0.3,0.3", CRM_LOG_LEVEL="WARNING",
                  CRM_WORKER_SHUTDOWN_GRACE_SECONDS="5")
    first = subprocess.Popen([*crm_command(), "worker"], env=env,  # noqa: ASYNC220 - a real worker process
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = None
    try:
        acct = await signup(api)
        await _hook(api, acct, receiver.url)
        await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})
        await eventually(lambda: _async(len(receiver.requests) >= 1), within=30)
        first.send_signal(signal.SIGKILL)  # mid-request: the receiver is still sleeping on it
        first.wait(30)
        second = subprocess.Popen([*crm_command(), "worker"], env=env,  # noqa: ASYNC220
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await eventually(lambda: _async(len(receiver.requests) >= 2), within=40)
        ids = {r["headers"]["webhook-id"] for r in receiver.requests}
        assert len(ids) == 1  # the same message, retried

        async def succeeded():
            hooks = (await api.get("/v1/webhooks", headers=acct.headers)).json()["data"]
            log = (await api.get(f"/v1/webhooks/{hooks[0]['id']}/deliveries", headers=acct.headers)).json()["data"]
            return log and log[0]["status"] == "succeeded"

        assert await eventually(succeeded, within=30)
    finally:
        for proc in (first, second):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(60)
        receiver.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "localhost", "::1", "192.168.0.10",
                                  "100.64.0.1"])
async def test_ssrf_guard_refuses_internal_addresses(host):
    with pytest.raises(BlockedDestination):
        await resolve_checked(host, 80, allow_private=False)


async def test_ssrf_guard_allows_public_and_private_when_configured():
    assert await resolve_checked("93.184.216.34", 443, allow_private=False) == "93.184.216.34"
    assert await resolve_checked("127.0.0.1", 80, allow_private=True) == "127.0.0.1"


async def test_blocked_destination_is_logged_not_sent(api, fast_settings, receiver):
    strict = fast_settings.model_copy(update={"allow_private_networks": False, "webhook_retry_schedule": []})
    acct = await signup(api)
    hook = await _hook(api, acct, receiver.url)
    async with running_worker(strict):
        await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})

        async def failed():
            log = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=acct.headers)).json()["data"]
            return log and log[0]["status"] == "failed" and log[0]

        row = await eventually(failed)
    assert row["attempts"][0]["error"].startswith("blocked") and receiver.requests == []


async def test_manual_retry_and_test_ping(api, fast_settings):
    receiver = Receiver(statuses=[500])
    try:
        acct = await signup(api)
        hook = await _hook(api, acct, receiver.url)
        quick = fast_settings.model_copy(update={"webhook_retry_schedule": []})
        async with running_worker(quick):
            await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})

            async def log():
                return (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=acct.headers)).json()["data"]

            failed = await eventually(lambda: _check(log, lambda rows: rows and rows[0]["status"] == "failed"))
            r = await api.post(f"/v1/webhooks/{hook['id']}/deliveries/{failed[0]['id']}/retry", headers=acct.headers)
            assert r.status_code == 202
            await eventually(lambda: _check(log, lambda rows: rows[0]["status"] == "succeeded"))
            ping = await api.post(f"/v1/webhooks/{hook['id']}/test", headers=acct.headers)
            assert ping.status_code == 202
            await eventually(lambda: _async(len(receiver.requests) >= 3))
        assert json.loads(receiver.requests[-1]["body"])["type"] == "webhook.test"
        assert receiver.requests[0]["headers"]["webhook-id"] == receiver.requests[1]["headers"]["webhook-id"]
    finally:
        receiver.stop()


async def _check(fetch, predicate):
    rows = await fetch()
    return rows if predicate(rows) else None


async def test_crud_rules(api):
    acct, other = await signup(api), await signup(api)
    hook = await _hook(api, acct, "https://example.com/hook", events=["deal.*", "contact.created"])
    for bad in ({"url": "ftp://x", "events": ["*"]}, {"url": "https://x.io", "events": ["Deal"]},
                {"url": "https://x.io", "events": []}, {"url": "https://u:p@x.io", "events": ["*"]}):
        assert (await api.post("/v1/webhooks", headers=acct.headers, json=bad)).status_code == 422, bad
    member = await acct.invite("member")
    assert (await api.get("/v1/webhooks", headers=member.headers)).status_code == 403
    assert (await api.get(f"/v1/webhooks/{hook['id']}", headers=other.headers)).status_code == 404
    rotated = await api.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=acct.headers)
    assert rotated.status_code == 200 and rotated.json()["secret"] != hook["secret"]
    r = await api.patch(f"/v1/webhooks/{hook['id']}", headers=acct.headers, json={"events": ["*"]})
    assert r.json()["events"] == ["*"]
    assert (await api.delete(f"/v1/webhooks/{hook['id']}", headers=acct.headers)).status_code == 204
    assert (await api.get(f"/v1/webhooks/{hook['id']}", headers=acct.headers)).status_code == 404




@pytest.mark.parametrize("switch_off", ["delete", "disable"])
async def test_a_retry_after_the_endpoint_is_switched_off_is_never_sent(api, fast_settings, database, switch_off):
    """A delivery waiting for its retry when the endpoint is deleted or disabled gets no further attempt: it
    ends `failed`, and the receiver never sees the full payload again."""
    receiver = Receiver(statuses=[500])
    patient = fast_settings.model_copy(update={"webhook_retry_schedule": [3600]})  # the retry waits an hour
    try:
        acct = await signup(api)
        hook = await _hook(api, acct, receiver.url)

        async def row():
            async with database.sessions() as s:
                return await s.scalar(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == hook["id"]))

        async with running_worker(patient):
            await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})
            first = await eventually(lambda: _check(row, lambda d: d is not None and d.attempt_count == 1))
            assert first.status == "pending" and first.next_attempt_at is not None  # a retry is scheduled
            if switch_off == "delete":
                r = await api.delete(f"/v1/webhooks/{hook['id']}", headers=acct.headers)
                assert r.status_code == 204
            else:
                r = await api.patch(f"/v1/webhooks/{hook['id']}", headers=acct.headers, json={"enabled": False})
                assert r.status_code == 200 and r.json()["enabled"] is False
            async with database.sessions.begin() as s:  # the hour has passed: the sweeper finds it due
                await s.execute(update(WebhookDelivery).where(WebhookDelivery.id == first.id)
                                .values(next_attempt_at=func.now() - timedelta(minutes=1)))
            final = await eventually(lambda: _check(row, lambda d: d.status != "pending"))
        assert (final.status, final.next_attempt_at, final.attempt_count) == ("failed", None, 1)
        assert len(receiver.requests) == 1
        if switch_off == "disable":  # still readable through the API
            log = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=acct.headers)).json()["data"]
            assert [(d["id"], d["status"], d["next_attempt_at"]) for d in log] == [(str(first.id), "failed", None)]
    finally:
        receiver.stop()
