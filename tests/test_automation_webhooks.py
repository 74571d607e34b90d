"""The `webhook` action on a real worker and a real HTTP receiver: signed with the rule's secret (verified with
an independent Standard Webhooks implementation), called after what ran before it is committed, tried again
with the same `webhook-id` on a temporary failure, failing the run on a refusal or an internal address."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.factories import signup
from tests.servers import Receiver
from tests.test_automations import _ok, _rule, _runs
from tests.workers import eventually, running_worker


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


async def test_a_webhook_action_posts_the_object_signed_after_the_task_before_it_is_committed(
        api, fast_settings, receiver):
    acct = await signup(api)
    h = acct.headers
    rule = await _rule(api, acct, trigger={"event": "contact.created"}, actions=[
        {"type": "create_task", "subject": "Call back", "assignee": {"type": "user", "user_id": acct.user_id}},
        {"type": "webhook", "url": receiver.url}])
    assert rule["webhook_secret"].startswith("whsec_")
    assert "webhook_secret" not in await _ok(await api.get(f"/v1/automations/{rule['id']}", headers=h))
    async with running_worker(fast_settings):
        contact = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "Hooked"}), 201)
        [run] = await _runs(api, acct, rule["id"], 1)
    assert run["status"] == "succeeded", run
    assert [(a["type"], a["status"]) for a in run["actions"]] == [("create_task", "succeeded"),
                                                                    ("webhook", "succeeded")]
    assert run["actions"][1]["result"] == {"status_code": 200}
    [got] = receiver.requests
    payload = Webhook(rule["webhook_secret"]).verify(got["body"], got["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(got["body"], got["headers"])
    assert payload["type"] == "automation.webhook"
    data = payload["data"]
    assert (data["automation_id"], data["run_id"], data["object_type"], data["object_id"], data["depth"]) == (
        rule["id"], run["id"], "contact", contact["id"], 0)
    assert data["object"]["first_name"] == "Hooked" and data["object"]["id"] == contact["id"]
    task_id = run["actions"][0]["result"]["activity_id"]
    assert (await api.get(f"/v1/activities/{task_id}", headers=h)).status_code == 200


async def test_a_temporary_failure_is_tried_again_with_the_same_webhook_id_then_the_run_goes_on(api, fast_settings):
    receiver = Receiver(statuses=[503, 429, 200])
    try:
        acct = await signup(api)
        rule = await _rule(api, acct, trigger={"event": "contact.created"}, actions=[
            {"type": "webhook", "url": receiver.url}, {"type": "add_tag", "tag": "announced"}])
        async with running_worker(fast_settings):
            contact = await _ok(await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "R"}), 201)
            [run] = await _runs(api, acct, rule["id"], 1)
        assert run["status"] == "succeeded", run
        assert [(a["type"], a["status"]) for a in run["actions"]] == [("webhook", "succeeded"),
                                                                        ("add_tag", "succeeded")]
        assert len(receiver.requests) == 3
        assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
        for r in receiver.requests:
            Webhook(rule["webhook_secret"]).verify(r["body"], r["headers"])
        after = await _ok(await api.get(f"/v1/contacts/{contact['id']}", headers=acct.headers))
        assert after["tags"] == ["announced"]
    finally:
        receiver.stop()


async def test_a_receiver_that_keeps_failing_fails_the_run_after_the_retry_schedule(api, fast_settings):
    receiver = Receiver(statuses=[500] * 10)
    try:
        acct = await signup(api)
        rule = await _rule(api, acct, trigger={"event": "contact.created"}, actions=[
            {"type": "webhook", "url": receiver.url}, {"type": "add_tag", "tag": "never"}])
        async with running_worker(fast_settings):
            await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "F"})
            [run] = await _runs(api, acct, rule["id"], 1)
        attempts = len(fast_settings.webhook_retry_schedule) + 1
        assert run["status"] == "failed" and run["reason"] == f"webhook: HTTP 500, {attempts} attempts"
        assert [a["status"] for a in run["actions"]] == ["failed", "skipped"]
        assert len(receiver.requests) == attempts
    finally:
        receiver.stop()


async def test_a_refusal_fails_the_run_at_once(api, fast_settings):
    receiver = Receiver(statuses=[400])
    try:
        acct = await signup(api)
        rule = await _rule(api, acct, trigger={"event": "contact.created"}, actions=[
            {"type": "webhook", "url": receiver.url}, {"type": "add_tag", "tag": "never"}])
        async with running_worker(fast_settings):
            await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "F"})
            [run] = await _runs(api, acct, rule["id"], 1)
        assert run["status"] == "failed" and run["reason"] == "webhook: HTTP 400 ok"
        assert [a["status"] for a in run["actions"]] == ["failed", "skipped"]
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()


async def test_an_internal_address_is_refused_by_the_ssrf_guard(api, fast_settings, receiver):
    acct = await signup(api)
    rule = await _rule(api, acct, trigger={"event": "contact.created"}, actions=[
        {"type": "webhook", "url": receiver.url}])
    guarded = fast_settings.model_copy(update={"allow_private_networks": False})
    async with running_worker(guarded):
        await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "F"})
        [run] = await _runs(api, acct, rule["id"], 1)
    assert run["status"] == "failed" and run["reason"].startswith("webhook: blocked"), run
    assert receiver.requests == []


async def test_the_secret_rotates_and_signs_from_then_on(api, fast_settings, receiver):
    acct = await signup(api)
    h = acct.headers
    rule = await _rule(api, acct, trigger={"event": "contact.created"}, actions=[
        {"type": "webhook", "url": receiver.url}])
    rotated = await _ok(await api.post(f"/v1/automations/{rule['id']}/rotate-secret", headers=h))
    assert rotated["webhook_secret"].startswith("whsec_") and rotated["webhook_secret"] != rule["webhook_secret"]
    async with running_worker(fast_settings):
        await api.post("/v1/contacts", headers=h, json={"first_name": "S"})
        await eventually(lambda: _async(receiver.requests))
    [got] = receiver.requests
    Webhook(rotated["webhook_secret"]).verify(got["body"], got["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(rule["webhook_secret"]).verify(got["body"], got["headers"])
    other = await signup(api)
    assert (await api.post(f"/v1/automations/{rule['id']}/rotate-secret", headers=other.headers)).status_code == 404
    member = await acct.invite("member")
    assert (await api.post(f"/v1/automations/{rule['id']}/rotate-secret",
                           headers=member.headers)).status_code == 403


async def _async(value):
    return value


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "https://user:pw@example.com/"])
async def test_a_webhook_url_that_is_no_http_url_is_422(client, url):
    acct = await signup(client)
    r = await client.post("/v1/automations", headers=acct.headers, json={
        "name": "Bad", "trigger": {"event": "contact.created"}, "actions": [{"type": "webhook", "url": url}]})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any("url" in json.dumps(e["loc"]) for e in r.json()["errors"])
