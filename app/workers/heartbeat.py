"""A key in Redis that a running worker keeps fresh: `/readyz` tells from it whether any worker is alive."""

from __future__ import annotations

import os
import socket
from typing import Any

from redis.asyncio import Redis

HEARTBEAT_KEY = "crm:worker:heartbeat"


async def beat(ctx: dict[str, Any]) -> None:
    """Written every CRM_WORKER_HEARTBEAT_SECONDS; it lives three periods, so one late beat is no outage."""
    ttl_ms = int(ctx["settings"].worker_heartbeat_seconds * 3 * 1000)
    await ctx["redis"].set(HEARTBEAT_KEY, f"{socket.gethostname()}:{os.getpid()}", px=ttl_ms)


async def seen(redis: Redis) -> bool:
    return bool(await redis.exists(HEARTBEAT_KEY))
