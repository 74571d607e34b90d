"""arq worker configuration: jobs receive ids, open their own session, call domain services."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from arq import cron, func
from arq.connections import RedisSettings

from app.db import Database, ensure_sweeps_bypass_rls
from app.logging import configure_logging, log
from app.settings import Settings, get_settings
from app.workers import heartbeat, jobs, maintenance

HEALTH_CHECK_KEY = "crm:worker:health"


async def _every(seconds: float, job: Callable[[dict[str, Any]], Awaitable[None]], ctx: dict[str, Any]) -> None:
    """A periodic sweep inside the worker (sub-second periods for tests; arq's cron is per minute/second)."""
    while True:
        try:
            await job(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed sweep is retried at the next tick
            log.warning("sweep_failed", job=job.__name__, error=type(exc).__name__, detail=str(exc)[:200])
        await asyncio.sleep(seconds)


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker` (also used by `crm dev` to run one in-process)."""

    async def startup(ctx: dict[str, Any]) -> None:
        configure_logging(settings.log_level, settings.log_json)
        ctx["settings"] = settings
        ctx["db"] = Database.from_settings(settings, sweeps=True)
        await ensure_sweeps_bypass_rls(ctx["db"])
        ctx["http"] = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        ctx["sweeps"] = [
            asyncio.create_task(_every(settings.worker_heartbeat_seconds, heartbeat.beat, ctx)),
            asyncio.create_task(_every(settings.outbox_sweep_seconds, jobs.sweep_outbox, ctx)),
            asyncio.create_task(_every(settings.reminder_sweep_seconds, jobs.sweep_timers, ctx)),
            asyncio.create_task(_every(settings.birthday_sweep_seconds, jobs.sweep_birthdays, ctx)),
            asyncio.create_task(_every(settings.mail_sweep_seconds, jobs.sweep_mail, ctx)),
            asyncio.create_task(_every(settings.automation_sweep_seconds, jobs.sweep_automations, ctx)),
        ]
        # What is loaded by now lives as long as the worker: out of the collector's sight, a full collection
        # no longer walks it (measured: a third of an import's CPU went to walking it).
        gc.collect()
        gc.freeze()

    async def shutdown(ctx: dict[str, Any]) -> None:
        for task in ctx.get("sweeps", []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):  # the key would expire anyway; Redis may be what went away
            await heartbeat.stop(ctx["redis"])
        if "http" in ctx:
            await ctx["http"].aclose()
        if "db" in ctx:
            await ctx["db"].dispose()

    timeout = settings.worker_job_timeout_seconds
    return {
        "functions": [
            func(jobs.dispatch_event, keep_result=0, timeout=timeout, max_tries=1000),
            func(jobs.deliver_webhook, keep_result=0, timeout=timeout, max_tries=1000),
            # imports run in slices shorter than the job timeout and re-enqueue themselves: arq keeps a crashed
            # job "in progress" for the longest timeout of any function, so no function may have a long one
            func(jobs.run_import, keep_result=0, timeout=timeout, max_tries=1000),
            func(jobs.sync_mailbox, keep_result=0, timeout=timeout, max_tries=1000),
            func(jobs.send_email, keep_result=0, timeout=timeout, max_tries=1000),
            func(jobs.send_campaign, keep_result=0, timeout=timeout, max_tries=1000),
            func(jobs.send_sms, keep_result=0, timeout=timeout, max_tries=1000),
            func(jobs.originate_call, keep_result=0, timeout=timeout, max_tries=1000),
            func(jobs.run_automation, keep_result=0, timeout=timeout, max_tries=1000),
            func(jobs.render_document, keep_result=0, timeout=timeout, max_tries=1000),
            maintenance.purge_expired_refresh_tokens,
            maintenance.purge_old_events,
            maintenance.purge_stale_timer_failures,
            maintenance.purge_old_audit_entries,
            maintenance.purge_old_spam_submissions,
            maintenance.purge_deleted_files,
        ],
        "cron_jobs": [cron(maintenance.purge_expired_refresh_tokens, hour={3}, minute={17}, run_at_startup=False),
                      cron(maintenance.purge_old_events, hour={3}, minute={37}, run_at_startup=False),
                      cron(maintenance.purge_stale_timer_failures, hour={3}, minute={47}, run_at_startup=False),
                      cron(maintenance.purge_old_audit_entries, hour={3}, minute={57}, run_at_startup=False),
                      cron(maintenance.purge_old_spam_submissions, hour={4}, minute={7}, run_at_startup=False),
                      cron(maintenance.purge_deleted_files, hour={4}, minute={17}, run_at_startup=False)],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "health_check_key": HEALTH_CHECK_KEY,
        "health_check_interval": 30,
        "max_jobs": settings.worker_max_jobs,
        "job_timeout": timeout,
        "keep_result": 0,
        "poll_delay": 0.2,
    }


def __getattr__(name: str) -> Any:
    """`arq app.workers.settings.WorkerSettings` works too: the class is built from Settings on first use."""
    if name == "WorkerSettings":
        return type("WorkerSettings", (), worker_settings(get_settings()))
    raise AttributeError(name)
