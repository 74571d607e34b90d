"""Starting incremental sync (docs/sync.md): a head cursor without draining the feed, and an `X-Changes-Cursor`
on lists and exports, so that export-then-follow misses nothing and repeats nothing while writes race it."""

from __future__ import annotations

import asyncio
import csv
import io

from tests.factories import signup


async def _follow(client, headers, cursor: str) -> tuple[list[dict], str]:
    events: list[dict] = []
    while True:
        page = (await client.get("/v1/changes", headers=headers, params={"cursor": cursor, "limit": 1000})).json()
        events += page["data"]
        if not page["data"]:
            return events, page["next_cursor"]
        cursor = page["next_cursor"]


async def test_cursor_now_is_the_head_of_the_feed(committed_client):
    c = committed_client
    acct = await signup(c)
    for name in ("Ana", "Bo"):
        await c.post("/v1/contacts", headers=acct.headers, json={"first_name": name})
    now = (await c.get("/v1/changes", headers=acct.headers, params={"cursor": "now"})).json()
    assert now["data"] == []
    assert (await _follow(c, acct.headers, now["next_cursor"]))[0] == []  # nothing before it comes again
    made = (await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Cy"})).json()
    after, _ = await _follow(c, acct.headers, now["next_cursor"])
    assert [(e["type"], e["object_id"]) for e in after] == [("contact.created", made["id"])]


async def test_export_then_follow_misses_nothing_and_repeats_nothing(committed_client):
    c = committed_client
    acct = await signup(c)
    ids = [(await c.post("/v1/contacts", headers=acct.headers, json={"first_name": f"P{i}"})).json()["id"]
           for i in range(250)]  # more than one export page
    stop, under_way, enough = asyncio.Event(), asyncio.Event(), asyncio.Event()
    written, goal = 0, None

    async def writer() -> None:
        nonlocal written
        i = 0
        while not stop.is_set():
            target = ids[(i * 7) % len(ids)]
            if i % 5 == 4:
                await c.post("/v1/contacts", headers=acct.headers, json={"first_name": f"New{i}"})
            else:
                await c.patch(f"/v1/contacts/{target}", headers=acct.headers, json={"title": f"t{i}"})
            written += 1
            i += 1
            if written >= 5:
                under_way.set()
            if goal is not None and written >= goal:
                enough.set()
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    await under_way.wait()  # the writes are under way before the export starts
    export = await c.get("/v1/contacts/export.csv", headers=acct.headers)
    listed = await c.get("/v1/contacts", headers=acct.headers, params={"limit": 200})
    goal = written + 20
    await enough.wait()  # and go on after it
    stop.set()
    await task

    assert export.status_code == 200 and listed.status_code == 200
    held = {row["id"]: (int(row["version"]), row["title"] or None) for row in csv.DictReader(io.StringIO(export.text))}
    events, _ = await _follow(c, acct.headers, export.headers["X-Changes-Cursor"])
    contact_events = [e for e in events if e["object_type"] == "contact"]
    for event in contact_events:  # repeats nothing: each event is newer than what the export held
        if event["object_id"] in held:
            assert event["version"] > held[event["object_id"]][0], event
    for event in contact_events:
        held[event["object_id"]] = (event["version"], event["data"]["object"]["title"])
    final = {}
    cursor = None
    while True:
        page = (await c.get("/v1/contacts", headers=acct.headers, params={"limit": 200, "cursor": cursor})).json()
        final.update({r["id"]: (r["version"], r["title"]) for r in page["data"]})
        if not (cursor := page["next_cursor"]):
            break
    assert held == final  # misses nothing

    page_versions = {r["id"]: r["version"] for r in listed.json()["data"]}
    after_list, _ = await _follow(c, acct.headers, listed.headers["X-Changes-Cursor"])
    for event in after_list:
        if event["object_id"] in page_versions:
            assert event["version"] > page_versions[event["object_id"]], event


async def test_every_list_and_export_carries_the_cursor(client):
    acct = await signup(client)
    for path in ("/v1/contacts", "/v1/companies", "/v1/leads", "/v1/deals", "/v1/activities",
                 "/v1/deals/export.csv"):
        r = await client.get(path, headers=acct.headers)
        assert r.status_code == 200 and r.headers["X-Changes-Cursor"], path
        follow = await client.get("/v1/changes", headers=acct.headers,
                                  params={"cursor": r.headers["X-Changes-Cursor"]})
        assert follow.status_code == 200 and follow.json()["data"] == []


async def test_batch_upsert_items_carry_external_ids_like_the_records(client):
    acct = await signup(client)
    first = await client.post("/v1/contacts/batch", headers=acct.headers, json={"mode": "upsert", "items": [
        {"external_ids": [{"source": "erp", "id": "7"}, {"source": "shop", "id": "c-7"}], "first_name": "Seven"}]})
    made = (await client.get("/v1/contacts/by-external-id/shop/c-7", headers=acct.headers)).json()
    assert made["id"] == first.json()["results"][0]["id"] and made["first_name"] == "Seven"
    r = await client.post("/v1/contacts/batch", headers=acct.headers, json={"mode": "upsert", "items": [
        {"external_ids": [{"source": "erp", "id": "7"}], "first_name": "Seven"},
        {"external_ids": [{"source": "erp", "id": "7"}], "title": "Buyer"},
        {"external_id": {"source": "erp", "id": "7"}, "last_name": "Old shape"},
        {"external_ids": [], "first_name": "no key"}]})
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["updated", "updated", "updated", "failed"], results
    assert results[3]["error"]["errors"][0]["loc"][-1] == "external_id"
    assert {x["id"] for x in results[:3]} == {made["id"]}
    got = (await client.get("/v1/contacts/by-external-id/erp/7", headers=acct.headers)).json()
    assert (got["first_name"], got["title"], got["last_name"]) == ("Seven", "Buyer", "Old shape")
