"""Where the time goes: py-spy samples the API server while wrk drives one hot endpoint.

    python -m bench.profile --quick --data-dir DIR [--scenario get_deal ...] [--seconds 10] [--rate 100]

Starts the same stack as `python -m bench` (embedded PostgreSQL and Redis, the seeded dataset, `crm serve` and
`crm worker` with production settings), warms each endpoint up with wrk, then records the server's Python stacks
with `py-spy record --pid <server> --subprocesses --format raw` while wrk drives the endpoint. Idle samples (the
event loop waiting) are left out, so the shares are of the CPU time the server spends. For each scenario it
writes, under bench/profiles/:

- `<scenario>.txt`: the collapsed stacks (one `frame;frame;... count` a line: flamegraph.pl, inferno and
  speedscope read it);
- `<scenario>.svg`: a flame graph of them (hover for counts);

and `split.json`: each sample's category (see `categorise`), as counts and percent of samples.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.harness import PROFILES, ROOT, Stack, wrk

OUT = Path(__file__).resolve().parent / "profiles"
SCENARIOS = ["get_deal", "list_deals_page", "search_contacts", "create_contact", "post_lead", "public_form"]
CATEGORIES = ["framework", "event loop", "app middleware", "auth", "idempotency", "validation", "SQL",
              "serialisation", "app (other)"]


# --- what a sample is spent on ----------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_SQL = ("sqlalchemy/", "asyncpg/")
_FRAMEWORK = ("starlette/", "fastapi/", "uvicorn/", "anyio/", "h11/", "httptools/", "uvloop/")
_SERIALISE_FUNCS = {"serialize_response", "jsonable_encoder", "render", "model_dump", "model_dump_json",
                    "dump_python", "dump_json", "to_json", "dumps", "encode", "serialize", "dump"}
_VALIDATE_FILES = ("pydantic/", "fastapi/dependencies/utils.py", "fastapi/_compat", "email_validator/",
                   "phonenumbers/")


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        m = _FRAME.match(frame.strip())
        out.append((m["func"], m["file"]) if m else (frame.strip(), ""))
    return out


_LOOP_RUNNER = re.compile(r"uvicorn/(server|_compat|main|config|supervisors/\w+)\.py$")  # what runs the loop
_MIDDLEWARE = ("app/api/middleware.py", "app/api/cors.py", "app/api/retry.py", "app/api/idempotency.py")


def categorise(stack: str) -> str:
    """One sample's category, read from its stack (root first):

    - SQL: any frame of SQLAlchemy (Core, ORM, its pool, its greenlets) or asyncpg, whoever called them (the
      auth lookup's and the idempotency record's SQL included: SQLAlchemy's greenlet stacks do not show their
      caller, so SQL is counted whole, wherever it comes from);
    - serialisation: under FastAPI's `serialize_response`, `jsonable_encoder`, a response's `render`, a
      pydantic/json/orjson dump, or a pydantic model built from attributes (ORM row -> read model);
    - idempotency: the Idempotency-Key claim and record (`app/api/idempotency.py`, other than its middleware
      passing the request on);
    - auth: under `app.api.deps.authenticate` (the key's lookup and cache, scopes) or the rate limiter;
    - validation: FastAPI's parsing of parameters and bodies, pydantic validation of input, the app's schemas;
    - otherwise the deepest frame of the app or of the framework decides (a library the app calls, e.g. Redis's
      client or structlog, counts for its caller):
      - app middleware: the app's ASGI middleware's own work (request context, CORS, gzip decision, retry);
      - app (other): the app's code outside all of these (routes, services, events);
      - framework: Starlette, FastAPI (its dependency injection included), uvicorn, anyio, httptools;
    - event loop: asyncio/uvloop alone, or no Python frame (the loop in C).
    """
    frames = _frames(stack)
    files = [file.replace("\\", "/") for _, file in frames]
    if any(s in f for f in files for s in _SQL):
        return "SQL"
    label = None
    deepest: str | None = None
    for i, ((func, _), norm) in enumerate(zip(frames, files, strict=True)):
        in_app = norm.startswith("app/") or "/app/" in norm
        nxt = files[i + 1] if i + 1 < len(files) else ""
        if func in _SERIALISE_FUNCS and (in_app or any(x in norm for x in ("fastapi/", "starlette/", "pydantic/",
                                                                         "json/"))):
            return "serialisation"
        if "app/api/idempotency" in norm and (func != "__call__" or not any(
                x in nxt for x in ("app/", "starlette/", "fastapi/"))):
            return "idempotency"
        if (norm.endswith("app/api/deps.py") and func in {"authenticate", "limit_rate", "dependency"}) \
                or "app/domain/auth/" in norm or "ratelimit" in norm:
            label = label or "auth"
            continue
        if label is None and (("validate" in func and any(v in norm for v in _VALIDATE_FILES))
                              or func in {"request_body_to_args", "request_params_to_args"}
                              or ("schemas.py" in norm and in_app)):
            return "validation"
        if in_app and not norm.endswith("app/cli.py"):  # the CLI only starts uvicorn
            deepest = norm
        elif any(f in norm for f in _FRAMEWORK) and not _LOOP_RUNNER.search(norm):
            deepest = norm
    if label:
        return label
    if deepest is None:  # asyncio/uvloop running callbacks, or no Python frame at all (the loop in C)
        return "event loop"
    if any(f in deepest for f in _FRAMEWORK):
        return "framework"
    return "app middleware" if deepest.endswith(_MIDDLEWARE) else "app (other)"


def _detail(category: str, stack: str) -> str | None:
    """Within SQL: asyncpg (the driver, its protocol and prepared statements) or SQLAlchemy alone; within the
    framework: the deepest of uvicorn, Starlette, FastAPI, anyio."""
    files = [file for _, file in _frames(stack)]
    if category == "SQL":
        return "asyncpg" if any("asyncpg/" in f and "sqlalchemy/" not in f for f in files) else "sqlalchemy"
    if category == "framework":
        for f in reversed(files):
            for name in ("fastapi", "starlette", "uvicorn", "anyio"):
                if f"{name}/" in f and not _LOOP_RUNNER.search(f):
                    return name
    return None


def split(collapsed: str) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    details: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            category = categorise(stack)
            counts[category] += int(n)
            detail = _detail(category, stack)
            if detail:
                details[f"{category}: {detail}"] += int(n)
    total = sum(counts.values())

    def pct(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {"samples": total, "percent": {c: pct(counts[c]) for c in CATEGORIES},
            "percent_within": {k: pct(v) for k, v in sorted(details.items())},
            "counts": {c: counts[c] for c in CATEGORIES}}


# --- a flame graph from collapsed stacks ------------------------------------------------------------------


def flamegraph(collapsed: str, title: str, width: int = 1800) -> str:
    """An SVG flame graph (root at the bottom; width = share of samples; hover a frame for its counts)."""
    root: dict[str, Any] = {"n": 0, "kids": {}}
    for line in collapsed.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        node = root
        node["n"] += int(n)
        for frame in stack.split(";"):
            node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
            node["n"] += int(n)
    depth = 0

    def measure(node: dict[str, Any], d: int) -> None:
        nonlocal depth
        depth = max(depth, d)
        for kid in node["kids"].values():
            measure(kid, d + 1)

    measure(root, 0)
    row = 17
    height = (depth + 3) * row
    total = max(root["n"], 1)
    rects: list[str] = []

    def draw(node: dict[str, Any], x: float, d: int) -> None:
        for name, kid in sorted(node["kids"].items()):
            w = width * kid["n"] / total
            if w >= 0.3:
                y = height - (d + 2) * row
                hue = 20 + zlib.crc32(name.split(" (")[-1].encode()) % 40  # the same colour for a file every run
                label = html.escape(name)
                text = html.escape(name.split(" (")[0])[: int(w / 7)]
                rects.append(f'<g><title>{label}: {kid["n"]} samples, {100 * kid["n"] / total:.1f}%</title>'
                             f'<rect x="{x:.1f}" y="{y}" width="{max(w - 0.3, 0.1):.1f}" height="{row - 1}" '
                             f'fill="hsl({hue},90%,60%)"/>'
                             + (f'<text x="{x + 2:.1f}" y="{y + row - 5}">{text}</text>' if len(text) > 2 else "")
                             + "</g>")
                draw(kid, x, d + 1)
            x += w

    draw(root, 0.0, 0)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="monospace" font-size="11">'
            f'<text x="4" y="14" font-size="13">{html.escape(title)} ({root["n"]} samples)</text>'
            + "".join(rects) + "</svg>\n")


# --- driving ----------------------------------------------------------------------------------------------


async def requests_for(stack: Stack, tag: str) -> dict[str, dict[str, Any]]:
    """Each scenario's wrk arguments, as the harness's scenarios send them."""
    import asyncpg

    conn = await asyncpg.connect(stack.admin_dsn)
    org = stack.seed["org_id"]
    try:
        deals = [str(r["id"]) for r in await conn.fetch(
            "SELECT id FROM deals WHERE org_id = $1 AND deleted_at IS NULL ORDER BY random() LIMIT 1000", org)]
        names = [r["last_name"] for r in await conn.fetch(
            "SELECT last_name FROM contacts WHERE org_id = $1 AND deleted_at IS NULL AND last_name IS NOT NULL "
            "ORDER BY random() LIMIT 200", org)]
    finally:
        await conn.close()
    async with httpx.AsyncClient(base_url=stack.base_url, headers={"Authorization": stack.auth}) as client:
        form = (await client.post("/v1/forms", json={"name": f"Profile form {tag}"})).raise_for_status().json()
    post = {"method": "POST", "content_type": "application/json"}
    return {
        "get_deal": {"paths": [f"/v1/deals/{i}" for i in deals]},
        "list_deals_page": {"paths": ["/v1/deals?limit=50"]},
        "search_contacts": {"paths": [f"/v1/contacts?q={quote(n)}&limit=50" for n in names]},
        "create_contact": {"paths": ["/v1/contacts"], "idempotency": f"prof-{tag}-", **post,
                           "body": '{"first_name": "Bench", "last_name": "C{n}", "email": "prof-' + tag
                                   + '-{n}@example.com", "title": "Buyer"}'},
        "post_lead": {"paths": ["/v1/leads"], **post,
                      "body": '{"first_name": "Bench", "last_name": "L{n}", "email": "prof-' + tag
                              + '-{n}@example.com", "source": "web_form", "utm": {"source": "bench"}}'},
        "public_form": {"paths": [f"/v1/public/forms/{form['public_key']}/submissions"], "method": "POST",
                        "content_type": "application/x-www-form-urlencoded", "auth": False,
                        "body": f"first_name=Web&last_name=Visitor&email=prof-{tag}-{{n}}%40example.com"
                                "&utm_source=bench"},
    }


def _title(name: str, connections: int, rate: int) -> str:
    return f"{name}: crm serve under wrk -c{connections}, py-spy {rate} Hz, idle left out"


def record(stack: Stack, name: str, spec: dict[str, Any], seconds: int, rate: int,
           connections: int) -> dict[str, Any]:
    kw = {k: v for k, v in spec.items() if k != "paths"}
    warm = dict(kw)  # the warm-up's bodies and keys are its own
    if "body" in kw:
        warm["body"] = kw["body"].replace("{n}", "w{n}")
    if "idempotency" in kw:
        warm["idempotency"] = kw["idempotency"] + "w"
    wrk(stack, spec["paths"], 2, connections, **warm)
    raw = OUT / f"{name}.txt"
    spy = subprocess.Popen([shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record",
                            "--pid", str(stack.server.pid), "--subprocesses", "--format", "raw", "--rate", str(rate),
                            "--duration", str(seconds + 1), "-o", str(raw)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    if spy.poll() is not None:
        raise RuntimeError(f"py-spy record --pid failed: {spy.stdout.read()}")
    load = wrk(stack, spec["paths"], seconds, connections, **kw)
    try:
        out, _ = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.send_signal(signal.SIGINT)
        out, _ = spy.communicate(timeout=30)
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote nothing: {out}")
    collapsed = raw.read_text()
    (OUT / f"{name}.svg").write_text(flamegraph(collapsed, _title(name, connections, rate)))
    return {"wrk": {k: load[k] for k in ("requests", "rps", "errors")}, **split(collapsed)}


async def main(profile_name: str, data_dir: Path, names: list[str], seconds: int, rate: int) -> dict[str, Any]:
    profile = PROFILES[profile_name]
    stack = Stack(profile, data_dir)
    OUT.mkdir(exist_ok=True)
    try:
        stack.start_databases()
        await stack.prepare()
        stack.start_app()
        specs = await requests_for(stack, os.urandom(3).hex())
        results = {}
        for name in names:
            results[name] = record(stack, name, specs[name], seconds, rate, profile["connections"])
            print(f"{name:<18} " + " ".join(f"{c}={p}%" for c, p in results[name]["percent"].items() if p),
                  file=sys.stderr, flush=True)
    finally:
        stack.stop()
    return {"profile": profile_name, "date": time.strftime("%Y-%m-%d"), "seconds": seconds, "rate_hz": rate,
            "connections": profile["connections"],
            "server": "crm serve (1 uvicorn process), CRM_ENV=production, the API's role", "scenarios": results}


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick dataset (else the full one)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench-data")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="default: all")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--resplit", action="store_true",
                        help="recompute split.json and the flame graphs from the stored stacks")
    args = parser.parse_args(argv)
    names = args.scenario or SCENARIOS
    if args.resplit:
        stored = json.loads((OUT / "split.json").read_text())
        for name, figures in stored["scenarios"].items():
            collapsed = (OUT / f"{name}.txt").read_text()
            figures.update(split(collapsed))
            (OUT / f"{name}.svg").write_text(flamegraph(collapsed, _title(name, stored["connections"],
                                                                          stored["rate_hz"])))
        result = stored
    else:
        os.environ.setdefault("CRM_LOG_LEVEL", "WARNING")
        result = asyncio.run(main("quick" if args.quick else "full", args.data_dir, names, args.seconds, args.rate))
    (OUT / "split.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    cli()
