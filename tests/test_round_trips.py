"""SQL round trips per request for the main endpoints: an N+1 regression fails here.

Counts exclude the savepoint statements that the test harness itself adds around each request. Every count
includes the two statements of an API key: the prefix (a global lookup) sets the org for row-level security,
then the key and its creator are read (tests/test_row_level_security.py)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from tests.factories import signup


@contextmanager
def count_statements(database):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        head = statement.lstrip().split(None, 1)[0].upper()
        if head not in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
            seen.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
async def world(client):
    acct = await signup(client)
    key = await acct.api_key(["*"])
    await client.get("/v1/me", headers=key)  # first use writes last_used_at; later uses within a minute do not
    h = acct.headers
    contact = (await client.post("/v1/contacts", headers=h, json={"first_name": "A", "email": "a@x.io"})).json()
    deal = (await client.post("/v1/deals", headers=h, json={"title": "D", "contact_id": contact["id"]})).json()
    for i in range(30):  # enough rows that a per-row query would show
        c = (await client.post("/v1/contacts", headers=h, json={"first_name": f"C{i}"})).json()
        await client.post("/v1/deals", headers=h, json={"title": f"D{i}", "contact_id": c["id"]})
        await client.post("/v1/activities", headers=h, json={"type": "note", "subject": f"n{i}",
                                                              "contact_id": contact["id"], "deal_id": deal["id"]})
        await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"value": {"amount": str(i)}})
    return acct, key, contact, deal


CASES = [
    # (name, method, path template, body, expected round trips)
    # a record list also reads the changes-feed head before and after its page (X-Changes-Cursor)
    ("ping (the benchmark floor)", "GET", "/v1/ping", None, 2),
    ("get deal, API key", "GET", "/v1/deals/{deal}", None, 3),
    ("list deals", "GET", "/v1/deals?limit=50", None, 5),
    ("list deals by stage and owner", "GET", "/v1/deals?stage_id={stage}&owner_id={owner}", None, 5),
    ("list contacts q", "GET", "/v1/contacts?q=c1", None, 5),
    ("list pipelines", "GET", "/v1/pipelines", None, 4),
    ("contact timeline", "GET", "/v1/contacts/{contact}/timeline?limit=50", None, 5),
    # the screen pop for a ringing number: one statement (the org's phone region comes along in it)
    ("call lookup", "GET", "/v1/calls/lookup?phone=%2B4930123456", None, 3),
    # a create reads what it checks (region, owner, custom fields, now()) in one statement, then writes the row,
    # its event and audit row in one
    ("create contact", "POST", "/v1/contacts", {"first_name": "New", "phone": "+4930123456"}, 4),
    ("create lead", "POST", "/v1/leads", {"first_name": "L", "email": "l@x.io", "source": "web_form"}, 4),
    ("move deal", "PATCH", "/v1/deals/{deal}", {"stage_id": "{stage2}"}, 8),
    # a report is one statement (after the credential's two): it reads the org's time zone and currency and checks the pipeline itself
    ("funnel report", "GET", "/v1/reports/funnel?from=2020-01-01&to=2030-12-31&owner_id={owner}", None, 3),
    ("funnel report of a pipeline", "GET", "/v1/reports/funnel?pipeline_id={pipeline}", None, 3),
    ("win-loss report by month", "GET", "/v1/reports/win-loss?group_by=month&from=2020-01-01", None, 3),
    ("win-loss report by source", "GET", "/v1/reports/win-loss?group_by=source&pipeline_id={pipeline}", None, 3),
    ("forecast report", "GET", "/v1/reports/forecast?pipeline_id={pipeline}&format=csv", None, 3),
]


@pytest.mark.parametrize(("name", "method", "path", "body", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_round_trips(client, database, world, name, method, path, body, expected):
    acct, key, contact, deal = world
    pipeline = (await client.get(f"/v1/pipelines/{deal['pipeline_id']}", headers=key)).json()
    values = {"deal": deal["id"], "contact": contact["id"], "stage": deal["stage_id"], "owner": acct.user_id,
              "stage2": pipeline["stages"][2]["id"], "pipeline": pipeline["id"]}
    path = path.format(**values)
    if body and "stage_id" in body:
        body = {"stage_id": values["stage2"]}
    with count_statements(database) as seen:
        r = await client.request(method, path, headers=key, json=body)
    assert r.status_code < 300, r.text
    assert len(seen) == expected, "\n".join(s.split("\n")[0][:120] for s in seen)


async def test_deleting_a_stage_moves_its_deals_in_a_fixed_number_of_statements(client, database):
    """One UPDATE for the deals, one INSERT for their stage history, one for their events: the same count
    whether the stage holds one deal or a hundred."""
    acct = await signup(client)
    h = acct.headers
    stages = [{"name": "A", "probability": 10}, {"name": "B", "probability": 50},
              {"name": "Won", "probability": 100, "kind": "won"}, {"name": "Lost", "probability": 0, "kind": "lost"}]
    counts = {}
    for deals in (1, 100):
        pipeline = (await client.post("/v1/pipelines", headers=h, json={"name": f"P{deals}", "stages": stages})).json()
        a, b = (s["id"] for s in pipeline["stages"][:2])
        r = await client.post("/v1/deals/batch", headers=h, json={"mode": "create", "items": [
            {"title": f"D{i}", "pipeline_id": pipeline["id"], "stage_id": a} for i in range(deals)]})
        assert [x["status"] for x in r.json()["results"]] == ["created"] * deals
        with count_statements(database) as seen:
            r = await client.delete(f"/v1/pipelines/{pipeline['id']}/stages/{a}", headers=h,
                                    params={"move_deals_to": b})
        assert r.status_code == 204, r.text
        counts[deals] = len(seen)
        moved = (await client.get("/v1/deals", headers=h, params={"stage_id": b, "limit": 200})).json()["data"]
        assert len(moved) == deals
    assert counts[1] == counts[100], counts
