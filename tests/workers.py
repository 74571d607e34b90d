"""A real arq worker in the test process, with timings short enough for tests."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

from arq.worker import Worker

from app.workers.settings import worker_settings

FAST = {"outbox_sweep_seconds": 0.3, "outbox_sweep_grace_seconds": 0.5, "webhook_retry_schedule": [0.2, 0.2, 0.2],
        "webhook_retry_jitter": 0.0, "reminder_sweep_seconds": 0.3, "birthday_sweep_seconds": 60,
        "webhook_timeout_seconds": 3, "worker_job_timeout_seconds": 10, "allow_private_networks": True}


async def eventually(check, within: float = 15.0, interval: float = 0.1):
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
    """Closed only once idle: closing cancels jobs in flight (a follow-up dispatch, say), and arq's close
    then re-raises their cancellation."""
    worker = Worker(**worker_settings(settings), handle_signals=False)
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        for _ in range(3):  # idle three times in a row: follow-up jobs had their chance to start
            await eventually(_idle(worker), within=10, interval=0.05)
            await asyncio.sleep(0.1)
        try:
            await worker.close()
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _idle(worker: Worker):
    async def check():
        return all(t.done() for t in worker.tasks.values())

    return check
