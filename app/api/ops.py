"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from app.workers import heartbeat

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/healthz", response_model=Health, operation_id="healthz")
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


async def _check(coro_factory, limit_seconds: float = 2.0) -> str:  # noqa: ANN001
    try:
        await asyncio.wait_for(coro_factory(), limit_seconds)
        return "ok"
    except Exception as exc:  # readiness reports, it does not raise
        return f"failed: {type(exc).__name__}"


async def _worker_seen(redis) -> str:  # noqa: ANN001
    try:
        return "ok" if await asyncio.wait_for(heartbeat.seen(redis), 2.0) else "missing"
    except Exception:  # noqa: BLE001 - unknown counts as not seen
        return "missing"


@router.get("/readyz", response_model=Readiness, operation_id="readyz",
            responses={503: {"model": Readiness, "description": "a dependency is unreachable"}})
async def readyz(request: Request, response: Response) -> Readiness:
    """PostgreSQL and Redis are reachable (503 otherwise). `checks.worker` says whether a background worker
    was seen in the last few seconds (`ok` or `missing`); it is reported, not required: the API serves
    without one, and what it leaves to workers waits in the database until one runs."""
    state = request.app.state

    async def db() -> None:
        async with state.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    checks = {"database": await _check(db), "redis": await _check(state.redis.ping)}
    ok = all(v == "ok" for v in checks.values())
    checks["worker"] = await _worker_seen(state.redis)
    response.status_code = 200 if ok else 503
    return Readiness(status="ok" if ok else "unavailable", checks=checks)


@router.get("/metrics", operation_id="metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics: request counts and latency by route template, database pool."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
