"""Typed ways to enqueue jobs: callers never spell job names or ids by hand.

Job ids dedupe: while a job with the same id is queued or running, enqueueing again does nothing. Jobs
keep no result, so the id is free again once the job has run; the database decides what still needs doing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from uuid import UUID

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.campaigns.service import committed_campaign_ids
from app.domain.documents.service import committed_document_jobs
from app.domain.events.service import committed_event_ids
from app.domain.imports.service import committed_import_ids
from app.domain.mail.service import committed_mail_jobs
from app.domain.sms.service import committed_sms_jobs
from app.domain.telephony.service import committed_originate_jobs
from app.domain.webhooks.service import committed_delivery_ids
from app.logging import log

DISPATCH = "dispatch_event"
DELIVER = "deliver_webhook"
IMPORT = "run_import"
SYNC_MAILBOX = "sync_mailbox"
SEND_EMAIL = "send_email"
SEND_CAMPAIGN = "send_campaign"
SEND_SMS = "send_sms"
ORIGINATE_CALL = "originate_call"
RUN_AUTOMATION = "run_automation"
RENDER_DOCUMENT = "render_document"


DISPATCH_BATCH = 100
DISPATCH_WINDOW = 0.1  # seconds: one org's events handed over within one window share one dispatch job


async def dispatch_events(redis: ArqRedis, ids: Iterable[tuple[UUID, UUID]], sweep: bool = False) -> None:
    """Have these events dispatched. A dispatch takes every waiting event of its org (`dispatch_many`), so one
    job per org and DISPATCH_WINDOW is enough: its id names the org and the window, it runs just after the
    window ends (every hand-over of the window enqueues it, deduped, after its own commit: the job sees every
    one), and under load one job fans out many commits' events with one statement per consumer.

    `sweep`: events the outbox sweeper found waiting: one job per org under an id of its own that dedupes
    while it is queued or running, so a backlog the workers are still working through is never enqueued twice.
    The ids travel with the job (up to DISPATCH_BATCH) and are taken first."""
    by_org: dict[UUID, list[UUID]] = {}
    for org_id, event_id in ids:
        by_org.setdefault(org_id, []).append(event_id)
    if not by_org:
        return
    now = time.time()
    window = int(now / DISPATCH_WINDOW)
    defer = (window + 1.5) * DISPATCH_WINDOW - now
    for org_id, events in by_org.items():
        batch = [str(e) for e in events[:DISPATCH_BATCH]]
        if sweep:
            await redis.enqueue_job(DISPATCH, str(org_id), *batch, _job_id=f"{DISPATCH}:sweep:{org_id}")
        else:
            await redis.enqueue_job(DISPATCH, str(org_id), *batch, _job_id=f"{DISPATCH}:{org_id}:{window}",
                                    _defer_by=defer)


RUN_BATCH = 50


async def run_automations(redis: ArqRedis, runs: Iterable[tuple[UUID, UUID]], sweep: bool = False) -> None:
    """One `run_automation` job per organisation and up to RUN_BATCH runs (a dispatch's runs travel together);
    the job id is the first run's, as for a run enqueued alone. `sweep`: runs the outbox sweeper found queued,
    one job per org under an id that dedupes while it is queued or running (see `dispatch_events`)."""
    by_org: dict[UUID, list[UUID]] = {}
    for org_id, run_id in runs:
        by_org.setdefault(org_id, []).append(run_id)
    for org_id, ids in by_org.items():
        if sweep:
            await redis.enqueue_job(RUN_AUTOMATION, str(org_id), *map(str, ids),
                                    _job_id=f"{RUN_AUTOMATION}:sweep:{org_id}")
            continue
        for start in range(0, len(ids), RUN_BATCH):
            batch = [str(r) for r in ids[start:start + RUN_BATCH]]
            await redis.enqueue_job(RUN_AUTOMATION, str(org_id), *batch, _job_id=f"{RUN_AUTOMATION}:{batch[0]}")


async def hand_over_events(redis: ArqRedis | None, ids: list[tuple[UUID, UUID]], limit_seconds: float = 2.0) -> None:
    """From a job, right after a commit: enqueue these events now; if Redis fails they wait in the database
    for the outbox sweeper."""
    if redis is None or not ids:
        return
    try:
        async with asyncio.timeout(limit_seconds):
            await dispatch_events(redis, ids)
    except Exception as exc:  # noqa: BLE001 - the outbox sweeper is the safety net
        log.warning("enqueue_failed", events=len(ids), error=type(exc).__name__)


async def deliver(redis: ArqRedis, org_id: UUID, delivery_id: UUID, defer_seconds: float | None = None) -> None:
    await redis.enqueue_job(DELIVER, str(org_id), str(delivery_id), _job_id=f"deliver:{delivery_id}",
                            _defer_by=defer_seconds)


async def run_import(redis: ArqRedis, org_id: UUID, import_id: UUID, part: int = 0) -> None:
    await redis.enqueue_job(IMPORT, str(org_id), str(import_id), _job_id=f"import:{import_id}:{part}")


async def mail_job(redis: ArqRedis, name: str, org_id: UUID, record_id: UUID, defer_seconds: float | None = None,
                   turn: str | None = None) -> None:
    """`sync_mailbox`, `send_email`, `send_campaign`, `send_sms`, `originate_call`, `run_automation` or
    `render_document` for one record (the job id dedupes a queued or running one; a `turn` names a later one that a running job enqueues
    for itself)."""
    assert name in (SYNC_MAILBOX, SEND_EMAIL, SEND_CAMPAIGN, SEND_SMS, ORIGINATE_CALL, RUN_AUTOMATION, RENDER_DOCUMENT)
    job_id = f"{name}:{record_id}" + (f":{turn}" if turn else "")
    await redis.enqueue_job(name, str(org_id), str(record_id), _job_id=job_id, _defer_by=defer_seconds)


_pending: set[asyncio.Task[None]] = set()


def hand_over(redis: ArqRedis | None, session: AsyncSession, limit_seconds: float = 2.0) -> None:
    """After a commit: enqueue the transaction's new events and deliveries without making the response
    wait. If Redis is down they stay pending in the database and the sweeper picks them up."""
    events, deliveries = committed_event_ids(session), committed_delivery_ids(session)
    imports, mail = committed_import_ids(session), committed_mail_jobs(session)
    mail += [(SEND_CAMPAIGN, org_id, campaign_id) for org_id, campaign_id in committed_campaign_ids(session)]
    mail += [(SEND_SMS, org_id, sms_id) for org_id, sms_id in committed_sms_jobs(session)]
    mail += [(RENDER_DOCUMENT, org_id, doc_id) for org_id, doc_id in committed_document_jobs(session)]
    mail += [(ORIGINATE_CALL, org_id, row_id) for org_id, row_id in committed_originate_jobs(session)]
    if redis is None or not (events or deliveries or imports or mail):
        return

    async def run() -> None:
        try:
            async with asyncio.timeout(limit_seconds):
                await dispatch_events(redis, events)
                for org_id, delivery_id in deliveries:
                    await deliver(redis, org_id, delivery_id)
                for org_id, import_id in imports:
                    await run_import(redis, org_id, import_id)
                for name, org_id, record_id in mail:
                    await mail_job(redis, name, org_id, record_id)
        except Exception as exc:  # noqa: BLE001 - the outbox sweeper is the safety net
            log.warning("enqueue_failed", events=len(events), deliveries=len(deliveries), error=type(exc).__name__)

    task = asyncio.create_task(run())
    _pending.add(task)
    task.add_done_callback(_pending.discard)
