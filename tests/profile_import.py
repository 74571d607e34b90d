"""Where an import's time goes, in-process: the bench's CSV (bench/harness.py `write_csv`) imported through the
worker function under cProfile, against PostgreSQL COPY of the same file. Not part of the suite (no test_ prefix):

    PYTHONPATH=. IMPORT_ROWS=20000 .venv/bin/python -m pytest -q -p no:cacheprovider -s tests/profile_import.py

Prints rows/s, the ratio to COPY and the top of the profile; IMPORT_PROFILE=0 times without the profiler,
IMPORT_PROFILE_OUT=path writes the raw stats (for snakeviz or flameprof)."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench.harness import write_csv
from tests.factories import signup


async def test_profile_an_import(committed_client, database, settings, redis, database_url, tmp_path: Path):
    from app.workers import importer

    rows = int(os.environ.get("IMPORT_ROWS", "20000"))
    c = committed_client
    acct = await signup(c)
    path = tmp_path / "import.csv"
    write_csv(path, rows, uuid.uuid4().hex[:6])
    with path.open("rb") as f:
        r = await c.post("/v1/imports", headers=acct.headers, files={"file": ("import.csv", f, "text/csv")}, data={
            "object": "contacts", "dedupe_by": "email", "on_duplicate": "skip",
            "mapping": '{"First Name": "first_name", "Last Name": "last_name", "E-Mail": "email", "Phone": "phone"}'})
    assert r.status_code == 202, r.text
    org, imp = uuid.UUID(acct.org_id), uuid.UUID(r.json()["id"])

    profiler = cProfile.Profile() if os.environ.get("IMPORT_PROFILE", "1") == "1" else None
    phases = _time_phases() if os.environ.get("IMPORT_PROFILE") == "phases" else None
    if os.environ.get("IMPORT_GC") == "freeze":
        import gc

        gc.collect()
        gc.freeze()
    started, cpu_started = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    from app.db import Database

    worker_db = Database.from_settings(settings, sweeps=True)  # as `crm worker` connects: the app's role
    try:
        outcome = await importer.run(worker_db, redis, settings, org, imp)
    finally:
        await worker_db.dispose()
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert outcome == "succeeded"
    body = (await c.get(f"/v1/imports/{imp}", headers=acct.headers)).json()
    assert (body["processed"], body["created"], body["skipped"], body["failed"]) == (
        rows, rows - rows // 10, rows // 10, 0), body

    url = make_url(database_url)
    conn = await asyncpg.connect(database=url.database, user=url.username, host=url.query["host"])
    try:
        await conn.execute("CREATE TEMP TABLE copy_target (first_name text, last_name text, email text, phone text, "
                           "company text, notes text)")
        copy_started = time.perf_counter()
        await conn.copy_to_table("copy_target", source=str(path), format="csv", header=True)
        copy_seconds = time.perf_counter() - copy_started
        if os.environ.get("IMPORT_EXPLAIN"):
            emails = [r[0] for r in await conn.fetch("SELECT email FROM copy_target LIMIT 500")]
            plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) SELECT id, email FROM contacts WHERE org_id = $1 "
                                    "AND deleted_at IS NULL AND email = ANY($2::text[])", org, emails)
            print("\n".join(r[0] for r in plan))
    finally:
        await conn.close()
    print(f"\nimport: {rows} rows in {seconds:.2f}s = {rows / seconds:.0f} rows/s; COPY {copy_seconds:.3f}s = "
          f"{rows / copy_seconds:.0f} rows/s; ratio {copy_seconds / seconds:.4f}; this process's CPU {cpu:.2f}s "
          f"({cpu / rows * 1e6:.0f} us/row)")
    if phases is not None:
        for name, (n, spent) in sorted(phases.items(), key=lambda kv: -kv[1][1]):
            print(f"  {name:40} {n:6} calls {spent:8.2f}s wall ({spent / seconds:5.1%})")
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(40)
        print(out.getvalue())
        if os.environ.get("IMPORT_PROFILE_OUT"):
            stats.dump_stats(os.environ["IMPORT_PROFILE_OUT"])


def _time_phases() -> dict[str, list[float]]:
    """Wall time (DB waits included) of the import's steps, by wrapping them where they are looked up."""
    import functools
    import inspect

    from app.domain import records
    from app.domain.events import service as events
    from app.domain.imports import service
    from app.workers import importer

    spent: dict[str, list[float]] = {}

    def wrap(module, name: str, label: str) -> None:
        fn = getattr(module, name)
        slot = spent.setdefault(label, [0, 0.0])
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def timed(*args, **kw):
                t = time.perf_counter()
                try:
                    return await fn(*args, **kw)
                finally:
                    slot[0] += 1
                    slot[1] += time.perf_counter() - t
        else:
            @functools.wraps(fn)
            def timed(*args, **kw):
                t = time.perf_counter()
                try:
                    return fn(*args, **kw)
                finally:
                    slot[0] += 1
                    slot[1] += time.perf_counter() - t
        setattr(module, name, timed)

    for name in ("apply_batch", "parse_row", "dedupe_key", "_remember", "_existing", "_rows", "_create",
                 "org_settings"):
        if hasattr(service, name):
            wrap(service, name, f"imports.{name}")
    from app.domain.contacts import service as contacts

    wrap(records, "flush_created", "records.flush_created")
    wrap(contacts, "prepare_values", "records.prepare_values")
    wrap(events, "emit_many", "events.emit_many")
    wrap(importer, "_take", "importer._take (read the file)")
    wrap(importer.queue, "hand_over_events", "queue.hand_over_events")
    return spent
