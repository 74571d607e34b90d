"""Jobs: each receives ids, opens its own transaction, calls domain services. All are idempotent.

Row-level security: a job for one org's rows acts for that org (`Database.for_org`); the sweeps over every
org (outbox, timers, birthdays) run as the sweep role (`Database.across_orgs`, CRM_DATABASE_SWEEP_URL), which
row-level security does not limit."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from app.domain.automations import engine, schedules
from app.domain.automations import service as automations
from app.domain.campaigns import sending as campaigns
from app.domain.campaigns import service as campaign_service
from app.domain.documents import rendering as documents
from app.domain.events import dispatch as dispatcher
from app.domain.events.service import committed_event_ids
from app.domain.flows import mail_intake
from app.domain.forms import sla
from app.domain.imports import service as imports
from app.domain.mail import sync as mail
from app.domain.reminders import isolation
from app.domain.reminders import service as reminders
from app.domain.sms import sending as sms
from app.domain.telephony import originate as telephony
from app.domain.webhooks import service as webhooks
from app.ids import new_id
from app.logging import log
from app.workers import importer, queue


async def dispatch_event(ctx: dict[str, Any], org_id: str, event_id: str, *more_event_ids: str) -> int:
    """Dispatch these events and whatever else of the org is waiting (`dispatch_many`), a transaction per
    DRAIN_LIMIT events until none is left. -> the deliveries made."""
    hinted = [UUID(e) for e in (event_id, *more_event_ids)]
    made = 0
    while True:
        async with ctx["db"].for_org(org_id) as session:
            done = await dispatcher.dispatch_many(session, UUID(org_id), hinted)
            follow_ups = committed_event_ids(session)  # beyond what the dispatch took in itself
            runs = dispatcher.committed_runs(session)
        for d_org, d_id in done.deliveries:
            await queue.deliver(ctx["redis"], d_org, d_id)
        await queue.run_automations(ctx["redis"], runs)
        await queue.dispatch_events(ctx["redis"], follow_ups)
        made += len(done.deliveries)
        if done.events < dispatcher.DRAIN_LIMIT:
            return made
        hinted = []


async def deliver_webhook(ctx: dict[str, Any], org_id: str, delivery_id: str) -> str:
    settings, db = ctx["settings"], ctx["db"]
    org, delivery = UUID(org_id), UUID(delivery_id)
    async with db.for_org(org) as session:
        # the lease outlives one attempt (timeout) with room to record it; a dead worker's lease expires soon
        claimed = await webhooks.claim(session, org, delivery, 2 * settings.webhook_timeout_seconds + 5)
    if claimed is None:
        return "skipped"
    row, endpoint = claimed
    attempt = await webhooks.send(settings, ctx["http"], row, endpoint)
    async with db.for_org(org) as session:
        delay = await webhooks.record(session, settings, org, delivery, attempt)
        follow_ups = committed_event_ids(session)  # webhook.disabled
    await queue.dispatch_events(ctx["redis"], follow_ups)
    if delay is not None:
        await queue.deliver(ctx["redis"], org, delivery, defer_seconds=delay)
    log.info("webhook_attempt", delivery_id=delivery_id, status_code=attempt.get("status_code"),
             error=attempt.get("error"), retry_in=delay)
    return "sent"


async def run_import(ctx: dict[str, Any], org_id: str, import_id: str) -> str:
    """One slice of an import (at most ~80% of the job timeout); the rest goes on in the next job."""
    budget = ctx["settings"].worker_job_timeout_seconds * 0.8
    outcome = await importer.run(ctx["db"], ctx["redis"], ctx["settings"], UUID(org_id), UUID(import_id), budget)
    if outcome.startswith("continue:"):
        await queue.run_import(ctx["redis"], UUID(org_id), UUID(import_id), part=int(outcome.split(":")[1]))
    return outcome


async def sweep_outbox(ctx: dict[str, Any]) -> None:
    """Re-enqueue what a lost hand-over or a dead worker left behind."""
    settings = ctx["settings"]
    async with ctx["db"].across_orgs() as session:
        events = await dispatcher.undispatched(session, settings.outbox_sweep_grace_seconds)
        deliveries = await webhooks.due_deliveries(session, settings.outbox_sweep_grace_seconds)
        pending_imports = await imports.unfinished(session, settings.outbox_sweep_grace_seconds)
        runs = await automations.queued(session, settings.outbox_sweep_grace_seconds,
                                        schedules.clock(settings.clock_offset_seconds))
        renders = await documents.pending(session, settings.outbox_sweep_grace_seconds)
    await queue.dispatch_events(ctx["redis"], events, sweep=True)
    for org_id, delivery_id, _ in deliveries:
        await queue.deliver(ctx["redis"], org_id, delivery_id)
    # runs whose job was lost, or whose worker died (a run commits all or nothing)
    await queue.run_automations(ctx["redis"], runs, sweep=True)
    for org_id, import_id in pending_imports:  # queued or interrupted imports (job ids dedupe running ones)
        await queue.run_import(ctx["redis"], org_id, import_id)
    for org_id, document_id in renders:  # documents whose render job was lost (job ids dedupe running ones)
        await queue.mail_job(ctx["redis"], queue.RENDER_DOCUMENT, org_id, document_id)


async def sweep_timers(ctx: dict[str, Any], now: datetime | None = None) -> None:
    """Reminders, overdue checks and SLA checks, each kind in its own transaction: a timer that raises rolls
    back alone, is recorded with its error and retried later with back-off; it never holds up the others."""
    now = now or datetime.now(UTC)
    for fire in (reminders.fire_due, reminders.fire_overdue, sla.fire):
        try:
            async with ctx["db"].across_orgs() as session:
                await fire(session, now)
                new, failed = committed_event_ids(session), isolation.failures(session)
        except Exception as exc:  # noqa: BLE001 - the next kind still runs; this one is tried at the next tick
            log.warning("sweep_failed", job=f"{fire.__module__}.{fire.__name__}", error=type(exc).__name__)
            continue
        for failure in failed:
            log.warning("timer_failed", **failure)
        await queue.dispatch_events(ctx["redis"], new)


async def sweep_birthdays(ctx: dict[str, Any]) -> None:
    async with ctx["db"].across_orgs() as session:
        await reminders.fire_birthdays(session, datetime.now(UTC), ctx["settings"].birthday_hour)
        new = committed_event_ids(session)
    await queue.dispatch_events(ctx["redis"], new)


async def sync_mailbox(ctx: dict[str, Any], org_id: str, mailbox_id: str) -> str:
    """One run of a mailbox's sync (leased: a second worker asked for the same mailbox skips)."""
    settings = ctx["settings"]
    outcome, new = await mail.sync_mailbox(ctx["db"], settings, UUID(org_id), UUID(mailbox_id),
                                           settings.worker_job_timeout_seconds + 30, mail_intake.store)
    await queue.dispatch_events(ctx["redis"], new)
    if outcome == "more":  # a backlog: the next slice at once
        await queue.mail_job(ctx["redis"], queue.SYNC_MAILBOX, UUID(org_id), UUID(mailbox_id), defer_seconds=0.1)
    log.info("mail_sync", mailbox_id=mailbox_id, outcome=outcome, emails=len(new))
    return outcome


async def send_email(ctx: dict[str, Any], org_id: str, email_id: str) -> str:
    settings = ctx["settings"]
    return await _sent(ctx, queue.SEND_EMAIL, org_id, email_id, mail.send_email(
        ctx["db"], settings, UUID(org_id), UUID(email_id), 2 * settings.mail_timeout_seconds + 30))


async def send_sms(ctx: dict[str, Any], org_id: str, sms_id: str) -> str:
    settings = ctx["settings"]
    return await _sent(ctx, queue.SEND_SMS, org_id, sms_id, sms.send(
        ctx["db"], settings, ctx["http"], UUID(org_id), UUID(sms_id), 2 * settings.mail_timeout_seconds + 30))


async def originate_call(ctx: dict[str, Any], org_id: str, origination_id: str) -> str:
    settings = ctx["settings"]
    return await _sent(ctx, queue.ORIGINATE_CALL, org_id, origination_id, telephony.send(
        ctx["db"], settings, ctx["http"], UUID(org_id), UUID(origination_id), 2 * settings.mail_timeout_seconds + 30))


async def _sent(ctx: dict[str, Any], job: str, org_id: str, record_id: str,
                attempt: Awaitable[tuple[str, list[tuple[UUID, UUID]]]]) -> str:
    """One attempt of an outgoing message (`app.domain.outgoing`): its events dispatched, a retry enqueued."""
    outcome, new = await attempt
    await queue.dispatch_events(ctx["redis"], new)
    if outcome.startswith("retry in "):
        await queue.mail_job(ctx["redis"], job, UUID(org_id), UUID(record_id),
                             defer_seconds=float(outcome.removeprefix("retry in ")))
    return outcome


async def render_document(ctx: dict[str, Any], org_id: str, document_id: str) -> str:
    """A requested document rendered to PDF (`ready`) or not (`failed`); a document no longer pending is skipped."""
    outcome, new = await documents.render_document(ctx["db"], ctx["settings"], UUID(org_id), UUID(document_id))
    await queue.dispatch_events(ctx["redis"], new)
    return outcome


async def run_automation(ctx: dict[str, Any], org_id: str, run_id: str, *more_run_ids: str) -> str:
    """Automation runs: claimed together in one statement, then each (or its part up to a delay) run in one
    transaction with what its actions write, one after another for up to half the job timeout; the rest is
    given back and goes on in the next job. The events they wrote are handed over together."""
    settings, db, org = ctx["settings"], ctx["db"], UUID(org_id)
    budget = time.monotonic() + settings.worker_job_timeout_seconds / 2
    now = schedules.clock(settings.clock_offset_seconds)
    ids = await automations.claim(db, org, [UUID(r) for r in (run_id, *more_run_ids)],
                                  settings.worker_job_timeout_seconds + 30, now)
    written: list[tuple[UUID, UUID]] = []
    outcomes: list[str] = []
    try:
        for i, one in enumerate(ids):
            if i and time.monotonic() > budget:
                await automations.release(db, org, ids[i:])
                await queue.run_automations(ctx["redis"], [(org, r) for r in ids[i:]])
                break
            outcome, new = await automations.run(db, org, one, settings.automation_max_depth, now,
                                                 engine.Outbound(settings, ctx["http"]))
            written += new
            outcomes.append(outcome)
            wait = float(outcome.removeprefix("delayed ")) if outcome.startswith("delayed ") else None
            if wait is not None and wait <= 3600:  # its next turn soon (the outbox sweep finds any run once due)
                await queue.mail_job(ctx["redis"], queue.RUN_AUTOMATION, org, one, defer_seconds=wait,
                                     turn=str(new_id()))
    finally:
        await queue.dispatch_events(ctx["redis"], written)
    return ", ".join(outcomes) or "busy"


async def sweep_automations(ctx: dict[str, Any]) -> None:
    """Scheduled rules whose moment came: their runs written (once per object and occurrence) and enqueued."""
    settings = ctx["settings"]
    async with ctx["db"].across_orgs() as session:
        created = await schedules.sweep(session, schedules.clock(settings.clock_offset_seconds),
                                        settings.automation_catch_up_days)
    await queue.run_automations(ctx["redis"], created)


async def send_campaign(ctx: dict[str, Any], org_id: str, campaign_id: str) -> str:
    """Chunks of a campaign for up to 80% of the job timeout; then the next job goes on."""
    settings = ctx["settings"]
    outcome, new = await campaigns.run(ctx["db"], settings, ctx["http"], UUID(org_id), UUID(campaign_id),
                                       settings.worker_job_timeout_seconds * 0.8)
    await queue.dispatch_events(ctx["redis"], new)
    if outcome in ("more", "retry", "waiting"):
        delay = {"more": 0.1, "retry": settings.mail_retry_schedule[0], "waiting": 5.0}[outcome]
        await queue.mail_job(ctx["redis"], queue.SEND_CAMPAIGN, UUID(org_id), UUID(campaign_id), defer_seconds=delay)
    log.info("campaign_run", campaign_id=campaign_id, outcome=outcome)
    return outcome


async def sweep_mail(ctx: dict[str, Any]) -> None:
    """Mailboxes due for a sync, emails, texts and click-to-call requests due to be sent (new, retried, or left
    by a dead worker), scheduled campaigns whose time came, and sending ones (their job may have died with a
    worker)."""
    async with ctx["db"].across_orgs() as session:
        boxes, emails = await mail.due_mailboxes(session), await mail.due_emails(session)
        texts = await sms.due(session)
        originations = await telephony.due(session)
        scheduled, sending = await campaigns.due(session)
    for campaign in scheduled:
        async with ctx["db"].for_org(campaign.org_id) as session:
            fresh = await session.get(type(campaign), (campaign.org_id, campaign.id), with_for_update=True)
            if fresh is not None and fresh.status == "scheduled":
                before = campaign_service.CAMPAIGN.dump(fresh)
                await campaign_service.start(session, fresh)
                await campaign_service.CAMPAIGN.updated(session, None, fresh, before)
            new = committed_event_ids(session)
            started = campaign_service.committed_campaign_ids(session)
        await queue.dispatch_events(ctx["redis"], new)
        sending += started
    for org_id, campaign_id in sending:
        await queue.mail_job(ctx["redis"], queue.SEND_CAMPAIGN, org_id, campaign_id)
    for org_id, mailbox_id in boxes:
        await queue.mail_job(ctx["redis"], queue.SYNC_MAILBOX, org_id, mailbox_id)
    for org_id, email_id in emails:
        await queue.mail_job(ctx["redis"], queue.SEND_EMAIL, org_id, email_id)
    for org_id, sms_id in texts:
        await queue.mail_job(ctx["redis"], queue.SEND_SMS, org_id, sms_id)
    for org_id, origination_id in originations:
        await queue.mail_job(ctx["redis"], queue.ORIGINATE_CALL, org_id, origination_id)
