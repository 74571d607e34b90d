"""Running the worker for good. An arq Worker exits when Redis goes away; the supervisor starts a new one,
waiting with exponential back-off while Redis does not answer (each attempt logged), until asked to stop.

Jobs in flight when Redis goes are cancelled, as arq does on shutdown. Nothing is lost: every job is
idempotent and the database says what is still to do (an arq job whose in-progress key expires runs again;
a queue that Redis lost is refilled by the outbox sweeper from undispatched events, due deliveries and
unfinished imports). Asked to stop, the worker takes no new job and lets the running ones finish (up to
CRM_WORKER_SHUTDOWN_GRACE_SECONDS)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from arq.worker import Worker
from redis.asyncio import Redis

from app.logging import log
from app.settings import Settings
from app.workers.settings import worker_settings


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()
        self.starts = 0  # arq workers started so far
        self.worker: Worker | None = None

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.settings.worker_reconnect_min_seconds
        attempt = 0
        while not self.stopping.is_set():
            if not await self._redis_answers():
                attempt += 1
                log.warning("worker_redis_unavailable", attempt=attempt, retry_in=round(delay, 2))
            else:
                if attempt:
                    log.info("worker_redis_back", attempts=attempt)
                attempt = 0
                started = loop.time()
                await self._run_one()
                if self.stopping.is_set():
                    break
                if loop.time() - started > self.settings.worker_reconnect_max_seconds:
                    delay = self.settings.worker_reconnect_min_seconds  # it ran well for a while
                log.warning("worker_restarting", retry_in=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(delay * 2, self.settings.worker_reconnect_max_seconds)

    async def _redis_answers(self) -> bool:
        redis = Redis.from_url(self.settings.redis_url or "", socket_connect_timeout=2, socket_timeout=2)
        try:
            return bool(await redis.ping())
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False
        finally:
            with contextlib.suppress(Exception):
                await redis.aclose()

    async def _run_one(self) -> None:
        """One arq worker, until it fails (Redis gone) or we are asked to stop."""
        worker = self.worker = Worker(**worker_settings(self.settings), handle_signals=False)
        self.starts += 1
        running = asyncio.create_task(worker.async_run())
        stopping = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        try:
            if running.done():
                log.warning("worker_lost", error=_failure(running))
                await _discard(worker)
            else:
                await self._drain(worker)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            self.worker = None

    async def _drain(self, worker: Worker) -> None:
        worker.allow_pick_jobs = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.worker_shutdown_grace_seconds):
                while not all(t.done() for t in worker.tasks.values()):  # noqa: ASYNC110 - arq offers no event
                    await asyncio.sleep(0.05)
        try:
            await worker.close()  # cancels what is still running (it runs again later), runs on_shutdown
        except asyncio.CancelledError:  # arq's close re-raises the cancellation of a job it cancelled
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            await _discard(worker)
        except Exception as exc:  # noqa: BLE001 - Redis may be gone at this very moment
            log.warning("worker_close_failed", error=type(exc).__name__)
            await _discard(worker)


def _failure(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return f"{type(exc).__name__}: {exc}"[:200] if exc is not None else "stopped"


async def _discard(worker: Worker) -> None:
    """Tear down a worker whose Redis is gone (arq's own close stops at its first Redis command)."""
    for task in worker.tasks.values():
        task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    ctx: dict[str, Any] = worker.ctx
    if worker.on_shutdown is not None:
        with contextlib.suppress(Exception):
            await worker.on_shutdown(ctx)
    if ctx.get("redis") is not None:
        with contextlib.suppress(Exception):
            await ctx["redis"].aclose(close_connection_pool=True)


async def run_until_signalled(settings: Settings) -> None:
    """`crm worker`: SIGTERM or SIGINT stop it cleanly; a lost Redis does not."""
    supervisor = Supervisor(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.stop)
    await supervisor.run()
