"""The changes feed's write cost and stall: this tree against a baseline commit, each in a fresh PostgreSQL.

- commits/s and commit latency of N concurrent transactions, for N in --writers: each writes one event row
  (asyncpg, no app code: the database's share) in one org, or each in its own org; and each creates one
  contact through the service layer (the whole write path) in one org. The per-org commit order costs here:
  an org's commits queue for its counter row;
- how long org A's committed event stays out of A's feed while org B holds a transaction open (one that wrote
  events, and one that wrote nothing but took an xid);
- events/s when paging the feed 1,000 at a time over many one-event commits and over one big commit.

Rounds alternate baseline and current tree (the machine is shared). Prints JSON (the ratios are medians of
current / medians of baseline) and writes it to bench/results/feed-commits.json.

    python -m bench.feed_commits [--baseline HEAD~1] [--writers 1,4,16] [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STALL_DEADLINE = 3.0


async def _measure(writers: list[int], seconds: float) -> dict:
    from sqlalchemy import text

    from app import migrate
    from app.db import Database
    from app.demo import create_org_with_key
    from app.domain.auth.principal import Principal
    from app.domain.contacts import service as contacts
    from app.domain.events import feed
    from app.domain.events import service as events
    from app.settings import Settings
    from tests.servers import PostgresCluster

    cluster = PostgresCluster()
    try:
        url = cluster.create_database("bench")
        migrate.upgrade(url)
        settings = Settings(env="test", database_url=url, redis_url="redis://unused", jwt_secret="x" * 40,
                            argon2_time_cost=1, argon2_memory_kib=1024, data_dir=Path(tempfile.mkdtemp()),
                            db_statement_timeout_ms=0, db_pool_size=max(writers) + 4, log_level="WARNING")
        db = Database.from_settings(settings)
        who = {}
        for name in ("A", "B"):
            org_id, owner_id, _ = await create_org_with_key(db, settings, name, f"{name}{time.time()}@example.com",
                                                            name, None)
            who[name] = Principal.for_user(uuid.UUID(str(org_id)), uuid.UUID(str(owner_id)), "owner")
        out: dict = {"raw_one_org": {}, "raw_own_orgs": {}, "app_one_org": {}}
        async with db.sessions() as s:
            out["fsync"] = await s.scalar(text("SHOW fsync"))
            out["synchronous_commit"] = await s.scalar(text("SHOW synchronous_commit"))
        dsn = url.replace("postgresql+asyncpg", "postgresql")
        spread = []
        for i in range(max(writers)):
            org_id, _, _ = await create_org_with_key(db, settings, f"S{i}", f"s{i}.{time.time()}@example.com", "S", None)
            spread.append(uuid.UUID(str(org_id)))
        for n in writers:
            out["raw_one_org"][str(n)] = await _raw_writers(dsn, [who["A"].org_id] * n, seconds)
            out["raw_own_orgs"][str(n)] = await _raw_writers(dsn, spread[:n], seconds)
            out["app_one_org"][str(n)] = await _writers(db, who["A"], n, seconds)

        async def head() -> object:
            after = None
            async with db.sessions() as s:
                while True:
                    _, count, last = await feed.page(s, who["A"].org_id, after, None, 1000)
                    if not count:
                        return after
                    after = last

        async def stall(open_other: str) -> float | None:
            """Seconds until A's committed event is in A's feed while another transaction stays open."""
            cursor = await head()
            other = db.sessions()
            await other.begin()
            if open_other == "events":
                await contacts.create(other, who["B"], {"first_name": "Open"})
                await other.flush()
            else:
                await other.execute(text("SELECT pg_current_xact_id()"))
            try:
                async with db.sessions.begin() as s:
                    await contacts.create(s, who["A"], {"first_name": "Committed"})
                started = time.perf_counter()
                while time.perf_counter() - started < STALL_DEADLINE:
                    async with db.sessions() as s:
                        if (await feed.page(s, who["A"].org_id, cursor, None, 10))[1]:
                            return round(time.perf_counter() - started, 4)
                    await asyncio.sleep(0.01)
                return None  # still not visible: the stall lasts as long as the other transaction
            finally:
                await other.rollback()
                await other.close()

        out["stall_s"] = {"other_org_wrote_events": await stall("events"),
                          "other_tx_wrote_no_events": await stall("xid")}

        async def drain() -> dict:
            read, after = 0, None
            started = time.perf_counter()
            async with db.sessions() as s:
                while True:
                    _, count, last = await feed.page(s, who["A"].org_id, after, None, 1000)
                    if not count:
                        break
                    read, after = read + count, last
            return {"events": read, "per_s": round(read / (time.perf_counter() - started))}

        await _raw_writers(dsn, [who["A"].org_id], 0, commits=20_000)
        out["drain_small_commits"] = await drain()
        async with db.sessions.begin() as s:
            await events.emit_many(s, who["A"], who["A"].org_id, [
                ("contact.updated", "contact", uuid.uuid4(), 1, {"object": {"n": i}}) for i in range(20_000)])
        out["drain_with_one_big_commit"] = await drain()
        await db.dispose()
        return out
    finally:
        cluster.stop()


_ONE_EVENT = """INSERT INTO events (org_id, id, type, object_type, object_id, action, actor, version, data)
VALUES ($1, gen_random_uuid(), 'contact.updated', 'contact', gen_random_uuid(), 'updated',
        '{"type": "user", "id": null}', 2, '{"object": {"first_name": "Ana", "email": "ana@example.com"}}')"""


async def _raw_writers(dsn: str, orgs: list, seconds: float, commits: int | None = None) -> dict:
    """One connection per entry of `orgs`, each committing one-event transactions for its org."""
    import asyncpg

    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def writer(org: uuid.UUID) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while (time.perf_counter() < stop) if commits is None else len(latencies) < commits:
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.execute(_ONE_EVENT, org)
                latencies.append(time.perf_counter() - started)
        finally:
            await conn.close()

    began = time.perf_counter()
    await asyncio.gather(*(writer(org) for org in orgs))
    return _rates(latencies, time.perf_counter() - began)


def _rates(latencies: list[float], elapsed: float) -> dict:
    latencies.sort()
    return {"per_s": round(len(latencies) / elapsed, 1), "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2)}


async def _writers(db, who, n: int, seconds: float) -> dict:  # noqa: ANN001 - the app's types, imported late
    """n transactions at a time, each creating one contact (one event) in one org, for `seconds`."""
    from app.domain.contacts import service as contacts

    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def writer(i: int) -> None:
        k = 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            async with db.sessions.begin() as s:
                await contacts.create(s, who, {"first_name": f"W{i}-{k}"})
            latencies.append(time.perf_counter() - started)
            k += 1

    began = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(n)))
    return _rates(latencies, time.perf_counter() - began)


def _run_tree(tree: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, __file__, "--raw", "--writers", args.writers, "--seconds", str(args.seconds)],
                          cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(new: float | None, old: float | None) -> float | None:
    return None if not new or not old else round(new / old, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="HEAD~1", help="git ref of the tree to compare with")
    parser.add_argument("--writers", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    writers = [int(n) for n in args.writers.split(",")]
    if args.raw:
        print(json.dumps(asyncio.run(_measure(writers, args.seconds))))
        return
    base = Path(tempfile.mkdtemp(prefix="feed-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
    runs: dict[str, list[dict]] = {"baseline": [], "current": []}
    for _ in range(args.rounds):
        runs["baseline"].append(_run_tree(base, args))
        runs["current"].append(_run_tree(ROOT, args))

    def median(side: str, *path: str) -> float | None:
        values = []
        for run in runs[side]:
            for step in path:
                run = run[step]
            values.append(run)
        return statistics.median(values) if values else None

    summary: dict = {"baseline": args.baseline, "rounds": runs, "ratios": {}}
    for case in ("raw_one_org", "raw_own_orgs", "app_one_org"):
        for n in writers:
            summary["ratios"][f"{case}_{n}_writers_commits_per_s"] = _ratio(
                median("current", case, str(n), "per_s"), median("baseline", case, str(n), "per_s"))
    for case in ("drain_small_commits", "drain_with_one_big_commit"):
        summary["ratios"][f"{case}_events_per_s"] = _ratio(median("current", case, "per_s"),
                                                           median("baseline", case, "per_s"))
    summary["stall_s"] = {side: [r["stall_s"] for r in runs[side]] for side in runs}
    text = json.dumps(summary, indent=1)
    (ROOT / "bench" / "results" / "feed-commits.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
