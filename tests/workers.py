"""A real arq worker in the test process (the same supervisor `crm worker` runs), with short timings."""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import asynccontextmanager

from arq.utils import timestamp_ms

from app.workers.runner import Supervisor

# Short periods, but a job timeout that a busy machine cannot reach: a job cancelled at its timeout runs again
# from the start, and on a starved machine it would time out again and again.
FAST = {"outbox_sweep_seconds": 0.3, "outbox_sweep_grace_seconds": 0.5, "webhook_retry_schedule": [0.2, 0.2, 0.2],
        "webhook_retry_jitter": 0.0, "reminder_sweep_seconds": 0.3, "birthday_sweep_seconds": 60,
        "webhook_timeout_seconds": 3, "worker_job_timeout_seconds": 120, "allow_private_networks": True,
        "worker_heartbeat_seconds": 0.5, "worker_reconnect_min_seconds": 0.2, "worker_reconnect_max_seconds": 1,
        "worker_shutdown_grace_seconds": 60, "mail_sweep_seconds": 0.3, "mail_timeout_seconds": 10,
        "automation_sweep_seconds": 0.3}


async def eventually(check, within: float = 60.0, interval: float = 0.1):
    """Poll `check` until it returns something true; the deadline only bounds a failure (busy machines)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


@asynccontextmanager
async def running_worker(settings):
    """Stopped once the queue is quiet (no job due or running, follow-up jobs included), then drained: a busy
    machine makes teardown slower, never a failure."""
    supervisor = Supervisor(settings)
    task = asyncio.create_task(supervisor.run())
    try:
        yield supervisor
    finally:
        with contextlib.suppress(AssertionError):
            await eventually(_quiet(supervisor, task), within=120, interval=0.05)
        supervisor.stop()
        await task


def _quiet(supervisor: Supervisor, task: asyncio.Task[None]):
    async def check():
        worker = supervisor.worker
        if task.done():
            return True
        if worker is None or "redis" not in worker.ctx:
            return False
        # arq keeps a job in its queue until it has finished: nothing due there means nothing left to run; due
        # within the next second counts too (a dispatch job waits for the end of its 100 ms window)
        due = await worker.ctx["redis"].zcount(worker.queue_name, "-inf", timestamp_ms() + 1000)
        return due == 0 and all(t.done() for t in worker.tasks.values())

    return check
