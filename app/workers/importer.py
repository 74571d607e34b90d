"""Import jobs. An import runs in slices shorter than the job timeout, each under a lease on the import row
(a second job stays off it; a dead worker's lease runs out and the next job resumes after the last committed
batch). Each batch commits with its records, the import's progress and its events, and those events go to
the relay right after the commit. File reading and counting run in threads, outside any transaction."""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from uuid import UUID

from arq.connections import ArqRedis
from sqlalchemy import update

from app.db import Database
from app.domain.events.service import committed_event_ids
from app.domain.imports import reader
from app.domain.imports import service as imports
from app.domain.imports.models import Import
from app.settings import Settings
from app.workers import queue

LEASE_MARGIN_SECONDS = 60


async def run(db: Database, redis: ArqRedis | None, settings: Settings, org_id: UUID, import_id: UUID,
              budget_seconds: float = float("inf")) -> str:
    """One slice of at most `budget_seconds` (idempotent: a finished import is left alone). -> `skipped`,
    `cancelled`, `succeeded`, or `continue:<processed>` when another slice should follow."""
    lease = min(budget_seconds, settings.worker_job_timeout_seconds) + LEASE_MARGIN_SECONDS
    async with db.for_org(org_id) as session:
        record = await _take_lease(session, org_id, import_id, lease)
        if record is None:
            return "skipped"
        snap = imports.start(record)
    path = imports.file_path(settings, org_id, import_id)
    sheet = reader.Sheet(snap["file_format"], snap["encoding"], snap["delimiter"])
    try:
        if snap["total"] is None:
            total = await asyncio.to_thread(reader.count_rows, path, sheet)
            async with db.for_org(org_id) as session:
                await imports.set_total(session, org_id, import_id, total)
        outcome = await _slice(db, redis, settings, org_id, snap, path, sheet, time.monotonic() + budget_seconds)
    except Exception as exc:
        async with db.for_org(org_id) as session:
            await imports.fail(session, org_id, import_id, f"{type(exc).__name__}: {exc}")
        raise
    async with db.for_org(org_id) as session:  # the slice is over: the next job may take it at once
        await session.execute(update(Import).where(Import.org_id == org_id, Import.id == import_id)
                              .values(leased_until=None))
    return outcome


async def _take_lease(session: Any, org_id: UUID, import_id: UUID, seconds: float) -> Import | None:
    now = datetime.now(UTC)
    return await session.scalar(
        update(Import).where(Import.org_id == org_id, Import.id == import_id,
                             Import.status.in_(("queued", "running")),
                             (Import.leased_until.is_(None)) | (Import.leased_until < now))
        .values(leased_until=now + timedelta(seconds=seconds)).returning(Import)
        .execution_options(synchronize_session=False))


async def _slice(db: Database, redis: ArqRedis | None, settings: Settings, org_id: UUID, snap: dict[str, Any],
                 path: Path, sheet: reader.Sheet, deadline: float) -> str:
    import_id = UUID(snap["id"])
    rows = reader.rows(path, sheet)
    try:
        header = await asyncio.to_thread(next, rows, [])
        plan = imports.plan(org_id, snap, header)
        counts = plan.counts()
        errors_path = imports.file_path(settings, org_id, import_id, ".errors.csv")
        resuming = counts.processed > 0 and errors_path.exists()  # noqa: ASYNC240 - a stat
        with errors_path.open("a" if resuming else "w", newline="", encoding="utf-8") as errors_file:  # noqa: ASYNC230
            errors = csv.writer(errors_file)
            if not resuming:
                errors.writerow(["row", "column", "reason"])
            await asyncio.to_thread(_skip, rows, counts.processed)  # the rows done by earlier slices
            line = counts.processed + 1
            while batch := await asyncio.to_thread(_take, rows, imports.BATCH):
                async with db.for_org(org_id) as session:
                    failures = await imports.apply_batch(session, plan, batch, line, counts)
                    new_events = committed_event_ids(session)
                if failures is None:
                    return "cancelled"
                await queue.hand_over_events(redis, new_events)
                if failures:
                    await asyncio.to_thread(_write, errors, errors_file, failures)
                line += len(batch)
                if time.monotonic() > deadline:
                    return f"continue:{counts.processed}"
    finally:
        await asyncio.to_thread(rows.close)
    async with db.for_org(org_id) as session:
        await imports.finish(session, org_id, import_id)
        new_events = committed_event_ids(session)
    await queue.hand_over_events(redis, new_events)
    return "succeeded"


def _skip(rows: Iterator[list[str]], n: int) -> None:
    for _ in islice(rows, n):
        pass


def _take(rows: Iterator[list[str]], n: int) -> list[list[str]]:
    return list(islice(rows, n))


def _write(errors: Any, errors_file: Any, failures: list[tuple[int, str, str]]) -> None:
    errors.writerows([row_no, column, reason] for row_no, column, reason in failures)
    errors_file.flush()
