"""The load harness: `python -m bench [--quick]`.

It starts PostgreSQL and Redis (embedded, under `.bench-data/`), seeds the benchmark dataset once per scale
(`crm seed-bench`, kept for the next run), runs `crm serve` and `crm worker` as separate processes with
production settings (only the rate limits raised), and drives the server with wrk on 127.0.0.1. The API connects
as a role that row-level security limits, as in production (README "Database roles"). In the same run it
measures the baselines every target is a ratio of:

- `floor`: `GET /v1/ping`, through the same server, middleware and API-key auth, reading nothing else;
- `raw_sql`: the very statements an endpoint sends (captured from the app), replayed with asyncpg at the
  same concurrency, each request in its own transaction as the app does;
- `rls_cost`: the same reads from a second server connecting as the tables' owner, which row-level security
  does not limit (what the API cost before the policies);
- `http_floor`: a minimal Starlette + asyncpg app (bench/floor_app.py) under the same server (uvicorn, same worker
  count and settings), connecting as the same role, answering the same statements with JSON that PostgreSQL
  builds: what any Python HTTP server must spend on GET deal, a 50-deal page, a name search and a contact insert
  with its event row.

Percentiles are reported only over enough samples (p95 from 20, p99 from 100); fewer samples give n, min,
median and max.

Prints one JSON document (and a short table on stderr); `--out` writes it to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import asyncpg
import httpx
import orjson

from bench import mail as mail_bench
from bench import report_data

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "wrk" / "scenario.lua"

PROFILES: dict[str, dict[str, Any]] = {
    # the dataset: 1M deals, 300k contacts, 2M activities, 200 small orgs
    "full": {"scale": 1.0, "small_orgs": 200, "duration": 20, "warmup": 3, "connections": 16,
             "drain_events": 1_000_000, "import_rows": 100_000, "report_runs": 5, "memory_import_rows": 1_000_000,
             "imap_messages": 5_000, "campaign_recipients": 10_000},
    # every scenario on a small dataset, to check the harness works (well under 5 minutes)
    "quick": {"scale": 0.01, "small_orgs": 10, "duration": 4, "warmup": 1, "connections": 16,
              "drain_events": 20_000, "import_rows": 5_000, "report_runs": 5, "memory_import_rows": 20_000,
              "imap_messages": 500, "campaign_recipients": 1_000},
}


# --- processes ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn or arq may fork)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (as `rss_kib` finds them)."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Stack:
    """PostgreSQL, Redis, the API server and a worker, all on this machine."""

    profile: dict[str, Any]
    data_dir: Path
    database_url: str = ""  # the API's role, limited by row-level security as in production
    admin_url: str = ""  # owns the tables, migrates, seeds, sweeps (bypasses row-level security)
    redis_url: str = ""
    base_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    seed: dict[str, Any] = field(default_factory=dict)
    server: subprocess.Popen | None = None
    floor: subprocess.Popen | None = None
    floor_url: str = ""
    worker: subprocess.Popen | None = None
    extra: list[subprocess.Popen] = field(default_factory=list)
    _services: Any = None
    _logs: list[Any] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        """The API's role: the asyncpg baselines replay the app's statements as the app sends them."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://")

    @property
    def admin_dsn(self) -> str:
        """For the harness's own reads across orgs."""
        return self.admin_url.replace("postgresql+asyncpg://", "postgresql://")

    def start_databases(self) -> None:
        from app.embedded import EmbeddedServices

        self._services = EmbeddedServices(self.data_dir)
        name = f"bench_{str(self.profile['scale']).replace('.', '_')}"
        self.admin_url = self._services.postgres_url(name)
        self.database_url = self._services.app_role_url(self.admin_url)
        self.redis_url = self._services.redis_url()

    def settings(self, **overrides: Any) -> Any:
        from app.settings import Settings

        values = {"env": "production", "database_url": self.database_url, "database_admin_url": self.admin_url,
                  "redis_url": self.redis_url, "jwt_secret": self.env["CRM_JWT_SECRET"],
                  "data_dir": self.data_dir / "app", "form_rate_limit": 1_000_000_000,
                  "rate_limit_per_credential": 1_000_000_000, "rate_limit_auth_per_ip": 1_000_000_000}
        return Settings(**{**values, **overrides})

    async def prepare(self) -> None:
        """Migrate, and seed once per scale (the seed is remembered next to the data)."""
        from app import migrate
        from app.bench_seed import seed
        from app.db import Database

        # kept with the data: what the API sealed in one run (mailbox passwords) opens in the next
        secret_file = self.data_dir / "jwt-secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
        self.env = {"CRM_JWT_SECRET": secret_file.read_text().strip()}
        await asyncio.to_thread(migrate.upgrade_and_grant, self.settings())
        marker = self.data_dir / f"seed-{self.profile['scale']}.json"
        if marker.exists():
            self.seed = json.loads(marker.read_text())
            return
        settings = self.settings(database_url=self.admin_url, db_statement_timeout_ms=0, argon2_time_cost=1,
                                 argon2_memory_kib=8192)
        db = Database.from_settings(settings)
        try:
            self.seed = await seed(db, settings, self.profile["scale"], self.profile["small_orgs"])
        finally:
            await db.dispose()
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute("VACUUM ANALYZE")  # as autovacuum would after a bulk load: fresh statistics
        finally:
            await conn.close()
        marker.write_text(json.dumps(self.seed))

    def _env(self, port: int, database_url: str) -> dict[str, str]:
        return {**os.environ, **self.env, "CRM_ENV": "production", "CRM_DATABASE_URL": database_url,
                "CRM_DATABASE_ADMIN_URL": self.admin_url, "CRM_DATABASE_SWEEP_URL": self.admin_url,
                "CRM_REDIS_URL": self.redis_url, "CRM_HOST": "127.0.0.1", "CRM_PORT": str(port),
                "CRM_DATA_DIR": str(self.data_dir / "app"), "CRM_FORM_RATE_LIMIT": "1000000000",
                "CRM_RATE_LIMIT_PER_CREDENTIAL": "1000000000", "CRM_RATE_LIMIT_AUTH_PER_IP": "1000000000",
                # the mail scenarios' IMAP and SMTP servers listen on 127.0.0.1
                "CRM_ALLOW_PRIVATE_NETWORKS": "true", "CRM_MAIL_SWEEP_SECONDS": "1"}

    def _spawn(self, name: str, command: str, env: dict[str, str]) -> subprocess.Popen:
        log = (self.data_dir / f"{name}.log").open("w")
        self._logs.append(log)
        return subprocess.Popen([str(Path(sys.executable).parent / "crm"), command], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT)

    def start_app(self) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        env = self._env(port, self.database_url)
        self.server, self.worker = self._spawn("server", "serve", env), self._spawn("worker", "worker", env)
        self._ready(self.base_url, self.server, "server")

    def start_http_floor(self, owner_id: str, actor: str) -> str:
        """The HTTP floor (bench/floor_app.py) as the API's role, under uvicorn as `crm serve` runs: its base URL."""
        port = free_port()
        env = {**self._env(port, self.database_url), "BENCH_FLOOR_DSN": self.dsn, "BENCH_FLOOR_AUTH": self.auth,
               "BENCH_FLOOR_ORG": self.seed["org_id"], "BENCH_FLOOR_OWNER": owner_id, "BENCH_FLOOR_ACTOR": actor}
        log = (self.data_dir / "http-floor.log").open("w")
        self._logs.append(log)
        self.floor = subprocess.Popen([sys.executable, "-m", "bench.floor_app"], env=env, stdout=log,
                                      stderr=subprocess.STDOUT, cwd=ROOT)
        self.floor_url = f"http://127.0.0.1:{port}"
        self._ready(self.floor_url, self.floor, "http-floor")
        return self.floor_url

    def start_server_as(self, database_url: str, name: str) -> str:
        """Another API server on the same data, connecting as another role: its base URL."""
        port = free_port()
        proc = self._spawn(name, "serve", self._env(port, database_url))
        self.extra.append(proc)
        self._ready(f"http://127.0.0.1:{port}", proc, name)
        return f"http://127.0.0.1:{port}"

    def _ready(self, base_url: str, proc: subprocess.Popen, name: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"crm serve exited; see {self.data_dir / f'{name}.log'}")
            time.sleep(0.2)
        raise RuntimeError("crm serve did not become ready in 60 s")

    def stop(self) -> None:
        for proc in (self.server, self.worker, self.floor, *self.extra):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for log in self._logs:
            log.close()
        if self._services is not None:
            self._services.stop()

    @property
    def auth(self) -> str:
        return f"Bearer {self.seed['api_key']}"


# --- measuring ------------------------------------------------------------------------------------------


def wrk(stack: Stack, paths: list[str], duration: float, connections: int, method: str = "GET",
        body: str | None = None, content_type: str | None = None, auth: bool = True,
        base_url: str | None = None, idempotency: str | None = None) -> dict[str, Any]:
    """Run wrk for `duration` seconds (against `base_url`, default the stack's server); -> requests/s, latency
    percentiles (ms), status counts, errors."""
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as f:
        f.write("\n".join(paths) + "\n")
    env = {**os.environ, "BENCH_PATHS": f.name, "BENCH_METHOD": method}
    if auth:
        env["BENCH_AUTH"] = stack.auth
    if body is not None:
        env["BENCH_BODY"] = body
    if content_type is not None:
        env["BENCH_CONTENT_TYPE"] = content_type
    if idempotency is not None:
        env["BENCH_IDEMPOTENCY"] = idempotency
    threads = min(2, connections)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout",
                          "10s", "-s", str(LUA), base_url or stack.base_url], env=env, capture_output=True, text=True,
                         check=True)
    os.unlink(f.name)
    line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    statuses = {int(k): v for k, v in raw["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    lat = raw["latency_us"]
    n = raw["requests"]
    figures = {"requests": n, "seconds": round(seconds, 2), "rps": round(n / seconds, 1),
               "p50_ms": lat["p50"] / 1000, "p95_ms": lat["p95"] / 1000, "p99_ms": lat["p99"] / 1000,
               "max_ms": lat["max"] / 1000, "ok": ok, "errors": n - ok,
               "socket_errors": sum(raw["socket_errors"].values()), "statuses": statuses}
    if n < P95_MIN_SAMPLES:
        figures.pop("p95_ms")
    if n < P99_MIN_SAMPLES:
        figures.pop("p99_ms")
    return figures


# A percentile is only stated over enough samples: below these counts it would be the max (or near it).
P95_MIN_SAMPLES = 20
P99_MIN_SAMPLES = 100


def _percentiles(samples: list[float]) -> dict[str, float]:
    """n, min, median, max (ms) of any sample; p95 from 20 samples on, p99 from 100 (nearest rank)."""
    ordered = sorted(samples)
    n = len(ordered)

    def pick(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] * 1000, 3)

    figures: dict[str, float] = {"n": n, "min_ms": round(ordered[0] * 1000, 3),
                                 "median_ms": round(statistics.median(ordered) * 1000, 3),
                                 "max_ms": round(ordered[-1] * 1000, 3)}
    if n >= P95_MIN_SAMPLES:
        figures["p50_ms"] = pick(0.50)
        figures["p95_ms"] = pick(0.95)
    if n >= P99_MIN_SAMPLES:
        figures["p99_ms"] = pick(0.99)
    return figures


Statement = tuple[str, tuple[Any, ...]]


async def replay(dsn: str, requests: Callable[[int], list[Statement]], duration: float,
                 connections: int) -> dict[str, Any]:
    """Send each request's statements in one transaction, `connections` clients at once, for `duration` s."""
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    latencies: list[float] = []
    counter = 0
    end = time.perf_counter() + duration

    async def client() -> None:
        nonlocal counter
        async with pool.acquire() as conn:
            while time.perf_counter() < end:
                counter += 1
                batch = requests(counter)
                started = time.perf_counter()
                async with conn.transaction():
                    for sql, params in batch:
                        await conn.fetch(sql, *params)
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    seconds = time.perf_counter() - started
    await pool.close()
    return {"requests": len(latencies), "seconds": round(seconds, 2), "rps": round(len(latencies) / seconds, 1),
            **_percentiles(latencies)}


class Capture:
    """The SQL the app sends for one request, recorded from an in-process copy of the app (same code, same
    database) so that the asyncpg baseline replays exactly those statements."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def __aenter__(self) -> Capture:
        from arq import create_pool
        from arq.connections import RedisSettings

        from app.db import Database
        from app.main import create_app

        settings = self.stack.settings()
        self.db = Database.from_settings(settings)
        self.redis = await create_pool(RedisSettings.from_dsn(self.stack.redis_url))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, self.db, self.redis)),
                                        base_url="http://bench")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.redis.aclose()
        await self.db.dispose()

    async def statements(self, method: str, path: str, auth: bool = True,
                         **kw: Any) -> tuple[httpx.Response, list[Statement]]:
        from sqlalchemy import event

        seen: list[Statement] = []
        kw["headers"] = {**({"Authorization": self.stack.auth} if auth else {}), **kw.get("headers", {})}

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            seen.append((statement, tuple(parameters or ())))

        # The first use of the key in a while records last_used_at (at most once a minute): not what every
        # request sends, so a first request goes unrecorded.
        await self.client.request(method, path, **kw)
        engine = self.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            r = await self.client.request(method, path, **kw)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return r, seen


async def as_org(conn: asyncpg.Connection, org_id: UUID) -> None:
    """In a transaction on the API's role: act for `org_id`, as the app does first (row-level security)."""
    from app.db import ORG_SETTING

    await conn.execute("SELECT set_config($1, $2, true)", ORG_SETTING, str(org_id))


def substitute(statements: list[Statement], old: Any, new: Any) -> list[Statement]:
    return [(sql, tuple(new if p == old else p for p in params)) for sql, params in statements]


def scenario(name: str, target: str, ratio: float | None, met: bool | None, **figures: Any) -> dict[str, Any]:
    return {"scenario": name, "target": target, "ratio": None if ratio is None else round(ratio, 3), "met": met,
            **figures}


# --- scenarios ------------------------------------------------------------------------------------------


@dataclass
class Run:
    stack: Stack
    profile: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    round_trips: dict[str, int] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def org_id(self) -> UUID:
        return UUID(self.stack.seed["org_id"])

    def load(self, paths: list[str], **kw: Any) -> dict[str, Any]:
        """Warm up, then measure."""
        wrk(self.stack, paths, self.profile["warmup"], self.profile["connections"], **kw)
        return wrk(self.stack, paths, self.profile["duration"], self.profile["connections"], **kw)

    def load_http_floor(self, paths: list[str], **kw: Any) -> dict[str, Any]:
        """The same load on the HTTP floor (bench/floor_app.py)."""
        return self.load(paths, base_url=self.stack.floor_url, **kw)

    async def raw(self, requests: Callable[[int], list[Statement]]) -> dict[str, Any]:
        await replay(self.stack.dsn, requests, self.profile["warmup"], self.profile["connections"])
        return await replay(self.stack.dsn, requests, self.profile["duration"], self.profile["connections"])

    def add(self, result: dict[str, Any]) -> None:
        self.results.append(result)
        _table_row(result)

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.stack.admin_dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()


async def floor_and_get_deal(run: Run, cap: Capture) -> tuple[dict[str, Any], dict[str, Any]]:
    floor = run.load(["/v1/ping"])
    _, ping_sql = await cap.statements("GET", "/v1/ping")
    run.round_trips["GET /v1/ping"] = len(ping_sql)
    floor_raw = await run.raw(lambda i: ping_sql)
    run.add(scenario("floor", "the ceiling: GET /v1/ping (API-key auth, nothing else read)", None, None,
                     api=floor, raw_sql=floor_raw, statements=len(ping_sql)))

    ids = [str(r["id"]) for r in await run.sql(
        "SELECT id FROM deals WHERE org_id = $1 AND deleted_at IS NULL ORDER BY random() LIMIT 1000", run.org_id)]
    api = run.load([f"/v1/deals/{i}" for i in ids])
    _, deal_sql = await cap.statements("GET", f"/v1/deals/{ids[0]}")
    run.round_trips["GET /v1/deals/{id}"] = len(deal_sql)
    uuids = [UUID(i) for i in ids]
    raw = await run.raw(lambda i: substitute(deal_sql, uuids[0], uuids[i % len(uuids)]))
    http_floor = run.load_http_floor([f"/deals/{i}" for i in ids])
    to_ping = api["rps"] / floor["rps"]
    ratio = api["rps"] / http_floor["rps"]
    get_deal = scenario("get_deal", ">= 0.6 x HTTP floor req/s (and >= 0.5 x ping floor)", ratio,
                        ratio >= 0.6 and to_ping >= 0.5 and api["errors"] == http_floor["errors"] == 0, api=api,
                        raw_sql=raw, http_floor=http_floor, ratio_to_http_floor=round(ratio, 3),
                        ratio_to_floor=round(to_ping, 3), api_vs_raw_sql=round(api["rps"] / raw["rps"], 3),
                        statements=len(deal_sql))
    run.add(get_deal)
    return floor, get_deal


async def list_page(run: Run, cap: Capture, api: dict[str, Any], floor: dict[str, Any]) -> None:
    """The first 50-deal page, newest first (`api` measured by `list_deals`), against the HTTP floor's."""
    r, sql = await cap.statements("GET", "/v1/deals?limit=50")
    assert r.status_code == 200 and len(r.json()["data"]) == 50, r.text[:300]
    run.round_trips["GET /v1/deals?limit=50"] = len(sql)
    raw = await run.raw(lambda i: sql)
    http_floor = run.load_http_floor(["/deals?limit=50"])
    ratio = api["rps"] / http_floor["rps"]
    run.add(scenario("list_deals_page", ">= 0.6 x HTTP floor req/s (50 deals, newest first)", ratio,
                     ratio >= 0.6 and api["errors"] == http_floor["errors"] == 0, api=api, raw_sql=raw,
                     http_floor=http_floor, ratio_to_http_floor=round(ratio, 3),
                     ratio_to_floor=round(api["rps"] / floor["rps"], 3),
                     api_vs_raw_sql=round(api["rps"] / raw["rps"], 3), statements=len(sql),
                     response_bytes=len(r.content)))


async def search_contacts(run: Run, cap: Capture, floor: dict[str, Any]) -> None:
    """`GET /v1/contacts?q=<last name>`: 200 random contacts' last names (word prefixes: a name also finds the
    names it begins, e.g. Last12 finds Last120 to Last129), a page of 50."""
    names = [r["last_name"] for r in await run.sql(
        """SELECT last_name FROM contacts WHERE org_id = $1 AND deleted_at IS NULL AND last_name IS NOT NULL
           ORDER BY random() LIMIT 200""", run.org_id)]
    paths = [f"/v1/contacts?q={quote(n)}&limit=50" for n in names]
    api = run.load(paths)
    r, sql = await cap.statements("GET", paths[0])
    assert r.status_code == 200, r.text[:300]
    run.round_trips["GET /v1/contacts?q="] = len(sql)
    predicate = [s for s, _ in sql if "to_tsquery" in s]
    assert predicate, "the app's name search no longer uses the search column: the HTTP floor must follow"
    tsquery = next((p for _, params in sql for p in params if isinstance(p, str) and p.endswith(":*")), None)

    def requests(i: int) -> list[Statement]:
        word = names[i % len(names)].lower().replace("'", "")
        return substitute(sql, tsquery, f"'{word}':*") if tsquery else sql

    raw = await run.raw(requests)
    http_floor = run.load_http_floor([p.removeprefix("/v1") for p in paths])
    ratio = api["rps"] / http_floor["rps"]
    run.add(scenario("search_contacts", ">= 0.5 x HTTP floor req/s (q= a last name, 50 a page)", ratio,
                     ratio >= 0.5 and api["errors"] == http_floor["errors"] == 0, api=api, raw_sql=raw,
                     http_floor=http_floor, ratio_to_http_floor=round(ratio, 3),
                     ratio_to_floor=round(api["rps"] / floor["rps"], 3),
                     api_vs_raw_sql=round(api["rps"] / raw["rps"], 3), statements=len(sql), names=len(names),
                     matches_first_path=len(r.json()["data"]), response_bytes=len(r.content)))


async def create_contact(run: Run, floor: dict[str, Any]) -> None:
    """`POST /v1/contacts` with an Idempotency-Key (validation, the row, its event), against the HTTP floor's
    INSERT of the row and its event in one transaction. Every 2xx has its row and its event."""
    prefix = f"create-{run.tag}-"
    body = ('{"first_name": "Bench", "last_name": "C{n}", "email": "' + prefix + '{n}@example.com", '
            '"title": "Buyer"}')
    kw = {"method": "POST", "content_type": "application/json"}
    wrk(run.stack, ["/v1/contacts"], run.profile["warmup"], run.profile["connections"],
        body=body.replace(prefix, prefix + "warm-"), idempotency=prefix + "warm-", **kw)
    await asyncio.sleep(1)
    count = ("SELECT count(*) FROM contacts WHERE org_id = $1 AND email LIKE $2 AND email NOT LIKE $3")
    events = """SELECT count(*) FROM events e JOIN contacts c ON c.org_id = e.org_id AND c.id = e.object_id
                WHERE e.org_id = $1 AND e.type = 'contact.created' AND c.email LIKE $2 AND c.email NOT LIKE $3"""
    args = (run.org_id, prefix + "%", prefix + "warm-%")
    before, events_before = (await run.sql(count, *args))[0][0], (await run.sql(events, *args))[0][0]
    # the worker's own background (sweeps, heartbeat, queue polling) while nothing is written, per second
    idle_cpu, idle_started = cpu_seconds(run.stack.worker.pid), time.monotonic()
    await asyncio.sleep(5)
    idle_rate = (cpu_seconds(run.stack.worker.pid) - idle_cpu) / (time.monotonic() - idle_started)
    worker_cpu, loaded_started = cpu_seconds(run.stack.worker.pid), time.monotonic()
    api = wrk(run.stack, ["/v1/contacts"], run.profile["duration"], run.profile["connections"], body=body,
              idempotency=prefix, **kw)
    await asyncio.sleep(1)  # requests still in flight when wrk stopped finish
    written = (await run.sql(count, *args))[0][0] - before
    evented = (await run.sql(events, *args))[0][0] - events_before
    waiting = """SELECT count(*) FROM events e JOIN contacts c ON c.org_id = e.org_id AND c.id = e.object_id
                 WHERE e.org_id = $1 AND e.type = 'contact.created' AND c.email LIKE $2 AND c.email NOT LIKE $3
                   AND e.dispatched_at IS NULL"""
    deadline = time.monotonic() + 120
    left = (await run.sql(waiting, *args))[0][0]
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        left = (await run.sql(waiting, *args))[0][0]
    worker_cpu = cpu_seconds(run.stack.worker.pid) - worker_cpu
    background = idle_rate * (time.monotonic() - loaded_started)
    per_event = max(worker_cpu - background, 0) * 1000 / max(evented, 1)
    run.add(scenario("worker_dispatch_cpu", "worker CPU per dispatched event (no webhook subscribed) <= 0.3 ms, "
                     "while create_contact runs, beyond the worker's idle background", per_event / 0.3,
                     per_event <= 0.3 and left == 0, cpu_ms_per_event=round(per_event, 3),
                     cpu_ms_per_event_with_background=round(worker_cpu * 1000 / max(evented, 1), 3),
                     idle_background_cpu_ms_per_s=round(idle_rate * 1000, 2), events=evented,
                     worker_cpu_s=round(worker_cpu, 2), undispatched_after_120_s=left))
    floor_prefix = f"floor-{run.tag}-"
    http_floor = run.load_http_floor(["/contacts"], body=body.replace(prefix, floor_prefix), **kw)
    ratio = api["rps"] / http_floor["rps"]
    unanswered = written - api["ok"]
    complete = evented == written and 0 <= unanswered <= run.profile["connections"]
    run.add(scenario("create_contact", ">= 0.4 x HTTP floor req/s (with its event, idempotency and validation); "
                     "rows and events = 2xx", ratio,
                     ratio >= 0.4 and complete and api["errors"] == http_floor["errors"] == 0, api=api,
                     http_floor=http_floor, ratio_to_http_floor=round(ratio, 3),
                     ratio_to_floor=round(api["rps"] / floor["rps"], 3), rows_written=written, events_written=evented,
                     written_but_unanswered_at_stop=unanswered,
                     raw_sql="not replayed: the captured INSERTs carry their ids (the HTTP floor is the baseline)"))


async def start_http_floor(run: Run, cap: Capture) -> None:
    """Start bench/floor_app.py; its contacts get the owner and its events the actor the API gives them."""
    r = await cap.client.post("/v1/contacts", json={"first_name": "Floor", "last_name": "Probe"},
                              headers={"Authorization": run.stack.auth})
    r.raise_for_status()
    actor = (await run.sql("SELECT actor::text FROM events WHERE org_id = $1 AND object_id = $2 "
                           "AND type = 'contact.created'", run.org_id, UUID(r.json()["id"])))[0][0]
    run.stack.start_http_floor(r.json()["owner_id"], actor)


async def list_deals(run: Run, cap: Capture, floor: dict[str, Any]) -> None:
    from app.domain.deals.models import Deal
    from app.domain.pagination import Sort, encode_cursor

    sort = Sort("-created_at", Deal.created_at, True)
    top = (await run.sql("""
        SELECT stage_id, owner_id, count(*) AS n FROM deals WHERE org_id = $1 AND deleted_at IS NULL
        GROUP BY stage_id, owner_id ORDER BY n DESC LIMIT 1""", run.org_id))[0]
    total = (await run.sql("SELECT count(*) FROM deals WHERE org_id = $1 AND deleted_at IS NULL", run.org_id))[0][0]

    async def cursor_at(offset: int, filtered: bool) -> str:
        where = "AND stage_id = $3 AND owner_id = $4" if filtered else ""
        args = (top["stage_id"], top["owner_id"]) if filtered else ()
        row = (await run.sql(f"""SELECT created_at, id FROM deals WHERE org_id = $1 AND deleted_at IS NULL {where}
                                 ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1""", run.org_id, offset,
                             *args))[0]
        return encode_cursor(sort, row["created_at"], row["id"])

    filtered = f"/v1/deals?limit=50&stage_id={top['stage_id']}&owner_id={top['owner_id']}"
    deep_filtered_offset = int(top["n"] * 0.9)
    deep_offset = int(total * 0.9)
    cases = [
        ("filtered by stage and owner", filtered, f"{filtered}&cursor={await cursor_at(deep_filtered_offset, True)}",
         deep_filtered_offset, top["n"]),
        ("unfiltered", "/v1/deals?limit=50", f"/v1/deals?limit=50&cursor={await cursor_at(deep_offset, False)}",
         deep_offset, total),
    ]
    for label, first_path, deep_path, offset, matching in cases:
        first = run.load([first_path])
        if label == "unfiltered":
            await list_page(run, cap, first, floor)
        deep = run.load([deep_path])
        r, deep_sql = await cap.statements("GET", deep_path)
        assert r.status_code == 200 and len(r.json()["data"]) == 50, r.text[:300]
        run.round_trips[f"GET /v1/deals ({label})"] = len(deep_sql)
        ratio = deep["p95_ms"] / first["p95_ms"]
        run.add(scenario(f"list_deals_deep_page ({label})", "deep-page p95 <= 1.3 x first-page p95", ratio,
                         ratio <= 1.3 and first["errors"] == deep["errors"] == 0, first_page=first,
                         deep_page=deep, deep_offset=offset, rows_matching=matching))


async def row_level_security(run: Run) -> None:
    """What row-level security costs: the same reads from the API serving as its limited role (policies apply)
    and from a second server on the same data serving as the tables' owner, a superuser (policies skipped, as
    before they existed). Rounds alternate between the two, so both see the same machine."""
    ids = [str(r["id"]) for r in await run.sql(
        "SELECT id FROM deals WHERE org_id = $1 AND deleted_at IS NULL ORDER BY random() LIMIT 1000", run.org_id)]
    bypass = run.stack.start_server_as(run.stack.admin_url, "server-bypassing-rls")
    cases = {"get_deal": [f"/v1/deals/{i}" for i in ids], "list_deals": ["/v1/deals?limit=50"]}
    for name, paths in cases.items():
        rounds: dict[str, list[dict[str, Any]]] = {"with_rls": [], "without_rls": []}
        for base_url in (run.stack.base_url, bypass):
            wrk(run.stack, paths, run.profile["warmup"], run.profile["connections"], base_url=base_url)
        for _ in range(2):
            for label, base_url in (("with_rls", run.stack.base_url), ("without_rls", bypass)):
                rounds[label].append(wrk(run.stack, paths, run.profile["duration"] / 2, run.profile["connections"],
                                         base_url=base_url))
        rps = {label: sum(r["rps"] for r in rs) / len(rs) for label, rs in rounds.items()}
        errors = sum(r["errors"] for rs in rounds.values() for r in rs)
        ratio = rps["with_rls"] / rps["without_rls"]
        run.add(scenario(f"rls_cost ({name})", ">= 0.9 x the same server without row-level security", ratio,
                         ratio >= 0.9 and errors == 0, rps=rps, rounds=rounds))


async def post_lead(run: Run, floor: dict[str, Any]) -> None:
    prefix = f"bench-{run.tag}-"
    body = ('{"first_name": "Bench", "last_name": "L{n}", "email": "' + prefix + '{n}@example.com", '
            '"source": "web_form", "utm": {"source": "bench"}}')
    wrk(run.stack, ["/v1/leads"], run.profile["warmup"], run.profile["connections"], method="POST",
        body=body.replace(prefix, prefix + "warm-"), content_type="application/json")
    await asyncio.sleep(1)  # the warm-up's last requests finish before the counts are taken
    before = await _count_leads(run, prefix)
    api = wrk(run.stack, ["/v1/leads"], run.profile["duration"], run.profile["connections"], method="POST",
              body=body, content_type="application/json")
    await asyncio.sleep(1)  # requests still in flight when wrk stopped finish (their answers went unread)
    written = await _count_leads(run, prefix) - before
    events = (await run.sql("""SELECT count(*) FROM events e JOIN leads l ON l.org_id = e.org_id AND l.id = e.object_id
                               WHERE e.org_id = $1 AND e.type = 'lead.created' AND l.email LIKE $2
                               AND l.email NOT LIKE $3""", run.org_id, prefix + "%", prefix + "warm-%"))[0][0]
    ratio = api["rps"] / floor["rps"]
    # Every 2xx has its row and event; at most one request per connection was cut off by wrk's stop after
    # the server had written it (written - 2xx <= connections).
    unanswered = written - api["ok"]
    complete = events == written and 0 <= unanswered <= run.profile["connections"]
    run.add(scenario("post_lead", ">= 0.3 x floor req/s, rows written = 2xx responses", ratio,
                     ratio >= 0.3 and complete and api["errors"] == 0, api=api, rows_written=written,
                     events_written=events, written_but_unanswered_at_stop=unanswered))


async def _count_leads(run: Run, prefix: str) -> int:
    return (await run.sql("SELECT count(*) FROM leads WHERE org_id = $1 AND email LIKE $2 AND email NOT LIKE $3",
                          run.org_id, prefix + "%", prefix + "warm-%"))[0][0]


async def public_form(run: Run, floor: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=run.stack.base_url, headers={"Authorization": run.stack.auth}) as client:
        r = await client.post("/v1/forms", json={"name": f"Bench form {run.tag}"})
    r.raise_for_status()
    form = r.json()
    path = f"/v1/public/forms/{form['public_key']}/submissions"
    body = f"first_name=Web&last_name=Visitor&email=form-{run.tag}-{{n}}%40example.com&utm_source=bench"
    kw = {"method": "POST", "content_type": "application/x-www-form-urlencoded", "auth": False}
    # warm-up visitors have their own addresses: a repeat address joins its open lead instead of making one
    wrk(run.stack, [path], run.profile["warmup"], run.profile["connections"], body=body.replace("form-", "warm-"),
        **kw)
    await asyncio.sleep(1)  # the warm-up's last requests finish before the counts are taken
    count = "SELECT count(*) FROM form_submissions WHERE org_id = $1 AND form_id = $2"
    leads = "SELECT count(*) FROM leads WHERE org_id = $1 AND form_id = $2"
    form_id = UUID(form["id"])
    before, leads_before = (await run.sql(count, run.org_id, form_id))[0][0], (await run.sql(
        leads, run.org_id, form_id))[0][0]
    api = wrk(run.stack, [path], run.profile["duration"], run.profile["connections"], body=body, **kw)
    await asyncio.sleep(1)
    stored = (await run.sql(count, run.org_id, form_id))[0][0] - before
    waited = time.perf_counter()
    while True:  # the worker turns submissions into leads
        made = (await run.sql(leads, run.org_id, form_id))[0][0] - leads_before
        if made >= stored or time.perf_counter() - waited > 120:
            break
        await asyncio.sleep(0.5)
    ratio = api["rps"] / floor["rps"]
    unanswered = stored - api["ok"]
    complete = made == stored and 0 <= unanswered <= run.profile["connections"]
    run.add(scenario("public_form", ">= 0.3 x floor req/s, nothing lost (submissions and leads = 2xx)", ratio,
                     ratio >= 0.3 and complete and api["errors"] == 0, api=api, submissions_stored=stored,
                     leads_created=made, leads_caught_up_after_s=round(time.perf_counter() - waited, 1),
                     written_but_unanswered_at_stop=unanswered))


async def timeline(run: Run, cap: Capture, get_deal: dict[str, Any]) -> None:
    hot = (await run.sql("""SELECT contact_id, count(*) AS n FROM activities WHERE org_id = $1
                            AND contact_id IS NOT NULL GROUP BY contact_id ORDER BY n DESC LIMIT 1""",
                         run.org_id))[0]
    path = f"/v1/contacts/{hot['contact_id']}/timeline?limit=50"
    api = run.load([path])
    _, sql = await cap.statements("GET", path)
    run.round_trips["GET /v1/contacts/{id}/timeline"] = len(sql)
    raw = await run.raw(lambda i: sql)
    ratio = api["p95_ms"] / get_deal["api"]["p95_ms"]
    run.add(scenario("timeline_hot_contact", "first page p95 <= 2 x GET deal p95", ratio,
                     ratio <= 2 and api["errors"] == 0, api=api, raw_sql=raw, activities=hot["n"],
                     statements=len(sql)))


async def call_lookup(run: Run, cap: Capture, floor: dict[str, Any]) -> None:
    """The screen pop for a ringing number (`GET /v1/calls/lookup`): contacts' numbers, one in four unknown."""
    known = [r["phone"] for r in await run.sql(
        "SELECT phone FROM contacts WHERE org_id = $1 AND deleted_at IS NULL AND phone IS NOT NULL "
        "ORDER BY random() LIMIT 750", run.org_id)]
    phones = list(known)
    for i in range(0, len(known), 3):  # unknown numbers, which answer nulls
        phones.insert(i * 4 // 3, f"+4989{7000000 + i}")
    paths = [f"/v1/calls/lookup?phone={quote(p)}" for p in phones]
    api = run.load(paths)
    r, sql = await cap.statements("GET", paths[0])
    assert r.status_code == 200, r.text
    run.round_trips["GET /v1/calls/lookup"] = len(sql)
    raw = await run.raw(lambda i: substitute(sql, phones[0], phones[i % len(phones)]))
    ratio = api["rps"] / floor["rps"]
    run.add(scenario("call_lookup", ">= 0.5 x floor req/s (the screen pop: one statement)", ratio,
                     ratio >= 0.5 and api["errors"] == 0, api=api, raw_sql=raw,
                     api_vs_raw_sql=round(api["rps"] / raw["rps"], 3), statements=len(sql)))


async def drain_changes(run: Run, cap: Capture) -> None:
    """Read N events through /v1/changes (1,000 a page, keep-alive) vs asyncpg paging the same statement."""
    want = run.profile["drain_events"]
    limit = 1000
    read = 0
    cursor = None
    started = time.perf_counter()
    # a sync client on the same machine asks for no compression: gzip would cost both ends and save nothing
    async with httpx.AsyncClient(base_url=run.stack.base_url, timeout=60, headers={
            "Authorization": run.stack.auth, "Accept-Encoding": "identity"}) as client:
        while read < want:
            params: dict[str, Any] = {"limit": min(limit, want - read)}
            if cursor:
                params["cursor"] = cursor
            r = await client.get("/v1/changes", params=params)
            r.raise_for_status()
            page = orjson.loads(r.content)
            if not page["data"]:
                break
            read += len(page["data"])
            cursor = page["next_cursor"]
    api_seconds = time.perf_counter() - started

    # The same statement the endpoint sends for a page after a cursor, paged with asyncpg.
    from app.domain.events.feed import Position

    first, _ = await cap.statements("GET", "/v1/changes", params={"limit": 1})
    position = Position.decode(first.json()["next_cursor"])
    _, sql = await cap.statements("GET", "/v1/changes", params={"limit": limit, "cursor": first.json()["next_cursor"]})
    run.round_trips["GET /v1/changes"] = len(sql)
    page_sql, page_params = sql[-1]
    conn = await asyncpg.connect(run.stack.dsn)
    raw_read = 0
    started = time.perf_counter()
    try:
        seq, event_id = "0", UUID(int=0)  # from the start, as the API client did
        while raw_read < read:
            params = tuple(seq if p == str(position.seq) else event_id if p == position.event_id else p
                           for p in page_params)
            async with conn.transaction():
                await as_org(conn, run.org_id)
                row = await conn.fetchrow(page_sql, *params)
            if not row["n"]:
                break
            raw_read += row["n"]
            seq, event_id = str(row["last_seq"]), row["last_id"]
    finally:
        raw_seconds = time.perf_counter() - started
        await conn.close()
    api_rate, raw_rate = read / api_seconds, raw_read / raw_seconds
    ratio = api_rate / raw_rate
    run.add(scenario("drain_changes", ">= 0.25 x raw asyncpg events/s", ratio, ratio >= 0.25,
                     events=read, api={"seconds": round(api_seconds, 2), "events_per_s": round(api_rate)},
                     raw_sql={"events": raw_read, "seconds": round(raw_seconds, 2), "events_per_s": round(raw_rate)}))


def write_csv(path: Path, rows: int, tag: str) -> None:
    rng = random.Random(11)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["First Name", "Last Name", "E-Mail", "Phone", "Company", "Notes"])
        for i in range(rows):
            n = i
            if i % 10 == 9:  # every tenth row repeats an earlier (first-time) person
                n = rng.randrange(i)
                n -= 1 if n % 10 == 9 else 0
            out.writerow([f"First{n}", f"Last{n}", f"imp-{tag}-{n}@example.com", f"+4930{2000000 + n}",
                          f"Company {n % 500}", "imported; with a delimiter"])


async def import_csv(run: Run, rows: int, label: str) -> dict[str, Any]:
    """Upload, then poll until the worker is done; samples the worker's RSS every half second."""
    tag = f"{run.tag}{label}"
    path = run.stack.data_dir / f"import-{tag}.csv"
    write_csv(path, rows, tag)
    samples: list[int] = []
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=run.stack.base_url, headers={"Authorization": run.stack.auth},
                                 timeout=120) as client:
        with path.open("rb") as f:
            r = await client.post("/v1/imports", files={"file": (path.name, f, "text/csv")}, data={
                "object": "contacts", "dedupe_by": "email", "on_duplicate": "skip",
                "mapping": json.dumps({"First Name": "first_name", "Last Name": "last_name", "E-Mail": "email",
                                       "Phone": "phone"})})
        r.raise_for_status()
        import_id = r.json()["id"]
        while True:
            samples.append(rss_kib(run.stack.worker.pid))
            body = (await client.get(f"/v1/imports/{import_id}")).json()
            if body["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.5)
    seconds = time.perf_counter() - started
    stamps = {k: datetime.fromisoformat(body[k].replace("Z", "+00:00")) for k in ("created_at", "started_at",
                                                                                 "finished_at") if body.get(k)}
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds), "status": body["status"],
            "queued_seconds": round((stamps["started_at"] - stamps["created_at"]).total_seconds(), 2)
            if "started_at" in stamps else None,  # from the upload's commit to the worker taking it
            "running_seconds": round((stamps["finished_at"] - stamps["started_at"]).total_seconds(), 2)
            if "finished_at" in stamps and "started_at" in stamps else None,  # the worker's first to last write
            "counts": {k: body[k] for k in ("processed", "created", "updated", "skipped", "failed")},
            "path": path, "worker_rss_kib": samples}


async def csv_import(run: Run) -> None:
    result = await import_csv(run, run.profile["import_rows"], "i")
    path = result.pop("path")
    result.pop("worker_rss_kib")
    conn = await asyncpg.connect(run.stack.dsn)
    try:
        await conn.execute("""CREATE TEMP TABLE copy_target (first_name text, last_name text, email text,
                                                               phone text, company text, notes text)""")
        started = time.perf_counter()
        await conn.copy_to_table("copy_target", source=str(path), format="csv", header=True)
        copy_seconds = time.perf_counter() - started
    finally:
        await conn.close()
    path.unlink()
    expected = {"processed": result["rows"], "created": result["rows"] - result["rows"] // 10,
                "skipped": result["rows"] // 10}
    correct = result["status"] == "succeeded" and all(result["counts"][k] == v for k, v in expected.items())
    ratio = copy_seconds / result["seconds"]
    run.add(scenario("csv_import", ">= 0.2 x PostgreSQL COPY of the same file (rows/s)", ratio,
                     ratio >= 0.2 and correct, api=result, copy={"seconds": round(copy_seconds, 3),
                                                                  "rows_per_s": round(result["rows"] / copy_seconds)},
                     counts_correct=correct))


async def reports(run: Run, cap: Capture) -> None:
    """Each report endpoint, one request at a time, vs its bare SQL statement run the same way."""
    names = ["funnel", "win-loss", "forecast", "stage-durations", "velocity", "rotting", "activities", "lead-sources",
             "response-times", "emails", "customers", "products"]
    runs = run.profile["report_runs"]
    written = await report_data.ensure(run)
    run.add(scenario("report_data", "rows the seed lacks, written for rotting, emails and products", None, None,
                     **written))
    # no compression, as wrk and the drain ask for none: gzip of a report of every customer (about 30 MB of JSON)
    # would cost both ends on this one machine and save nothing
    async with httpx.AsyncClient(base_url=run.stack.base_url, timeout=120, headers={
            "Authorization": run.stack.auth, "Accept-Encoding": "identity"}) as client:
        for name in names:
            # all time; rotting is as of now (it takes no period)
            path = f"/v1/reports/{name}" + ("" if name == "rotting" else "?from=2000-01-01&to=2100-12-31")
            r = await client.get(path)
            if r.status_code == 404 and r.headers.get("content-type", "").startswith("application/problem"):
                run.add(scenario(f"report_{name}", "<= 1.5 x bare SQL time", None, False,
                                 missing="the report endpoint does not exist"))
                continue
            r.raise_for_status()
            api_times = []
            for _ in range(runs):
                started = time.perf_counter()
                (await client.get(path)).raise_for_status()
                api_times.append(time.perf_counter() - started)
            _, sql = await cap.statements("GET", path)
            run.round_trips[f"GET /v1/reports/{name}"] = len(sql)
            statement, params = sql[-1]
            conn = await asyncpg.connect(run.stack.dsn)
            try:
                async with conn.transaction():
                    await as_org(conn, run.org_id)
                    await conn.fetch(statement, *params)
                    sql_times = []
                    for _ in range(runs):
                        started = time.perf_counter()
                        await conn.fetch(statement, *params)
                        sql_times.append(time.perf_counter() - started)
            finally:
                await conn.close()
            api_p50, sql_p50 = statistics.median(api_times), statistics.median(sql_times)
            ratio = api_p50 / sql_p50
            run.add(scenario(f"report_{name}", "<= 1.5 x bare SQL time (median of sequential runs)", ratio,
                             ratio <= 1.5, api=_percentiles(api_times), raw_sql=_percentiles(sql_times),
                             runs=runs, statements=len(sql), response_bytes=len(r.content)))


async def automation_latency(run: Run, rate: float = 100.0) -> None:
    """A rule `contact.created` → `create_task` while the API takes `rate` contact creations per second (an open
    loop: requests start on schedule whether or not earlier ones answered): from each contact's commit to its
    task's, over every run."""
    seconds = run.profile["duration"]
    prefix = f"auto-{run.tag}-"
    # the rules of earlier runs on this data would each make a run per contact too
    await run.sql("UPDATE automations SET enabled = false WHERE org_id = $1 AND name LIKE 'Bench call-back %'",
                  run.org_id)
    async with httpx.AsyncClient(base_url=run.stack.base_url, headers={"Authorization": run.stack.auth},
                                 timeout=60, limits=httpx.Limits(max_connections=64)) as client:
        r = await client.post("/v1/automations", json={
            "name": f"Bench call-back {run.tag}", "trigger": {"event": "contact.created"},
            "conditions": [{"field": "contact.title", "op": "eq", "value": prefix}],
            "actions": [{"type": "create_task", "subject": "Call back", "due": {"in_minutes": 15}}]})
        r.raise_for_status()
        rule_id = r.json()["id"]
        worker_cpu = cpu_seconds(run.stack.worker.pid)
        started, statuses = time.perf_counter(), []

        async def create(n: int) -> None:
            await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
            body = {"first_name": "Auto", "last_name": f"C{n}", "title": prefix}
            for attempt in range(3):  # a keep-alive connection the server closed: sent again, deduped by the key
                try:
                    answer = await client.post("/v1/contacts", json=body,
                                               headers={"Idempotency-Key": f"{prefix}{n}"})
                    break
                except httpx.TransportError:
                    if attempt == 2:
                        raise
            statuses.append(answer.status_code)

        await asyncio.gather(*(create(n) for n in range(int(rate * seconds))))
        achieved = len(statuses) / (time.perf_counter() - started)
    total = len(statuses)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = (await run.sql("""
            SELECT count(*) FROM automation_runs r JOIN contacts c ON c.org_id = r.org_id AND c.id = r.object_id
            WHERE r.org_id = $1 AND r.automation_id = $2 AND r.status <> 'queued' AND c.title = $3""",
            run.org_id, UUID(rule_id), prefix))[0][0]
        if done >= total:
            break
        await asyncio.sleep(0.5)
    worker_cpu = cpu_seconds(run.stack.worker.pid) - worker_cpu
    await run.sql("UPDATE automations SET enabled = false WHERE org_id = $1 AND id = $2", run.org_id, UUID(rule_id))
    rows = await run.sql("""
        SELECT r.status, extract(epoch FROM a.created_at - c.created_at) AS lag
        FROM automation_runs r
        JOIN contacts c ON c.org_id = r.org_id AND c.id = r.object_id
        LEFT JOIN activities a ON a.org_id = r.org_id AND a.id = (r.actions -> 0 -> 'result' ->> 'activity_id')::uuid
        WHERE r.org_id = $1 AND r.automation_id = $2 AND c.title = $3""", run.org_id, UUID(rule_id), prefix)
    lags = [float(r["lag"]) for r in rows if r["lag"] is not None]
    complete = (len(rows) == total and all(r["status"] == "succeeded" for r in rows)
                and statuses.count(201) == total and len(lags) == total)
    figures = _percentiles(lags) if lags else {}
    p95 = figures.get("p95_ms")
    run.add(scenario("automation_latency", "event -> create_task done: p95 <= 1 s at 100 writes/s",
                     None if p95 is None else p95 / 1000, bool(p95 is not None and p95 <= 1000 and complete),
                     writes=total, writes_per_s=round(achieved, 1), created_201=statuses.count(201),
                     runs=len(rows), succeeded=sum(1 for r in rows if r["status"] == "succeeded"),
                     samples=len(lags), lag=figures, lag_max_ms=round(max(lags) * 1000, 1) if lags else None,
                     worker_cpu_ms_per_write=round(worker_cpu * 1000 / max(total, 1), 2)))


async def memory(run: Run) -> None:
    api_rss = rss_kib(run.stack.server.pid)
    result = await import_csv(run, run.profile["memory_import_rows"], "m")
    result["path"].unlink()
    samples = result.pop("worker_rss_kib")
    # "Flat" is a number: the worker's RSS growth between the first and the last tenth of the import (the median
    # of each tenth's samples, taken every half second), compared with FLAT_GROWTH_MIB.
    tenth = max(1, len(samples) // 10)
    first, last = statistics.median(samples[:tenth]) / 1024, statistics.median(samples[-tenth:]) / 1024
    growth_mib = last - first
    flat = growth_mib <= FLAT_GROWTH_MIB
    run.add(scenario("memory", f"API RSS <= 250 MiB after the run; worker RSS growth from the first to the last "
                     f"tenth of the import <= {FLAT_GROWTH_MIB} MiB", api_rss / 1024 / 250,
                     api_rss / 1024 <= 250 and flat, api_rss_mib=round(api_rss / 1024, 1),
                     import_rows=result["rows"], import_seconds=result["seconds"], import_status=result["status"],
                     worker_rss_samples=len(samples), samples_per_tenth=tenth,
                     worker_rss_mib={"start": round(samples[0] / 1024, 1), "first_tenth": round(first, 1),
                                     "last_tenth": round(last, 1), "peak": round(max(samples) / 1024, 1),
                                     "end": round(samples[-1] / 1024, 1)},
                     worker_growth_mib=round(growth_mib, 1), flat_threshold_mib=FLAT_GROWTH_MIB, worker_flat=flat))


FLAT_GROWTH_MIB = 50


# --- output ---------------------------------------------------------------------------------------------


def _table_row(r: dict[str, Any]) -> None:
    api = r.get("api") or r.get("first_page") or {}
    figures = ", ".join(f"{k}={api[k]}" for k in ("n", "rps", "median_ms", "p50_ms", "p95_ms", "p99_ms", "errors")
                        if k in api)
    if "ratio_to_http_floor" in r:
        figures += f", http_floor rps={r['http_floor']['rps']}, ping floor x{r['ratio_to_floor']}"
    met = {True: "met", False: "MISSED", None: "-"}[r["met"]]
    print(f"{r['scenario']:<48} {met:<7} ratio={r['ratio']!s:<7} {figures}", file=sys.stderr, flush=True)


def markdown(result: dict[str, Any]) -> str:
    """The results as a Markdown table (for RESULTS.md)."""
    lines = ["| scenario | target | ratio | met | req/s | p50 (or median of n) ms | p95 ms | p99 ms | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["scenarios"]:
        api = r.get("api") or r.get("deep_page") or {}
        median = api.get("p50_ms", f"{api['median_ms']} (n={api['n']})" if "median_ms" in api else "")
        cells = [api.get("rps", ""), median, *(api.get(k, "") for k in ("p95_ms", "p99_ms", "errors"))]
        met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
        lines.append(f"| {r['scenario']} | {r['target']} | {r['ratio'] if r['ratio'] is not None else '-'} | {met} | "
                     + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")))
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 1024 / 1024, 1),
            "python": sys.version.split()[0], "wrk": wrk_version.strip()}


ONLY = {"mail": lambda run: _mail(run), "reports": lambda run: _reports(run),  # `--only X`: one group of scenarios
        "telephony": lambda run: _telephony(run), "import": lambda run: csv_import(run),
        "automations": lambda run: automation_latency(run), "http-floor": lambda run: _http_floor(run),
        "writes": lambda run: _writes(run), "reads": lambda run: _reads(run)}


async def _http_floor(run: Run) -> None:
    """The four scenarios measured against the HTTP floor."""
    async with Capture(run.stack) as cap:
        await start_http_floor(run, cap)
        floor, _ = await floor_and_get_deal(run, cap)
        await list_deals(run, cap, floor)
        await search_contacts(run, cap, floor)
        await create_contact(run, floor)


async def _reads(run: Run) -> None:
    """The read paths: the floors, GET deal, the list pages, the name search, the hot contact's timeline and the
    screen pop."""
    async with Capture(run.stack) as cap:
        await start_http_floor(run, cap)
        floor, get_deal = await floor_and_get_deal(run, cap)
        await list_deals(run, cap, floor)
        await search_contacts(run, cap, floor)
        await timeline(run, cap, get_deal)
        await call_lookup(run, cap, floor)


async def _mail(run: Run) -> None:
    await mail_bench.imap_sync(run, run.profile["imap_messages"])
    await mail_bench.campaign_send(run, run.profile["campaign_recipients"])


async def _reports(run: Run) -> None:
    async with Capture(run.stack) as cap:
        await reports(run, cap)
    await automation_latency(run)


async def _telephony(run: Run) -> None:
    async with Capture(run.stack) as cap:
        floor = run.load(["/v1/ping"])
        run.add(scenario("floor", "the ceiling: GET /v1/ping (API-key auth, nothing else read)", None, None,
                         api=floor))
        await call_lookup(run, cap, floor)


async def _writes(run: Run) -> None:
    floor = run.load(["/v1/ping"])
    run.add(scenario("floor", "the ceiling: GET /v1/ping (API-key auth, nothing else read)", None, None, api=floor))
    await post_lead(run, floor)
    await public_form(run, floor)
    from bench.write_paths import post_contact

    await post_contact(run, floor)


async def run_all(profile_name: str, data_dir: Path, only: str | None = None) -> dict[str, Any]:
    profile = PROFILES[profile_name]
    stack = Stack(profile, data_dir)
    started = time.perf_counter()
    try:
        stack.start_databases()
        await stack.prepare()
        stack.start_app()
        run = Run(stack, profile)
        if only is not None:
            await ONLY[only](run)
            return {"profile": profile_name, "only": only, "date": time.strftime("%Y-%m-%d"),
                    "machine": machine(), "scenarios": run.results}
        pg_version = (await run.sql("SHOW server_version"))[0][0]
        async with Capture(stack) as cap:
            await start_http_floor(run, cap)
            floor, get_deal = await floor_and_get_deal(run, cap)
            await list_deals(run, cap, floor)
            await search_contacts(run, cap, floor)
            await create_contact(run, floor)
            await row_level_security(run)
            await timeline(run, cap, get_deal)
            await call_lookup(run, cap, floor)
            await post_lead(run, floor)
            await public_form(run, floor)
            await drain_changes(run, cap)
            await reports(run, cap)
        await automation_latency(run)
        await csv_import(run)
        await _mail(run)
        await memory(run)
        return {"profile": profile_name, "settings": {k: v for k, v in profile.items()},
                "date": time.strftime("%Y-%m-%d"), "machine": {**machine(), "postgresql": pg_version},
                "server": {"command": "crm serve (1 uvicorn process) + crm worker", "env": "CRM_ENV=production",
                           "http_floor": "python -m bench.floor_app: Starlette + asyncpg under uvicorn as crm serve "
                                         "runs it (same worker count, no access log, no proxy headers), the API's "
                                         "role, crm.org_id set per transaction, PostgreSQL-built JSON; auth: one "
                                         "fixed key compared in constant time (comparable to none)",
                           "database_role": "the API's limited role (row-level security applies); migrations, "
                                            "seeding and sweeps as the owner",
                           "raised_limits": {"CRM_FORM_RATE_LIMIT": 1_000_000_000,
                                                             "CRM_RATE_LIMIT_PER_CREDENTIAL": 1_000_000_000,
                                                             "CRM_RATE_LIMIT_AUTH_PER_IP": 1_000_000_000}},
                "seed": stack.seed.get("rows"), "seconds": round(time.perf_counter() - started, 1),
                "round_trips": run.round_trips, "scenarios": run.results,
                "met": sum(1 for r in run.results if r["met"]),
                "missed": [r["scenario"] for r in run.results if r["met"] is False]}
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small dataset, short runs (under 5 minutes)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench-data",
                        help="embedded PostgreSQL/Redis and the seeded datasets (kept between runs)")
    parser.add_argument("--only", choices=sorted(ONLY), help="run one group of scenarios (not the whole run)")
    parser.add_argument("--out", type=Path, help="also write the JSON here (the full run's is bench/results.json)")
    parser.add_argument("--markdown", type=Path, metavar="RESULTS_JSON", help="print a results file as a table")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    os.environ.setdefault("CRM_LOG_LEVEL", "WARNING")
    result = asyncio.run(run_all("quick" if args.quick else "full", args.data_dir, args.only))
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
