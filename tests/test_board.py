"""A deal board in at most three requests: related records with `expand=`, batch reads with `ids=`, and the
per-stage totals of `GET /v1/pipelines/{id}/summary` (API.md "Related records", "Sales core")."""

from __future__ import annotations

import uuid

from tests.factories import signup
from tests.test_round_trips import count_statements


async def _pipeline(client, acct) -> dict:
    return (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"][0]


async def _board(client, acct, pipeline: dict, n: int, currency: str | None = None) -> list[dict]:
    made = []
    open_stages = [s for s in pipeline["stages"] if s["kind"] == "open"]
    for i in range(n):
        contact = (await client.post("/v1/contacts", headers=acct.headers, json={"first_name": f"C{i}"})).json()
        value = {"amount": f"{100 * (i + 1)}.00", **({"currency": currency} if currency else {})}
        r = await client.post("/v1/deals", headers=acct.headers, json={
            "title": f"Deal {i}", "contact_id": contact["id"], "pipeline_id": pipeline["id"],
            "stage_id": open_stages[i % len(open_stages)]["id"], "value": value})
        assert r.status_code == 201, r.text
        made.append(r.json())
    return made


async def test_a_board_of_five_stages_takes_three_requests(client):
    acct = await signup(client)
    pipeline = await _pipeline(client, acct)
    deals = await _board(client, acct, pipeline, 8)
    requests = 0

    async def get(path: str, **params) -> dict:
        nonlocal requests
        requests += 1
        r = await client.get(path, headers=acct.headers, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    pipelines = await get("/v1/pipelines")
    summary = await get(f"/v1/pipelines/{pipeline['id']}/summary")
    page = await get("/v1/deals", pipeline_id=pipeline["id"], expand="contact,owner,stage", limit=200)
    assert requests == 3 and pipelines["data"][0]["id"] == pipeline["id"]

    assert [s["stage_id"] for s in summary["stages"]] == [s["id"] for s in pipeline["stages"]]
    by_stage = {s["stage_id"]: s for s in summary["stages"]}
    for stage in pipeline["stages"]:
        mine = [d for d in deals if d["stage_id"] == stage["id"]]
        total = sum(int(d["value"]["amount"].split(".")[0]) for d in mine)
        assert by_stage[stage["id"]]["deals"] == len(mine)
        assert by_stage[stage["id"]]["value"] == {"amount": f"{total}.00", "currency": pipeline["currency"]}
    assert summary["totals"]["deals"] == 8 and summary["totals"]["other_currencies"] == []

    for deal in page["data"]:
        related = deal["expanded"]
        assert set(related) == {"contact", "owner", "stage"}
        assert related["contact"]["id"] == deal["contact_id"] and related["contact"]["first_name"].startswith("C")
        assert related["owner"] == {"id": acct.user_id, "name": "Olga Owner", "email": acct.email}
        assert related["stage"]["id"] == deal["stage_id"] and related["stage"]["name"]
    plain = await client.get("/v1/deals", headers=acct.headers)
    assert "expanded" not in plain.json()["data"][0]  # only when asked for


async def test_expand_costs_one_statement_per_relation_whatever_the_page_size(client, database):
    acct = await signup(client)
    pipeline = await _pipeline(client, acct)
    seen_for = {}
    for n in (5, 45):
        await _board(client, acct, pipeline, n - sum(seen_for) if seen_for else n)
        with count_statements(database) as seen:
            r = await client.get("/v1/deals", headers=acct.headers,
                                 params={"expand": "contact,company,owner,stage,pipeline", "limit": 200})
        assert r.status_code == 200 and len(r.json()["data"]) == n
        seen_for[n] = len(seen)
        with count_statements(database) as plain:
            await client.get("/v1/deals", headers=acct.headers, params={"limit": 200})
        # company has no ids on these deals: no statement for it
        assert len(seen) - len(plain) == 4, seen
    assert seen_for[5] == seen_for[45]


async def test_expand_on_a_get_and_what_may_not_be_read_is_null(client):
    acct = await signup(client)
    pipeline = await _pipeline(client, acct)
    (deal,) = await _board(client, acct, pipeline, 1)
    got = await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers,
                           params={"expand": ["contact", "pipeline"], "fields": "id,title"})
    assert got.status_code == 200, got.text
    body = got.json()
    assert set(body) == {"id", "title", "expanded"}
    assert body["expanded"]["pipeline"]["id"] == pipeline["id"] and body["expanded"]["contact"]["first_name"] == "C0"
    await client.delete(f"/v1/contacts/{deal['contact_id']}", headers=acct.headers)
    again = await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers, params={"expand": "contact"})
    assert again.json()["contact_id"] == deal["contact_id"] and again.json()["expanded"] == {"contact": None}

    bad = await client.get("/v1/deals", headers=acct.headers, params={"expand": "contact,invoices"})
    assert bad.status_code == 422 and "invoices" in bad.json()["errors"][0]["msg"]
    assert bad.json()["errors"][0]["loc"] == ["query", "expand"]
    deals_only = await acct.api_key(["deals:read"])
    refused = await client.get("/v1/deals", headers=deals_only, params={"expand": "contact"})
    assert refused.status_code == 403 and refused.json()["missing_scopes"] == ["contacts:read"]
    assert (await client.get("/v1/deals", headers=deals_only, params={"expand": "owner"})).status_code == 200
    assert (await client.get("/v1/contacts", headers=acct.headers, params={"expand": "company,owner"})).status_code == 200
    activity = await client.get("/v1/activities", headers=acct.headers, params={"expand": "deal,assignee,lead"})
    assert activity.status_code == 200, activity.text


async def test_ids_reads_those_records_of_the_callers_org_only(client):
    acct, other = await signup(client), await signup(client, "Other")
    mine = [(await client.post("/v1/contacts", headers=acct.headers, json={"first_name": f"M{i}"})).json()["id"]
            for i in range(4)]
    theirs = (await client.post("/v1/contacts", headers=other.headers, json={"first_name": "T"})).json()["id"]
    r = await client.get("/v1/contacts", headers=acct.headers,
                         params={"ids": f"{mine[0]},{mine[2]},{theirs}", "sort": "created_at"})
    assert [c["id"] for c in r.json()["data"]] == [mine[0], mine[2]]
    repeated = await client.get("/v1/contacts", headers=acct.headers, params=[("ids", mine[1]), ("ids", mine[3])])
    assert {c["id"] for c in repeated.json()["data"]} == {mine[1], mine[3]}
    too_many = ",".join(str(uuid.uuid4()) for _ in range(201))
    r = await client.get("/v1/deals", headers=acct.headers, params={"ids": too_many})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "ids"]
    r = await client.get("/v1/leads", headers=acct.headers, params={"ids": "not-a-uuid"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "ids"]


async def test_summary_takes_the_deal_filters_and_keeps_other_currencies_apart(client):
    acct = await signup(client)
    rep = await acct.invite("member")
    pipeline = await _pipeline(client, acct)
    await _board(client, acct, pipeline, 2)
    foreign = await _board(client, acct, pipeline, 1, currency="CHF" if pipeline["currency"] != "CHF" else "USD")
    assert (await client.patch(f"/v1/deals/{foreign[0]['id']}", headers=acct.headers,
                               json={"owner_id": rep.user_id})).status_code == 200
    everything = (await client.get(f"/v1/pipelines/{pipeline['id']}/summary", headers=acct.headers)).json()
    assert everything["totals"]["deals"] == 3
    assert everything["totals"]["value"]["amount"] == "300.00"
    assert everything["totals"]["other_currencies"] == [{"amount": "100.00",
                                                         "currency": foreign[0]["value"]["currency"]}]
    reps = await client.get(f"/v1/pipelines/{pipeline['id']}/summary", headers=rep.headers,
                            params={"owner_id": "me"})
    assert reps.status_code == 200 and reps.json()["totals"]["deals"] == 1
    assert reps.json()["totals"]["value"]["amount"] == "0.00"
    missing = await client.get(f"/v1/pipelines/{uuid.uuid4()}/summary", headers=acct.headers)
    assert missing.status_code == 404


async def test_another_orgs_board_is_404_and_counts_none_of_its_deals(client):
    acct = await signup(client)
    pipeline = await _pipeline(client, acct)
    await _board(client, acct, pipeline, 2)
    other = await signup(client, "Other")
    assert (await client.get(f"/v1/pipelines/{pipeline['id']}/summary", headers=other.headers)).status_code == 404
    own = (await client.get("/v1/pipelines", headers=other.headers)).json()["data"][0]
    theirs = (await client.get(f"/v1/pipelines/{own['id']}/summary", headers=other.headers)).json()
    assert theirs["totals"]["deals"] == 0  # the first org's deals are nowhere in it
    filtered = await client.get(f"/v1/pipelines/{own['id']}/summary", headers=other.headers,
                                params={"owner_id": acct.user_id})
    assert filtered.status_code == 200 and filtered.json()["totals"]["deals"] == 0  # as for an unknown id
