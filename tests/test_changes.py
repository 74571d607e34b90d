"""The changes feed under concurrency: overlapping transactions, a reader paging meanwhile, exactly once."""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrate
from app.db import Database
from app.domain.auth.principal import Principal
from app.domain.contacts import service as contacts
from app.domain.events import feed
from app.domain.events import service as events
from app.domain.events.feed import Position
from app.domain.events.models import Event
from app.ids import new_id
from tests.factories import signup


async def read_feed(client, headers, cursor=None, *, until, deadline=15.0, **params):
    """Page through /v1/changes until `until(seen)` holds. An empty page only means "nothing yet": the reader
    long-polls and goes on, and fails after `deadline` seconds. -> (events seen, next cursor)."""
    seen: list[dict] = []
    give_up = time.monotonic() + deadline
    while not until(seen):
        assert time.monotonic() < give_up, f"the feed did not bring what was awaited in {deadline}s: {seen}"
        r = await client.get("/v1/changes", headers=headers, params={"limit": 7, "wait": 1, **params,
                                                                   **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        seen += r.json()["data"]
        cursor = r.json()["next_cursor"]
    return seen, cursor


def has_ids(ids):
    wanted = set(map(str, ids))
    return lambda seen: wanted <= {e["id"] for e in seen}


def has_objects(object_ids, type_="contact.created"):
    wanted = set(map(str, object_ids))
    return lambda seen: wanted <= {e["object_id"] for e in seen if e["type"] == type_}


async def head(client, headers) -> str:
    """The cursor at the end of the feed, every event so far read (the caller's writes are all committed)."""
    r = await client.get("/v1/changes", headers=headers, params={"limit": 1000})
    while r.json()["data"]:
        r = await client.get("/v1/changes", headers=headers, params={"limit": 1000, "cursor": r.json()["next_cursor"]})
    return r.json()["next_cursor"]


async def event_ids(database, org_id, **where) -> set[str]:
    async with database.sessions() as s:
        query = select(Event.id).where(Event.org_id == uuid.UUID(org_id))
        for column, value in where.items():
            query = query.where(getattr(Event, column) == value)
        return {str(i) for i in await s.scalars(query)}


async def test_feed_lists_every_event_once_in_commit_order(committed_client, database):
    c = committed_client
    acct = await signup(c)
    contact = (await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana"})).json()
    await c.patch(f"/v1/contacts/{contact['id']}", headers=acct.headers, json={"title": "CEO"})
    await c.delete(f"/v1/contacts/{contact['id']}", headers=acct.headers)
    ids = await event_ids(database, acct.org_id)
    seen, cursor = await read_feed(c, acct.headers, until=has_ids(ids))
    types = [e["type"] for e in seen if e["object_id"] == contact["id"]]
    assert types == ["contact.created", "contact.updated", "contact.deleted"]  # the delete is a tombstone
    tomb = seen[-1]
    assert tomb["actor"] == {"type": "user", "id": acct.user_id} and tomb["version"] == 3
    assert set(tomb) == {"id", "type", "object_type", "object_id", "action", "occurred_at", "actor", "version",
                         "data"}
    assert {e["id"] for e in seen} == ids and len(seen) == len(ids)
    again = (await c.get("/v1/changes", headers=acct.headers, params={"cursor": cursor})).json()
    assert again == {"data": [], "next_cursor": cursor}  # polling at the end returns the same cursor
    only_contacts, _ = await read_feed(c, acct.headers, until=has_objects([contact["id"]]), types="contact")
    assert {e["object_type"] for e in only_contacts} == {"contact"}


async def test_open_transactions_elsewhere_do_not_hold_back_an_orgs_feed(committed_client, database):
    """Neither another org's open transaction that wrote events nor one that wrote none (but holds a
    transaction id) keeps org A's committed events out of A's feed."""
    c = committed_client
    a, b = await signup(c), await signup(c)
    cursor = await head(c, a.headers)
    in_b = database.sessions()
    no_events = database.sessions()
    try:
        await in_b.begin()
        await contacts.create(in_b, Principal.for_user(uuid.UUID(b.org_id), uuid.UUID(b.user_id), "owner"),
                              {"first_name": "Open in B"})
        await in_b.flush()
        await no_events.begin()
        await no_events.execute(text("SELECT pg_current_xact_id()"))
        made = (await c.post("/v1/contacts", headers=a.headers, json={"first_name": "Committed in A"})).json()
        page = (await c.get("/v1/changes", headers=a.headers, params={"cursor": cursor})).json()
        assert [e["object_id"] for e in page["data"]] == [made["id"]]  # at once: no wait, no second look
    finally:
        await in_b.rollback()
        await no_events.rollback()
        await in_b.close()
        await no_events.close()


async def test_a_transaction_committing_late_is_read_after_those_committed_before_it(committed_client, database):
    """Never skip, never repeat: a transaction that started writing first but commits last comes on a later
    page, after the later transactions the reader has already read, exactly once."""
    c = committed_client
    acct = await signup(c)
    cursor = await head(c, acct.headers)
    me = Principal.for_user(uuid.UUID(acct.org_id), uuid.UUID(acct.user_id), "owner")
    slow = database.sessions()
    try:
        await slow.begin()
        late = await contacts.create(slow, me, {"first_name": "Late"})  # its transaction id is older
        early = [(await c.post("/v1/contacts", headers=acct.headers, json={"first_name": f"E{i}"})).json()["id"]
                 for i in range(5)]
        first, cursor = await read_feed(c, acct.headers, cursor, until=has_objects(early))  # not held back
        await slow.commit()
    finally:
        await slow.close()
    then, _ = await read_feed(c, acct.headers, cursor, until=has_objects([late.id]))
    seen = first + then
    assert [e["object_id"] for e in seen if e["type"] == "contact.created"] == [*early, str(late.id)]
    assert len({e["id"] for e in seen}) == len(seen)


async def test_concurrent_writers_and_a_paging_reader_see_each_event_exactly_once(committed_client, database):
    c = committed_client
    acct = await signup(c)
    cursor = await head(c, acct.headers)
    me = Principal.for_user(uuid.UUID(acct.org_id), uuid.UUID(acct.user_id), "owner")
    made: list[str] = []

    async def writer(n: int) -> None:
        for i in range(15):
            async with database.sessions.begin() as s:
                made.append(str((await contacts.create(s, me, {"first_name": f"W{n}-{i}"})).id))
                await asyncio.sleep(random.random() * 0.02)  # overlapping transactions, out-of-order commits

    reader = asyncio.create_task(read_feed(c, acct.headers, cursor, until=lambda seen: len(seen) >= 90, deadline=60,
                                           limit=9))
    await asyncio.gather(*(writer(n) for n in range(6)))
    seen, _ = await reader
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == 90
    assert set(ids) == await event_ids(database, acct.org_id, type="contact.created")
    assert {e["object_id"] for e in seen} == set(made)


async def test_long_poll_returns_when_something_arrives_and_keeps_the_requests_work(committed_client):
    """While it waits, the long poll does not undo its own request's work: here, the API key's first use."""
    c = committed_client
    acct = await signup(c)
    key = await acct.api_key(["changes:read", "contacts:read"])
    cursor = await head(c, acct.headers)

    async def key_used() -> bool:
        keys = (await c.get("/v1/api-keys", headers=acct.headers)).json()["data"]
        return keys[0]["last_used_at"] is not None

    poll = asyncio.create_task(c.get("/v1/changes", headers=key, params={"cursor": cursor, "wait": 30}))
    give_up = time.monotonic() + 15
    while not await key_used():
        assert not poll.done(), poll.result().text
        assert time.monotonic() < give_up, "the waiting request's own work (the key's use) was not kept"
        await asyncio.sleep(0.05)
    assert not poll.done()  # still waiting: nothing has been written yet
    made = (await c.post("/v1/contacts", headers=acct.headers, json={"first_name": "Waited"})).json()
    r = await asyncio.wait_for(poll, 15)
    assert r.status_code == 200
    assert [(e["type"], e["object_id"]) for e in r.json()["data"]] == [("contact.created", made["id"])]
    assert await key_used()


async def test_events_of_every_writer_reach_the_feed(committed_client, settings, database):
    """Requests, batch items in savepoints (one rolled back), an import run by the worker, the worker's
    dispatch: every committed event gets its commit position and is read."""
    from tests.test_imports import run_import

    c = committed_client
    acct = await signup(c)
    r = await c.post("/v1/contacts/batch", headers=acct.headers, json={"items": [
        {"first_name": "Kept"}, {"first_name": "Bad", "email": "not an email"}, {"first_name": "Also kept"}]})
    assert [i["status"] for i in r.json()["results"]] == ["created", "failed", "created"]
    data = b"First Name,Email\nImp,imp@example.com\nOrted,orted@example.com\n"
    body = await run_import(c, acct, settings, "people.csv", data,
                            mapping={"First Name": "first_name", "Email": "email"})
    assert body["created"] == 2
    ids = await event_ids(database, acct.org_id)
    seen, _ = await read_feed(c, acct.headers, until=has_ids(ids))
    assert {e["id"] for e in seen} == ids and len(seen) == len(ids)
    assert sum(e["type"] == "contact.created" for e in seen) == 4


async def test_a_transaction_writing_for_two_orgs_is_read_in_both_feeds(committed_client, database):
    """The cross-org sweeps write events of several orgs in one transaction (stamped in one order)."""
    c = committed_client
    a, b = await signup(c), await signup(c)
    cursors = {acct.org_id: await head(c, acct.headers) for acct in (a, b)}

    async def write(first, second) -> None:
        async with database.sessions.begin() as s:
            for acct in (first, second):
                await events.emit(s, None, "contact.updated", "contact", uuid.uuid4(), uuid.UUID(acct.org_id),
                                  {"object": {}})

    await asyncio.gather(write(a, b), write(b, a), write(a, b), write(b, a))
    for acct in (a, b):
        seen, _ = await read_feed(c, acct.headers, cursors[acct.org_id], until=lambda seen: len(seen) >= 4)
        assert len(seen) == 4 and {e["type"] for e in seen} == {"contact.updated"}


async def test_the_retention_purge_forgets_the_commits_it_emptied(committed_client, database, settings):
    from app.workers.maintenance import purge_old_events

    c = committed_client
    acct = await signup(c)
    org = uuid.UUID(acct.org_id)
    for _ in range(2):
        async with database.sessions.begin() as s:
            await events.emit(s, None, "contact.updated", "contact", uuid.uuid4(), org, {"object": {}})
    async with database.sessions.begin() as s:
        old, kept = (await s.execute(text("SELECT seq, txid FROM event_commits WHERE org_id = :org "
                                          "ORDER BY seq DESC LIMIT 2"), {"org": org})).all()[::-1]
        await s.execute(text("UPDATE events SET occurred_at = now() - interval '40 days', dispatched_at = now() "
                             "WHERE org_id = :org AND txid::text = :txid"), {"org": org, "txid": str(old.txid)})
        await s.execute(text("UPDATE event_commits SET committed_at = now() - interval '40 days' "
                             "WHERE org_id = :org AND seq IN (:old, :kept)"), {"org": org, "old": old.seq,
                                                                               "kept": kept.seq})
    await purge_old_events({"db": database, "settings": settings})
    async with database.sessions() as s:
        left = set(await s.scalars(text("SELECT seq FROM event_commits WHERE org_id = :org"), {"org": org}))
    assert kept.seq in left and old.seq not in left  # an old commit whose events are still kept stays


async def test_old_cursor_is_410_bad_cursor_422_and_orgs_are_isolated(committed_client, database):
    c = committed_client
    a, b = await signup(c), await signup(c)
    await c.post("/v1/contacts", headers=a.headers, json={"first_name": "A only"})
    b_seen, _ = await read_feed(c, b.headers, until=has_ids(await event_ids(database, b.org_id)))
    assert all(e["object_type"] != "contact" for e in b_seen)
    ms = int((datetime.now(UTC) - timedelta(days=40)).timestamp() * 1000)
    old_id = uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0x2 << 62) | 1)
    r = await c.get("/v1/changes", headers=a.headers, params={"cursor": Position(1, old_id).encode()})
    assert r.status_code == 410 and "resync" in r.json()["detail"]
    assert (await c.get("/v1/changes", headers=a.headers, params={"cursor": "garbage"})).status_code == 422
    for seq in (-1, 2**63, 2**64, 10**30):  # beyond a bigint: refused before the database sees it
        bad = base64.urlsafe_b64encode(f'[{seq}, "{uuid.uuid4()}"]'.encode()).decode()
        assert (await c.get("/v1/changes", headers=a.headers, params={"cursor": bad})).status_code == 422
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
    async with database.sessions() as s:
        events = {e.id: e for e in await s.scalars(select(Event).where(Event.org_id == uuid.UUID(acct.org_id)))}
    seen, _ = await read_feed(c, acct.headers, until=has_ids(events))
    assert seen and all(entry == envelope(events[uuid.UUID(entry["id"])]) for entry in seen)


async def test_a_cursor_issued_before_the_upgrade_reads_on_without_gap_or_repeat(pg, settings):
    """Cursors of the earlier feed ([txid, event id]) stay valid across the migration to commit positions."""
    url = pg.create_database("feed_cursor_upgrade")
    migrate.upgrade(url, "0011-1")
    engine = create_async_engine(url)
    org = new_id()
    insert_event = text("INSERT INTO events (org_id, id, type, object_type, object_id, action, actor, data) "
                        "VALUES (:org, :id, 'contact.created', 'contact', :id, 'created', '{}', '{}')")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO orgs (id, name, version) VALUES (:org, 'Before', 1)"), {"org": org})
        for _ in range(3):  # three transactions of two events each
            async with engine.begin() as conn:
                for _ in range(2):
                    await conn.execute(insert_event, {"org": org, "id": new_id()})
        async with engine.connect() as conn:
            before = (await conn.execute(text("SELECT txid::text AS txid, id FROM events WHERE org_id = :org "
                                              "ORDER BY txid, id"), {"org": org})).all()
    finally:
        await engine.dispose()
    old_cursor = base64.urlsafe_b64encode(orjson.dumps([int(before[1].txid), str(before[1].id)])).decode()

    migrate.upgrade(url)
    db = Database.from_settings(settings.model_copy(update={"database_url": url}))
    try:
        async with db.sessions.begin() as s:
            await events.emit(s, None, "contact.updated", "contact", before[0].id, org, {"object": {}})
        async with db.sessions() as s:
            data, count, _ = await feed.page(s, org, feed.start(old_cursor, 30), None, 100)
            newest = await s.scalar(select(Event.id).where(Event.org_id == org, Event.type == "contact.updated"))
    finally:
        await db.dispose()
    assert [e["id"] for e in orjson.loads(f"[{data}]")] == [*(str(r.id) for r in before[2:]), str(newest)]
