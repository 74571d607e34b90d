"""A key in Redis that a running worker keeps fresh: `/readyz` tells from it whether any worker is alive."""

from __future__ import annotations

import os
import socket
from typing import Any

from redis.asyncio import Redis

HEARTBEAT_KEY = "crm:worker:heartbeat"


def _me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat(ctx: dict[str, Any]) -> None:
    """Written every CRM_WORKER_HEARTBEAT_SECONDS; it lives three periods, so one late beat is no outage."""
    ttl_ms = int(ctx["settings"].worker_heartbeat_seconds * 3 * 1000)
    await ctx["redis"].set(HEARTBEAT_KEY, _me(), px=ttl_ms)


async def stop(redis: Redis) -> None:
    """A stopping worker takes the key away if it wrote the last beat (another worker's beat stays)."""
    if await redis.get(HEARTBEAT_KEY) == _me().encode():
        await redis.delete(HEARTBEAT_KEY)


async def seen(redis: Redis) -> bool:
    return bool(await redis.exists(HEARTBEAT_KEY))
