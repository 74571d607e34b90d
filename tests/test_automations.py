"""Automation rules on a real worker: event triggers and their narrowing, conditions, actions in order (one
that fails ends the run, the earlier ones stay), the runs log, loop protection, dry runs, and bad input."""

from __future__ import annotations

from tests.factories import signup
from tests.workers import eventually, running_worker

STAGES = [{"name": "New", "probability": 10}, {"name": "Measurement", "probability": 40},
          {"name": "Quote", "probability": 60}, {"name": "Won", "probability": 100, "kind": "won"},
          {"name": "Lost", "probability": 0, "kind": "lost"}]


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json()


async def _pipeline(api, acct) -> tuple[dict, dict[str, str]]:
    pipeline = await _ok(await api.post("/v1/pipelines", headers=acct.headers, json={
        "name": "Windows", "stages": STAGES}), 201)
    return pipeline, {s["name"]: s["id"] for s in pipeline["stages"]}


async def _rule(api, acct, **body) -> dict:
    return await _ok(await api.post("/v1/automations", headers=acct.headers, json={"name": "Rule", **body}), 201)


async def _runs(api, acct, rule_id: str, count: int) -> list[dict]:
    async def enough():
        rows = (await _ok(await api.get(f"/v1/automations/{rule_id}/runs", headers=acct.headers)))["data"]
        done = [r for r in rows if r["status"] != "queued"]
        return done if len(done) >= count else None

    return await eventually(enough)


async def test_a_stage_change_creates_the_measurers_task_when_its_conditions_hold(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    measurer = await acct.invite("member")
    pipeline, stages = await _pipeline(api, acct)
    rule = await _rule(api, acct, trigger={"event": "deal.stage_changed", "to_stage_id": stages["Measurement"]},
                       conditions=[{"field": "deal.value.amount", "op": "gte", "value": "1000"}],
                       actions=[{"type": "create_task", "subject": "Measure on site", "due": {"in_minutes": 60},
                                 "assignee": {"type": "user", "user_id": measurer.user_id}}])
    big = await _ok(await api.post("/v1/deals", headers=h, json={
        "title": "Big", "pipeline_id": pipeline["id"], "value": {"amount": "1500.00", "currency": "EUR"}}), 201)
    small = await _ok(await api.post("/v1/deals", headers=h, json={
        "title": "Small", "pipeline_id": pipeline["id"], "value": {"amount": "999.99", "currency": "EUR"}}), 201)
    async with running_worker(fast_settings):
        for deal in (big, small):
            await api.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stages["Measurement"]})
        await api.patch(f"/v1/deals/{big['id']}", headers=h, json={"stage_id": stages["Quote"]})  # not narrowed in
        runs = await _runs(api, acct, rule["id"], 2)
    by_object = {r["object_id"]: r for r in runs}
    assert len(runs) == 2  # the move to Quote started no run
    assert by_object[small["id"]]["status"] == "skipped" and by_object[small["id"]]["actions"] == []
    ran = by_object[big["id"]]
    assert ran["status"] == "succeeded" and ran["depth"] == 0 and ran["object_type"] == "deal"
    [action] = ran["actions"]
    assert action["type"] == "create_task" and action["status"] == "succeeded"
    task = await _ok(await api.get(f"/v1/activities/{action['result']['activity_id']}", headers=h))
    assert (task["type"], task["subject"], task["assignee_id"], task["deal_id"]) == (
        "task", "Measure on site", measurer.user_id, big["id"])
    assert task["due_at"] is not None
    feed = (await _ok(await api.get("/v1/changes", headers=h, params={"types": "activity"})))["data"]
    created = [e for e in feed if e["type"] == "activity.created"]
    assert created[0]["actor"] == {"type": "automation", "id": rule["id"], "depth": 1}


async def test_actions_run_in_order_and_a_refused_one_ends_the_run(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    rep1, rep2 = await acct.invite("member"), await acct.invite("member")
    rule = await _rule(api, acct, trigger={"event": "contact.created", "source": "web_form"}, actions=[
        {"type": "add_tag", "tag": "web"},
        {"type": "update_field", "field": "contact.title", "value": "Prospect"},
        {"type": "assign_owner", "assignee": {"type": "round_robin", "user_ids": [rep1.user_id, rep2.user_id]}},
        {"type": "move_stage", "stage_id": "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"},  # contacts have no stage
        {"type": "add_tag", "tag": "never"}])
    async with running_worker(fast_settings):
        ids = [(await _ok(await api.post("/v1/contacts", headers=h, json={
            "first_name": f"W{i}", "source": "web_form"}), 201))["id"] for i in range(2)]
        await api.post("/v1/contacts", headers=h, json={"first_name": "Other", "source": "referral"})
        runs = await _runs(api, acct, rule["id"], 2)
    assert len(runs) == 2
    owners = set()
    for contact_id in ids:
        run = next(r for r in runs if r["object_id"] == contact_id)
        assert run["status"] == "failed" and run["reason"].startswith("move_stage: move_stage moves deals")
        assert [a["status"] for a in run["actions"]] == ["succeeded", "succeeded", "succeeded", "failed", "skipped"]
        contact = await _ok(await api.get(f"/v1/contacts/{contact_id}", headers=h))
        assert contact["tags"] == ["web"] and contact["title"] == "Prospect"
        owners.add(contact["owner_id"])
    assert owners == {rep1.user_id, rep2.user_id}  # round-robin


async def test_a_chain_of_rules_stops_at_the_maximum_depth(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    ping = await _rule(api, acct, trigger={"event": "contact.updated"},
                       conditions=[{"field": "contact.title", "op": "eq", "value": "ping"}],
                       actions=[{"type": "update_field", "field": "contact.title", "value": "pong"}])
    pong = await _rule(api, acct, trigger={"event": "contact.updated"},
                       conditions=[{"field": "contact.title", "op": "eq", "value": "pong"}],
                       actions=[{"type": "update_field", "field": "contact.title", "value": "ping"}])
    contact = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "Loop"}), 201)
    settings = fast_settings.model_copy(update={"automation_max_depth": 3})
    async with running_worker(settings):
        await api.patch(f"/v1/contacts/{contact['id']}", headers=h, json={"title": "ping"})

        async def stopped():
            rows = []
            for rule in (ping, pong):
                rows += (await _ok(await api.get(f"/v1/automations/{rule['id']}/runs", headers=h)))["data"]
            return rows if any(r["reason"] == "loop" for r in rows) else None

        rows = await eventually(stopped)
    looped = [r for r in rows if r["reason"] == "loop"]
    assert all(r["depth"] == 4 and r["status"] == "failed" and r["actions"] == [] for r in looped)
    assert max(r["depth"] for r in rows) == 4


async def test_email_and_sms_actions_queue_messages_from_templates(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    email_template = await _ok(await api.post("/v1/templates", headers=h, json={
        "name": "Thanks", "subject": "Thank you, {{ contact.first_name }}", "body_text": "Thanks!"}), 201)
    sms_template = await _ok(await api.post("/v1/templates", headers=h, json={
        "name": "Thanks SMS", "channel": "sms", "body_text": "Thanks {{ contact.first_name }}"}), 201)
    box = await _ok(await api.post("/v1/mailboxes", headers=h, json={
        "email": "sales@acme-mail.example.com", "shared": True,
        "imap": {"host": "127.0.0.1", "port": 9, "ssl": False, "username": "u", "password": "p"},
        "smtp": {"host": "127.0.0.1", "port": 9, "starttls": False}}), 201)
    await _ok(await api.put("/v1/settings/sms", headers=h, json={"url": "https://sms.example.com/send",
                                                                 "from": "ACME"}))
    pipeline, stages = await _pipeline(api, acct)
    rule = await _rule(api, acct, trigger={"event": "deal.won"}, actions=[
        {"type": "send_email", "template_id": email_template["id"], "mailbox_id": box["id"], "to": "contact"},
        {"type": "send_sms", "template_id": sms_template["id"]}])
    contact = await _ok(await api.post("/v1/contacts", headers=h, json={
        "first_name": "Ana", "email": "ana@client.org", "phone": "+4915112345678"}), 201)
    deal = await _ok(await api.post("/v1/deals", headers=h, json={
        "title": "Order", "pipeline_id": pipeline["id"], "contact_id": contact["id"]}), 201)
    async with running_worker(fast_settings.model_copy(update={"mail_sweep_seconds": 3600})):
        await api.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stages["Won"]})
        [run] = await _runs(api, acct, rule["id"], 1)
    assert run["status"] == "succeeded", run
    email = await _ok(await api.get(f"/v1/emails/{run['actions'][0]['result']['email_id']}", headers=h))
    assert email["subject"] == "Thank you, Ana" and email["to"] == ["ana@client.org"]
    assert email["deal_ids"] == [deal["id"]]
    text = await _ok(await api.get(f"/v1/sms/{run['actions'][1]['result']['sms_id']}", headers=h))
    assert text["text"] == "Thanks Ana" and text["to"] == "+4915112345678"


async def test_dry_run_shows_each_condition_and_changes_nothing(api):
    acct = await signup(api)
    h = acct.headers
    rule = await _rule(api, acct, trigger={"event": "contact.created"}, conditions=[
        {"field": "contact.tags", "op": "contains", "value": "vip"},
        {"field": "contact.cf.region", "op": "is_empty"}], actions=[{"type": "add_tag", "tag": "checked"}])
    vip = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "V", "tags": ["vip"]}), 201)
    plain = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "P"}), 201)
    yes = await _ok(await api.post(f"/v1/automations/{rule['id']}/dry-run", headers=h, json={"object_id": vip["id"]}))
    assert yes["would_run"] is True and yes["actions"] == [{"type": "add_tag", "tag": "checked"}]
    assert yes["conditions"][0] == {"field": "contact.tags", "op": "contains", "value": "vip", "actual": ["vip"],
                                    "passed": True}
    no = await _ok(await api.post(f"/v1/automations/{rule['id']}/dry-run", headers=h, json={"object_id": plain["id"]}))
    assert no["would_run"] is False and no["actions"] == [] and no["conditions"][0]["passed"] is False
    assert (await _ok(await api.get(f"/v1/contacts/{vip['id']}", headers=h)))["tags"] == ["vip"]


async def test_bad_rules_roles_and_other_orgs(api):
    acct, other = await signup(api), await signup(api, "Other")
    h = acct.headers
    theirs = await _ok(await api.post("/v1/templates", headers=other.headers, json={
        "name": "T", "channel": "sms", "body_text": "x"}), 201)
    good = {"name": "R", "trigger": {"event": "deal.won"}, "actions": [{"type": "add_tag", "tag": "x"}]}
    for bad in ({**good, "trigger": {"event": "deal.exploded"}}, {**good, "trigger": {"event": "webhook.disabled"}},
                {**good, "actions": []}, {**good, "actions": [{"type": "launch_rocket"}]},
                {**good, "conditions": [{"field": "deal.value.amount", "op": "roughly", "value": 1}]},
                {**good, "conditions": [{"field": "DROP TABLE", "op": "eq", "value": 1}]},
                {**good, "actions": [{"type": "send_sms", "template_id": theirs["id"]}]},
                {**good, "actions": [{"type": "create_task", "subject": "x", "assignee": {"type": "user"}}]},
                {**good, "trigger": {"schedule": "date_offset", "field": "contact.cf.x'); DROP TABLE deals; --"}},
                {**good, "trigger": {"schedule": "date_offset", "field": "contact.birthday", "days": 400}},
                {**good, "trigger": {"schedule": "no_activity_for", "days": 0, "object": "contact"}},
                {**good, "trigger": {"schedule": "in_stage_longer_than", "days": 3, "event": "deal.won"}},
                {**good, "surprise": True}):
        r = await api.post("/v1/automations", headers=h, json=bad)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", bad
    rule = await _rule(api, acct, **{k: v for k, v in good.items() if k != "name"})
    member = await acct.invite("member")
    assert (await api.get("/v1/automations", headers=member.headers)).status_code == 403
    assert (await api.post("/v1/automations", headers=member.headers, json=good)).status_code == 403
    for method, path in (("GET", f"/v1/automations/{rule['id']}"), ("PATCH", f"/v1/automations/{rule['id']}"),
                         ("DELETE", f"/v1/automations/{rule['id']}"), ("GET", f"/v1/automations/{rule['id']}/runs")):
        r = await api.request(method, path, headers=other.headers, **({"json": {"enabled": False}}
                                                                        if method == "PATCH" else {}))
        assert r.status_code == 404, (method, path)
    key = await acct.api_key(["automations:write"])
    contact = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "C"}), 201)
    contact_rule = await _rule(api, acct, trigger={"event": "contact.created"}, actions=[{"type": "add_tag",
                                                                                         "tag": "x"}])
    r = await api.post(f"/v1/automations/{contact_rule['id']}/dry-run", headers=key, json={"object_id": contact["id"]})
    assert r.status_code == 403  # the dry run reads the contact: contacts:read is needed too
    off = await _ok(await api.patch(f"/v1/automations/{rule['id']}", headers=h, json={"enabled": False}))
    assert off["enabled"] is False and off["version"] == rule["version"] + 1


async def test_a_worker_killed_mid_run_leaves_nothing_half_done_and_the_run_goes_again(
        api, settings, database, database_url, redis_server, tmp_path):
    """The run blocks on the contact's row (the test holds it) while writing its task; the worker is killed
    there. Nothing of the run was committed; the next worker runs it again: one task, one run."""
    import asyncio
    import signal
    import subprocess

    from sqlalchemy import text

    from tests.servers import crm_command, crm_env

    acct = await signup(api)
    h = acct.headers
    rule = await _rule(api, acct, trigger={"event": "contact.created"}, actions=[
        {"type": "create_task", "subject": "Welcome call", "due": {"in_minutes": 15}},
        {"type": "update_field", "field": "contact.title", "value": "Welcomed"}])
    contact = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "Kim"}), 201)
    env = crm_env(database_url, redis_server.url, tmp_path, CRM_ALLOW_PRIVATE_NETWORKS="1", CRM_LOG_LEVEL="WARNING",
                  CRM_OUTBOX_SWEEP_SECONDS="0.3", CRM_OUTBOX_SWEEP_GRACE_SECONDS="0.5",
                  CRM_WORKER_JOB_TIMEOUT_SECONDS="5", CRM_JWT_SECRET=settings.jwt_key(),
                  CRM_WORKER_SHUTDOWN_GRACE_SECONDS="5")

    def worker() -> subprocess.Popen:
        return subprocess.Popen([*crm_command(), "worker"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    async def attempts() -> int:
        async with database.sessions() as s:
            return int(await s.scalar(text("SELECT coalesce(max(attempts), 0) FROM automation_runs "
                                           "WHERE automation_id = :r"), {"r": rule["id"]}) or 0)

    holder = await database.engine.connect()
    first = second = None
    try:
        lock = await holder.begin()
        await holder.execute(text("SELECT 1 FROM contacts WHERE id = :c FOR UPDATE"), {"c": contact["id"]})
        first = worker()

        async def blocked():  # the run's transaction waits for the contact's row lock
            async with database.sessions() as s:
                waiting = await s.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"))
            return await attempts() == 1 and waiting

        await eventually(blocked, within=120, interval=0.2)
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 30)
        await lock.rollback()
        second = worker()

        async def done():
            rows = (await _ok(await api.get(f"/v1/automations/{rule['id']}/runs", headers=h)))["data"]
            return rows if rows and rows[0]["status"] != "queued" else None

        [run] = await eventually(done, within=180)
    finally:
        await holder.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 60)
    assert run["status"] == "succeeded" and await attempts() == 2
    tasks = (await _ok(await api.get("/v1/activities", headers=h, params={"contact_id": contact["id"]})))["data"]
    assert [t["subject"] for t in tasks] == ["Welcome call"]  # the killed run's task was never committed
    assert (await _ok(await api.get(f"/v1/contacts/{contact['id']}", headers=h)))["title"] == "Welcomed"


async def _swept(database, now, catch_up_days: int = 7) -> list:
    from app.domain.automations import schedules

    async with database.across_orgs() as session:
        return await schedules.sweep(session, now, catch_up_days)


async def test_in_stage_longer_than_fires_once_per_stay(api, database):
    from datetime import UTC, datetime, timedelta

    acct = await signup(api)
    h = acct.headers
    pipeline, stages = await _pipeline(api, acct)
    rule = await _rule(api, acct, trigger={"schedule": "in_stage_longer_than", "days": 3,
                                           "stage_id": stages["Measurement"]},
                       actions=[{"type": "create_task", "subject": "Chase the measurement"}])
    deal = await _ok(await api.post("/v1/deals", headers=h, json={
        "title": "Stuck", "pipeline_id": pipeline["id"], "stage_id": stages["Measurement"]}), 201)
    await api.post("/v1/deals", headers=h, json={"title": "Elsewhere", "pipeline_id": pipeline["id"]})
    now = datetime.now(UTC)
    mine = [r for r in await _swept(database, now + timedelta(days=2, hours=23)) if str(r[0]) == acct.org_id]
    assert mine == []
    fired = [r for r in await _swept(database, now + timedelta(days=3, minutes=1)) if str(r[0]) == acct.org_id]
    assert len(fired) == 1
    assert [r for r in await _swept(database, now + timedelta(days=9)) if str(r[0]) == acct.org_id] == []  # once
    runs = (await _ok(await api.get(f"/v1/automations/{rule['id']}/runs", headers=h)))["data"]
    assert [(r["object_id"], r["status"]) for r in runs] == [(deal["id"], "queued")]
    # a new stay in the stage is a new occurrence
    await api.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stages["Quote"]})
    await api.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stages["Measurement"]})
    again = [r for r in await _swept(database, datetime.now(UTC) + timedelta(days=4)) if str(r[0]) == acct.org_id]
    assert len(again) == 1


async def test_birthdays_fire_at_the_local_hour_yearly_and_catch_up(api, database):
    from datetime import UTC, datetime

    acct = await signup(api)
    h = acct.headers
    await api.patch("/v1/org", headers=h, json={"timezone": "Pacific/Auckland"})
    await _rule(api, acct, trigger={"schedule": "date_offset", "field": "contact.birthday", "days": 0, "at": "09:00"},
                actions=[{"type": "add_tag", "tag": "greeted"}])
    await api.post("/v1/contacts", headers=h, json={"first_name": "March", "birthday": "1990-03-15"})
    await api.post("/v1/contacts", headers=h, json={"first_name": "Leap", "birthday": "2000-02-29"})

    async def fired(at: str, catch_up: int = 7) -> int:
        return len([r for r in await _swept(database, datetime.fromisoformat(at).astimezone(UTC), catch_up)
                    if str(r[0]) == acct.org_id])

    assert await fired("2027-03-14T19:59:00+00:00") == 0  # 08:59 on 15 March in Auckland
    assert await fired("2027-03-14T20:00:00+00:00") == 1  # 09:00 local: March's birthday
    assert await fired("2027-03-15T20:00:00+00:00") == 0  # once a year
    assert await fired("2028-03-20T00:00:00+00:00") == 1  # next year, caught up five days late
    assert await fired("2027-03-01T00:00:00+00:00", catch_up=2) == 1  # Feb 29 falls on Feb 28 in 2027
    assert await fired("2029-04-30T00:00:00+00:00", catch_up=7) == 0  # beyond the catch-up window


async def test_a_quiet_contact_gets_the_win_back_action_from_the_worker(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    rule = await _rule(api, acct, trigger={"schedule": "no_activity_for", "days": 90, "object": "contact"},
                       conditions=[{"field": "contact.tags", "op": "contains", "value": "customer"}],
                       actions=[{"type": "add_tag", "tag": "win-back"}])
    quiet = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "Q", "tags": ["customer"]}), 201)
    busy = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "B", "tags": ["customer"]}), 201)
    await api.post("/v1/activities", headers=h, json={"type": "call", "subject": "Call", "contact_id": busy["id"],
                                                      "done_at": "2099-01-01T00:00:00Z"})
    ninety_one_days = 91 * 86400
    async with running_worker(fast_settings.model_copy(update={"clock_offset_seconds": ninety_one_days})):
        runs = await _runs(api, acct, rule["id"], 1)
    assert [(r["object_id"], r["status"]) for r in runs] == [(quiet["id"], "succeeded")]
    assert "win-back" in (await _ok(await api.get(f"/v1/contacts/{quiet['id']}", headers=h)))["tags"]
    assert "win-back" not in (await _ok(await api.get(f"/v1/contacts/{busy['id']}", headers=h)))["tags"]


async def test_an_untouched_lead_is_escalated_to_the_manager_after_a_delay(api, fast_settings):
    acct = await signup(api)
    h = acct.headers
    manager = await acct.invite("manager")
    rep = await acct.invite("member")
    await _ok(await api.patch(f"/v1/users/{rep.user_id}", headers=h, json={"manager_id": manager.user_id}))
    rule = await _rule(api, acct, trigger={"schedule": "no_activity_for", "days": 3, "object": "lead"}, actions=[
        {"type": "create_task", "subject": "Call back now", "assignee": {"type": "owner"}},
        {"type": "delay", "minutes": 60},
        {"type": "create_task", "subject": "Escalated: nobody called", "assignee": {"type": "manager"}}])
    lead = await _ok(await api.post("/v1/leads", headers=h, json={"first_name": "Lou", "owner_id": rep.user_id}), 201)
    three_days = 3 * 86400 + 60
    async with running_worker(fast_settings.model_copy(update={"clock_offset_seconds": three_days})):
        async def delayed():
            rows = (await _ok(await api.get(f"/v1/automations/{rule['id']}/runs", headers=h)))["data"]
            return rows if rows and rows[0]["reason"] and rows[0]["reason"].startswith("delayed until") else None

        [waiting] = await eventually(delayed)
    assert waiting["status"] == "queued" and [a["type"] for a in waiting["actions"]] == ["create_task", "delay"]
    tasks = (await _ok(await api.get("/v1/activities", headers=h, params={"lead_id": lead["id"]})))["data"]
    assert [(t["subject"], t["assignee_id"]) for t in tasks] == [("Call back now", rep.user_id)]
    # an hour later on the schedules' clock, the run goes on from after the delay
    async with running_worker(fast_settings.model_copy(update={"clock_offset_seconds": three_days + 3700})):
        [done] = await _runs(api, acct, rule["id"], 1)
    assert done["status"] == "succeeded" and [a["type"] for a in done["actions"]] == [
        "create_task", "delay", "create_task"]
    tasks = (await _ok(await api.get("/v1/activities", headers=h, params={"lead_id": lead["id"]})))["data"]
    assert sorted((t["subject"], t["assignee_id"]) for t in tasks) == [
        ("Call back now", rep.user_id), ("Escalated: nobody called", manager.user_id)]


async def test_conditions_read_customer_metrics(api):
    acct = await signup(api)
    h = acct.headers
    pipeline, stages = await _pipeline(api, acct)
    rule = await _rule(api, acct, trigger={"event": "contact.updated"}, conditions=[
        {"field": "contact.metrics.lifetime_value.amount", "op": "gte", "value": "500"},
        {"field": "contact.metrics.won_deals_count", "op": "gte", "value": 2}], actions=[{"type": "add_tag",
                                                                                          "tag": "vip"}])
    contact = await _ok(await api.post("/v1/contacts", headers=h, json={"first_name": "Val"}), 201)
    for amount in ("200.00", "300.00"):
        await api.post("/v1/deals", headers=h, json={"title": "D", "pipeline_id": pipeline["id"],
                                                     "stage_id": stages["Won"], "contact_id": contact["id"],
                                                     "value": {"amount": amount, "currency": "EUR"}})
    checked = await _ok(await api.post(f"/v1/automations/{rule['id']}/dry-run", headers=h,
                                       json={"object_id": contact["id"]}))
    assert checked["would_run"] is True
    assert [c["actual"] for c in checked["conditions"]] == ["500.00", 2]


async def test_the_measure_quote_install_chain_hands_the_deal_on_at_each_stage(api, fast_settings):
    """The recipe: reaching Measurement gives the measurer a task, Quote the estimator one, and a won deal goes
    to the installer (a task, and the deal's ownership)."""
    acct = await signup(api)
    h = acct.headers
    measurer, estimator, installer = [await acct.invite("member") for _ in range(3)]
    pipeline, stages = await _pipeline(api, acct)
    rules = [
        await _rule(api, acct, trigger={"event": "deal.stage_changed", "to_stage_id": stages["Measurement"]},
                    actions=[{"type": "create_task", "subject": "Measure on site", "due": {"in_minutes": 1440},
                              "assignee": {"type": "user", "user_id": measurer.user_id}}]),
        await _rule(api, acct, trigger={"event": "deal.stage_changed", "to_stage_id": stages["Quote"]},
                    actions=[{"type": "create_task", "subject": "Send the quote", "due": {"in_minutes": 240},
                              "assignee": {"type": "user", "user_id": estimator.user_id}}]),
        await _rule(api, acct, trigger={"event": "deal.won", "pipeline_id": pipeline["id"]},
                    actions=[{"type": "create_task", "subject": "Install", "due": {"in_minutes": 10080},
                              "assignee": {"type": "user", "user_id": installer.user_id}},
                             {"type": "assign_owner", "assignee": {"type": "user", "user_id": installer.user_id}}]),
    ]
    deal = await _ok(await api.post("/v1/deals", headers=h, json={
        "title": "Windows for the Meyers", "pipeline_id": pipeline["id"],
        "value": {"amount": "4200.00", "currency": "EUR"}}), 201)
    async with running_worker(fast_settings):
        for stage in ("Measurement", "Quote", "Won"):
            await _ok(await api.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stages[stage]}))
        runs = [await _runs(api, acct, rule["id"], 1) for rule in rules]
    assert [[r["status"] for r in rows] for rows in runs] == [["succeeded"]] * 3
    tasks = (await _ok(await api.get("/v1/activities", headers=h, params={"deal_id": deal["id"]})))["data"]
    assert sorted((t["subject"], t["assignee_id"]) for t in tasks if t["type"] == "task") == sorted([
        ("Measure on site", measurer.user_id), ("Send the quote", estimator.user_id), ("Install", installer.user_id)])
    after = await _ok(await api.get(f"/v1/deals/{deal['id']}", headers=h))
    assert after["owner_id"] == installer.user_id and after["status"] == "won"
