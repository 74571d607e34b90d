"""Import jobs take a lease: a second job on the same import stays off it; slices resume where they stopped."""

from __future__ import annotations

import asyncio
import uuid

from app.domain.imports import service
from app.workers import importer
from tests.factories import signup


async def _queued(c, acct, rows: int) -> dict:
    body = "First Name,E-Mail\n" + "".join(f"P{i},p{i}-{uuid.uuid4().hex[:8]}@example.com\n" for i in range(rows))
    r = await c.post("/v1/imports", headers=acct.headers, files={"file": ("p.csv", body.encode())},
                     data={"object": "contacts"})
    assert r.status_code == 202, r.text
    return r.json()


async def test_two_jobs_on_one_import_process_it_once(committed_client, database, settings, redis):
    c = committed_client
    acct = await signup(c)
    imp = await _queued(c, acct, 1200)
    org, imp_id = uuid.UUID(acct.org_id), uuid.UUID(imp["id"])
    outcomes = await asyncio.gather(importer.run(database, redis, settings, org, imp_id),
                                    importer.run(database, redis, settings, org, imp_id))
    assert sorted(outcomes) == ["skipped", "succeeded"]
    done = (await c.get(f"/v1/imports/{imp['id']}", headers=acct.headers)).json()
    assert (done["status"], done["processed"], done["created"]) == ("succeeded", 1200, 1200)


async def test_slices_resume_after_the_last_committed_batch(committed_client, database, settings, redis):
    c = committed_client
    acct = await signup(c)
    imp = await _queued(c, acct, 1200)
    org, imp_id = uuid.UUID(acct.org_id), uuid.UUID(imp["id"])
    outcome = await importer.run(database, redis, settings, org, imp_id, budget_seconds=0)  # one batch, then stop
    assert outcome == f"continue:{service.BATCH}"
    middle = (await c.get(f"/v1/imports/{imp['id']}", headers=acct.headers)).json()
    assert (middle["status"], middle["processed"]) == ("running", service.BATCH)
    while outcome.startswith("continue"):
        outcome = await importer.run(database, redis, settings, org, imp_id, budget_seconds=0)
    done = (await c.get(f"/v1/imports/{imp['id']}", headers=acct.headers)).json()
    assert (done["status"], done["processed"], done["created"], done["failed"]) == ("succeeded", 1200, 1200, 0)
    listed = 0
    cursor = None
    while True:
        page = (await c.get("/v1/contacts", headers=acct.headers,
                            params={"import_id": imp["id"], "limit": 200, **({"cursor": cursor} if cursor else {})})).json()
        listed += len(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert listed == 1200  # no row twice, none lost across slices


async def test_every_batch_hands_its_events_over_as_it_commits(committed_client, database, settings, redis):
    """No outbox sweeper runs here: every event the import writes (a contact.created per row, import.finished)
    reaches the queue from the import job itself, batch by batch, in slices too."""
    from sqlalchemy import func, select

    from app.domain.events.models import Event
    from app.workers import jobs as worker_jobs
    from app.workers import queue

    c = committed_client
    acct = await signup(c)
    imp = await _queued(c, acct, 1200)  # three batches
    org, imp_id = uuid.UUID(acct.org_id), uuid.UUID(imp["id"])
    outcome = await importer.run(database, redis, settings, org, imp_id, budget_seconds=0)
    while outcome.startswith("continue"):
        outcome = await importer.run(database, redis, settings, org, imp_id, budget_seconds=0)
    assert outcome == "succeeded"
    async with database.sessions() as s:
        written = {e.id: e.type for e in await s.scalars(select(Event).where(
            Event.org_id == org, Event.type.in_(("contact.created", "import.finished"))))}
    assert sorted(written.values()).count("contact.created") == 1200 and "import.finished" in written.values()
    # A dispatch takes every waiting event of its org: what matters is that a job was queued after each commit
    # and runs after the last one, and that the queued jobs alone dispatch every event.
    jobs = [j for j in await redis.queued_jobs() if j.function == queue.DISPATCH and j.args[0] == acct.org_id]
    assert jobs
    async with database.sessions() as s:
        last_commit = await s.scalar(select(func.max(Event.occurred_at)).where(Event.org_id == org))
    assert max(j.score for j in jobs) >= last_commit.timestamp() * 1000
    ctx = {"db": database, "redis": redis, "settings": settings}
    for job in jobs:
        await worker_jobs.dispatch_event(ctx, *job.args)
    async with database.sessions() as s:
        missing = await s.scalar(select(func.count()).select_from(Event).where(
            Event.org_id == org, Event.id.in_(list(written)), Event.dispatched_at.is_(None)))
    assert not missing, f"{missing} of {len(written)} events wait for the sweeper"
