"""Import memory: peak RSS of the import job for a small and a 4x larger CSV, each in a fresh process.
Flat memory means the larger file costs (nearly) nothing more. Prints JSON.

    python -m bench.import_memory [--rows 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


async def _one(rows: int) -> dict:
    from sqlalchemy import update

    from app import migrate
    from app.db import Database
    from app.demo import create_org_with_key
    from app.domain.auth.principal import Principal
    from app.domain.imports import service
    from app.domain.imports.models import Import
    from app.settings import Settings
    from tests.servers import PostgresCluster

    cluster = PostgresCluster()
    url = cluster.create_database("bench")
    migrate.upgrade(url)
    data_dir = Path(tempfile.mkdtemp())
    settings = Settings(env="test", database_url=url, redis_url="redis://unused", jwt_secret="x" * 40,
                        argon2_time_cost=1, argon2_memory_kib=1024, data_dir=data_dir, db_statement_timeout_ms=0,
                        log_level="WARNING")
    db = Database.from_settings(settings)
    org_id, owner_id, _ = await create_org_with_key(db, settings, "Bench", f"b{time.time()}@example.com", "B", None)
    csv_path = data_dir / "in.csv"
    with csv_path.open("w") as f:
        f.write("First Name;Last Name;E-Mail;Phone;Notes\n")
        for i in range(rows):
            dup = i % 10 == 9  # every tenth row repeats an earlier email
            f.write(f"Name{i};Last{i};person{i - 1 if dup else i}@example.com;+4930{1000000 + i};"
                    f"\"some text; with a delimiter\"\n")
    who = Principal.for_user(org_id if not isinstance(org_id, str) else __import__("uuid").UUID(org_id),
                             __import__("uuid").UUID(owner_id), "owner")
    async with db.sessions.begin() as session:
        with csv_path.open("rb") as upload:
            record = await service.create(session, settings, who, upload, "in.csv", "contacts", None, "email", None,
                                          "skip", False)
        import_id = record.id
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    outcome, _ = await service.run(db, settings, who.org_id, import_id)
    seconds = time.perf_counter() - started
    async with db.sessions() as session:
        done = await session.get(Import, (who.org_id, import_id))
        counts = {k: getattr(done, k) for k in ("total", "processed", "created", "skipped", "failed")}
        await session.execute(update(Import).where(Import.id == import_id).values(status="succeeded"))
    await db.dispose()
    cluster.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rows": rows, "outcome": outcome, "seconds": round(seconds, 1), "rows_per_second": round(rows / seconds),
            "rss_before_kib": before, "rss_peak_kib": peak, "counts": counts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_one(args.child))))
        return
    results = []
    for rows in (args.rows, args.rows * 4):
        out = subprocess.run([sys.executable, "-m", "bench.import_memory", "--child", str(rows)], capture_output=True,
                             text=True, env={**os.environ, "CRM_LOG_LEVEL": "WARNING"})
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    small, large = results
    growth = (large["rss_peak_kib"] - small["rss_peak_kib"]) / 1024
    print(json.dumps({"scenario": "import memory", "runs": results, "rss_growth_mib_for_4x_rows": round(growth, 1),
                      "target": "peak RSS flat (growth well under the file's size)",
                      "met": growth < 20}, indent=2))


if __name__ == "__main__":
    main()
