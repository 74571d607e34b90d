"""Where a write request's time goes, in-process: `python -m bench.write_paths --data-dir DIR [-n 300] [--profile]`.

Runs the app in this process (httpx.ASGITransport, no server, no network) against the harness's database in
DIR (seeded by `python -m bench`), and for each write path (`POST /v1/leads`, `POST /v1/contacts`, a public
form submission; `GET /v1/ping` for comparison) reports: wall ms and CPU ms per request (CPU of this process:
the app and the client; PostgreSQL's own work shows only in wall time), the SQL statements sent per request
(each its own round trip), and with `--profile` the CPU split by package (framework, validation, SQLAlchemy,
asyncpg, the app's own areas) from cProfile's own-time per function, and `bench/profiles/writes-<name>.prof`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import secrets
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.harness import PROFILES, ROOT, Stack

GROUPS = (  # first match wins: (label, path fragment)
    ("asyncpg (driver)", "/asyncpg/"),
    ("sqlalchemy (orm/core)", "/sqlalchemy/"),
    ("pydantic (validation/serialisation)", "/pydantic"),
    ("fastapi (routing, dependencies)", "/fastapi/"),
    ("starlette (framework)", "/starlette/"),
    ("httpx (the client, in-process)", "/httpx/"),
    ("redis", "/redis/"),
    ("app.api (middleware, deps, idempotency)", "/app/api/"),
    ("app.domain.auth", "/app/domain/auth/"),
    ("app.domain.events", "/app/domain/events/"),
    ("app.domain.forms/flows", "/app/domain/f"),
    ("app.domain (other)", "/app/domain/"),
    ("app (other)", "/app/"),
    ("asyncio (event loop)", "/asyncio/"),
    ("orjson/json", "json"),
)


def split(stats: pstats.Stats) -> dict[str, float]:
    """Own time (tottime) per group, in seconds."""
    out: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        label = next((lab for lab, frag in GROUPS if frag in filename or frag in name), None)
        if label is None:
            label = "builtins/C (" + ("~" if filename == "~" else "other") + ")"
            if filename == "~":
                label = "C builtins: " + ("socket/select" if any(s in name for s in ("select", "epoll", "send",
                                                                                      "recv")) else "other")
        out[label] += tottime
    return dict(out)


async def measure(client: httpx.AsyncClient, make: Any, n: int, profile: str | None,
                  db: Any) -> dict[str, Any]:
    from sqlalchemy import event

    for i in range(20):  # warm: caches, prepared statements, the key's last_used_at
        r = await make(client, f"w{i}")
        assert r.status_code < 300, r.text
    seen: list[str] = []
    took: dict[str, list[float]] = defaultdict(list)
    started: list[float] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append(statement)
        started.append(time.perf_counter())

    def done(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        took[statement].append(time.perf_counter() - started.pop())

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "after_cursor_execute", done)
    try:
        await make(client, "counted")
        counted = len(seen)
        for i in range(30):  # the time each statement takes, from sending it to its result (median of 30)
            await make(client, f"timed{i}")
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "after_cursor_execute", done)
    sql_ms = {s.split("\n")[0][:70]: round(sorted(t)[len(t) // 2] * 1000, 3) for s, t in took.items()}
    seen = seen[:counted]
    prof = cProfile.Profile() if profile else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    for i in range(n):
        r = await make(client, str(i))
        assert r.status_code < 300, r.text
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    out: dict[str, Any] = {"requests": n, "wall_ms": round(wall / n * 1000, 3), "cpu_ms": round(cpu / n * 1000, 3),
                           "statements": len(seen), "sql": [s.split("\n")[0][:160] for s in seen], "sql_ms": sql_ms,
                           "sql_ms_total": round(sum(sql_ms.values()), 3)}
    if prof:
        directory = ROOT / "bench" / "profiles"
        directory.mkdir(exist_ok=True)
        prof.dump_stats(directory / f"writes-{profile}.prof")
        stats = pstats.Stats(prof)
        total = sum(split(stats).values())
        out["cpu_split_ms"] = {k: round(v / n * 1000, 3) for k, v in sorted(split(stats).items(), key=lambda kv: -kv[1])
                               if v / n * 1000 >= 0.005}
        out["profiled_cpu_ms"] = round(total / n * 1000, 3)
    return out


async def main_async(data_dir: Path, n: int, profile: bool, only: list[str] | None) -> dict[str, Any]:
    from arq import create_pool
    from arq.connections import RedisSettings

    from app.db import Database
    from app.main import create_app

    stack = Stack(PROFILES["quick"], data_dir)
    stack.start_databases()
    try:
        await stack.prepare()
        settings = stack.settings()
        db = Database.from_settings(settings)
        redis = await create_pool(RedisSettings.from_dsn(stack.redis_url))
        app = create_app(settings, db, redis)
        auth = {"Authorization": stack.auth}
        tag = secrets.token_hex(3)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            r = await client.post("/v1/forms", json={"name": f"Profile form {tag}"}, headers=auth)
            r.raise_for_status()
            form_path = f"/v1/public/forms/{r.json()['public_key']}/submissions"

            async def ping(c: httpx.AsyncClient, i: str) -> httpx.Response:
                return await c.get("/v1/ping", headers=auth)

            async def lead(c: httpx.AsyncClient, i: str) -> httpx.Response:
                return await c.post("/v1/leads", headers={**auth, "Content-Type": "application/json"}, json={
                    "first_name": "Bench", "last_name": f"L{i}", "email": f"prof-{tag}-{i}@example.com",
                    "source": "web_form", "utm": {"source": "bench"}})

            async def contact(c: httpx.AsyncClient, i: str) -> httpx.Response:
                return await c.post("/v1/contacts", headers={**auth, "Content-Type": "application/json",
                                                             "Idempotency-Key": f"prof-{tag}-{i}"}, json={
                    "first_name": "Bench", "last_name": f"C{i}", "email": f"profc-{tag}-{i}@example.com",
                    "phone": f"+4930{abs(hash(i)) % 10_000_000:07d}", "tags": ["bench"]})

            async def form(c: httpx.AsyncClient, i: str) -> httpx.Response:
                return await c.post(form_path, headers={"Content-Type": "application/x-www-form-urlencoded"},
                                    content=f"first_name=Web&last_name=Visitor&email=pform-{tag}-{i}%40example.com"
                                            "&utm_source=bench".encode())

            results = {}
            for name, make in (("ping", ping), ("post_lead", lead), ("post_contact", contact),
                               ("public_form", form)):
                if only and name not in only:
                    continue
                results[name] = await measure(client, make, n, f"{name}" if profile else None, db)
                print(name, json.dumps({k: v for k, v in results[name].items() if k != "sql"}))
        await redis.aclose()
        await db.dispose()
        return results
    finally:
        stack.stop()


async def post_contact(run: Any, floor: dict[str, Any]) -> None:
    """`POST /v1/contacts` under wrk beside the ping floor (the HTTP floor's create-contact scenario is the
    harness's own): req/s and the ratio to the floor, with every 2xx's row and event counted."""
    from bench.harness import scenario

    prefix = f"bench-c-{run.tag}-"
    body = ('{"first_name": "Bench", "last_name": "C{n}", "email": "' + prefix + '{n}@example.com", '
            '"tags": ["bench"], "utm": {"source": "bench"}}')
    api = run.load(["/v1/contacts"], method="POST", body=body, content_type="application/json")
    await asyncio.sleep(1)
    written = (await run.sql("SELECT count(*) FROM contacts WHERE org_id = $1 AND email LIKE $2", run.org_id,
                             prefix + "%"))[0][0]
    ratio = api["rps"] / floor["rps"]
    run.add(scenario("post_contact (vs ping)", "measured beside the ping floor; the target is 0.4 x the HTTP floor",
                     ratio, None, api=api, rows_written_with_warmup=written))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.write_paths", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.data_dir, args.n, args.profile, args.only))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
