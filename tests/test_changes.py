"""The changes feed under concurrency: overlapping transactions, a reader paging meanwhile, exactly once."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.domain.auth.principal import Principal
from app.domain.contacts import service as contacts
from app.domain.events.feed import Position
from app.domain.events.models import Event
from tests.factories import signup


async def _drain(client, headers, cursor=None, **params):
    seen = []
    while True:
        r = await client.get("/v1/changes", headers=headers, params={"limit": 7, **params,
                                                                   **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if not page["data"]:
            return seen, cursor


async def test_feed_lists_every_event_once_in_commit_order(committed_client, database):
    c = committed_client
    acct = await signup(c)
    contact = (await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})).json()
    await c.patch(f"/v1/contacts/{contact['id']}", headers=acct.headers, json={"title": "CEO"})
    await c.delete(f"/v1/contacts/{contact['id']}", headers=acct.headers)
    seen, cursor = await _drain(c, acct.headers)
    types = [e["type"] for e in seen if e["object_id"] == contact["id"]]
    assert types == ["contact.created", "contact.updated", "contact.deleted"]  # the delete is a tombstone
    tomb = seen[-1]
    assert tomb["actor"] == {"type": "user", "id": acct.user_id} and tomb["version"] == 3
    assert set(tomb) == {"id", "type", "object_type", "object_id", "action", "occurred_at", "actor", "version",
                         "data"}
    async with database.sessions() as s:
        ids = set(await s.scalars(select(Event.id).where(Event.org_id == uuid.UUID(acct.org_id))))
    assert {uuid.UUID(e["id"]) for e in seen} == ids and len(seen) == len(ids)
    again, same = await _drain(c, acct.headers, cursor)
    assert again == [] and same == cursor  # polling at the end returns the same cursor
    only_contacts, _ = await _drain(c, acct.headers, types="contact")
    assert {e["object_type"] for e in only_contacts} == {"contact"}


async def test_a_transaction_committing_late_is_not_skipped(committed_client, database):
    c = committed_client
    acct = await signup(c)
    _, cursor = await _drain(c, acct.headers)
    me = Principal.for_user(uuid.UUID(acct.org_id), uuid.UUID(acct.user_id), "owner")
    slow = database.sessions()
    await slow.begin()
    late = await contacts.create(slow, me, {"first_name": "Late"})  # txid taken now, committed last
    early = [(await c.post("/v1/contacts", headers=acct.headers, json={"first_name": f"E{i}"})).json()["id"]
             for i in range(5)]
    seen, cursor = await _drain(c, acct.headers, cursor)
    assert seen == []  # nothing after the open transaction is shown while it could still commit before it
    await slow.commit()
    await slow.close()
    seen, _ = await _drain(c, acct.headers, cursor)
    assert [e["object_id"] for e in seen if e["type"] == "contact.created"] == [str(late.id), *early]


async def test_concurrent_writers_and_a_paging_reader_see_each_event_exactly_once(committed_client, database):
    c = committed_client
    acct = await signup(c)
    _, cursor = await _drain(c, acct.headers)
    me = Principal.for_user(uuid.UUID(acct.org_id), uuid.UUID(acct.user_id), "owner")
    done = asyncio.Event()

    async def writer(n: int) -> None:
        for i in range(15):
            async with database.sessions.begin() as s:
                await contacts.create(s, me, {"first_name": f"W{n}-{i}"})
                await asyncio.sleep(random.random() * 0.02)  # overlapping transactions, out-of-order commits

    seen: list[dict] = []

    async def reader() -> None:
        nonlocal cursor
        while True:
            finished = done.is_set()
            page = (await c.get("/v1/changes", headers=acct.headers, params={"cursor": cursor, "limit": 9})).json()
            seen.extend(page["data"])
            cursor = page["next_cursor"]
            if finished and not page["data"]:
                return
            await asyncio.sleep(0.01)

    read = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(6)))
    done.set()
    await read
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == 90
    async with database.sessions() as s:
        expected = {str(i) for i in await s.scalars(select(Event.id).where(
            Event.org_id == uuid.UUID(acct.org_id), Event.type == "contact.created"))}
    assert set(ids) == expected


async def test_long_poll_returns_when_something_arrives(committed_client):
    c = committed_client
    acct = await signup(c)
    _, cursor = await _drain(c, acct.headers)

    async def later_write():
        await asyncio.sleep(0.5)
        await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Waited"})

    poll, _ = await asyncio.gather(c.get("/v1/changes", headers=acct.headers, params={"cursor": cursor, "wait": 10}),
                                   later_write())
    assert poll.status_code == 200
    assert [e["type"] for e in poll.json()["data"]] == ["contact.created"]


async def test_old_cursor_is_410_bad_cursor_422_and_orgs_are_isolated(committed_client):
    c = committed_client
    a, b = await signup(c), await signup(c)
    await c.post("/v1/contacts", headers=a.headers, json={"first_name": "A only"})
    b_seen, _ = await _drain(c, b.headers)
    assert all(e["object_type"] != "contact" for e in b_seen)
    ms = int((datetime.now(UTC) - timedelta(days=40)).timestamp() * 1000)
    old_id = uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0x2 << 62) | 1)
    r = await c.get("/v1/changes", headers=a.headers, params={"cursor": Position(1, old_id).encode()})
    assert r.status_code == 410 and "resync" in r.json()["detail"]
    assert (await c.get("/v1/changes", headers=a.headers, params={"cursor": "garbage"})).status_code == 422
    assert (await c.get("/v1/changes", headers=a.headers, params={"limit": 0})).status_code == 422
    assert (await c.get("/v1/changes")).status_code == 401
    key = await a.api_key(["contacts:read"])
    assert (await c.get("/v1/changes", headers=key)).status_code == 403


async def test_a_feed_entry_is_the_webhook_envelope_of_the_same_event(committed_client, database):
    """The feed renders envelopes in SQL, webhooks in Python: both must read the same, field for field."""
    from app.domain.webhooks.service import envelope

    c = committed_client
    acct = await signup(c)
    await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana", "custom_fields": {},
                                                              "tags": ["vip"], "email": "ana@example.com"})
    seen, _ = await _drain(c, acct.headers)
    async with database.sessions() as s:
        events = {e.id: e for e in await s.scalars(select(Event).where(Event.org_id == uuid.UUID(acct.org_id)))}
    assert seen and all(entry == envelope(events[uuid.UUID(entry["id"])]) for entry in seen)
