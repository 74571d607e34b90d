"""Housekeeping jobs: retention over every org, as the sweep role (`Database.across_orgs`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete

from app.domain.auth.models import RefreshToken
from app.logging import log


async def purge_expired_refresh_tokens(ctx: dict[str, Any]) -> int:
    """Delete refresh tokens that expired more than a day ago (reuse detection no longer needs them)."""
    async with ctx["db"].across_orgs() as session:
        result = await session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < datetime.now(UTC) - timedelta(days=1))
        )
    log.info("purged_refresh_tokens", count=result.rowcount)
    return result.rowcount


async def purge_old_events(ctx: dict[str, Any]) -> int:
    """Events older than CRM_EVENTS_RETENTION_DAYS leave the changes feed (cursors before them get 410)."""
    from app.domain.events.models import Event
    from app.domain.events.service import forget_purged_commits

    cutoff = datetime.now(UTC) - timedelta(days=ctx["settings"].events_retention_days)
    async with ctx["db"].across_orgs() as session:
        result = await session.execute(
            delete(Event).where(Event.occurred_at < cutoff, Event.dispatched_at.is_not(None)))
        await forget_purged_commits(session, cutoff)
    log.info("purged_events", count=result.rowcount)
    return result.rowcount


async def purge_stale_timer_failures(ctx: dict[str, Any]) -> int:
    """A failing timer is retried at least every few hours; a failure whose retry time passed a day ago belongs
    to an item that no longer waits (done, deleted, or fired since)."""
    from app.domain.reminders.models import TimerFailure

    async with ctx["db"].across_orgs() as session:
        result = await session.execute(
            delete(TimerFailure).where(TimerFailure.next_attempt_at < datetime.now(UTC) - timedelta(days=1)))
    log.info("purged_timer_failures", count=result.rowcount)
    return result.rowcount


async def purge_old_audit_entries(ctx: dict[str, Any]) -> int:
    """Audit rows older than CRM_AUDIT_RETENTION_DAYS are deleted."""
    from app.domain.audit.service import purge_older_than

    cutoff = datetime.now(UTC) - timedelta(days=ctx["settings"].audit_retention_days)
    async with ctx["db"].across_orgs() as session:
        count = await purge_older_than(session, cutoff)
    log.info("purged_audit_entries", count=count)
    return count


async def purge_old_spam_submissions(ctx: dict[str, Any]) -> int:
    """Dropped form submissions (status `spam`) older than CRM_FORM_SPAM_RETENTION_DAYS are deleted."""
    from app.domain.forms.models import FormSubmission

    cutoff = datetime.now(UTC) - timedelta(days=ctx["settings"].form_spam_retention_days)
    async with ctx["db"].across_orgs() as session:
        result = await session.execute(
            delete(FormSubmission).where(FormSubmission.status == "spam", FormSubmission.received_at < cutoff))
    log.info("purged_spam_submissions", count=result.rowcount)
    return result.rowcount


async def purge_deleted_files(ctx: dict[str, Any]) -> int:
    """Files deleted longer ago than the restore window: their rows go, then (committed) their bytes."""
    from app.domain.files.service import purge_deleted
    from app.domain.files.storage import storage_for
    from app.domain.records import RESTORE_WINDOW

    async with ctx["db"].across_orgs() as session:
        keys = await purge_deleted(session, datetime.now(UTC) - RESTORE_WINDOW)
    storage = storage_for(ctx["settings"])
    for key in keys:
        await storage.delete(key)
    log.info("purged_deleted_files", count=len(keys))
    return len(keys)
