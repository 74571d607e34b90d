"""Fixed-window rate limits in Redis, and the client address behind trusted proxies."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from starlette.requests import Request

from app.logging import log


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        out = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining),
               "RateLimit-Reset": str(self.reset_seconds)}
        if not self.allowed:
            out["Retry-After"] = str(self.reset_seconds)
        return out


async def hit(redis: Redis | None, key: str, limit: int, window_seconds: int) -> Verdict:
    """Count one request against `key`; Redis being unreachable lets requests through (logged)."""
    now = time.time()
    window = int(now // window_seconds)
    reset = max(1, int((window + 1) * window_seconds - now))
    if redis is None:
        return Verdict(True, limit, limit, reset)
    try:
        bucket = f"rl:{key}:{window}"
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(bucket)
            pipe.expire(bucket, window_seconds + 1)
            count, _ = await pipe.execute()
    except Exception as exc:  # noqa: BLE001 - fail open: losing leads is worse than a missed limit
        log.warning("rate_limit_unavailable", error=type(exc).__name__)
        return Verdict(True, limit, limit, reset)
    return Verdict(count <= limit, limit, max(0, limit - count), reset)


async def next_count(redis: Redis | None, key: str) -> int | None:
    """A shared counter (1, 2, 3...) that no transaction has to lock; None when Redis is unreachable."""
    if redis is None:
        return None
    try:
        return int(await redis.incr(key))
    except Exception as exc:  # noqa: BLE001 - the caller has a slower way that needs no Redis
        log.warning("counter_unavailable", error=type(exc).__name__)
        return None


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The peer address, or, when the peer is a trusted proxy, the right-most untrusted X-Forwarded-For hop.
    `crm serve`/`crm dev` give uvicorn the same list (`forwarded_allow_ips`), so the peer is already resolved
    there and this finds the same address; under any other ASGI server this applies the rule itself."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies:
        return peer
    networks = [ipaddress.ip_network(n, strict=False) for n in trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in n for n in networks)

    if not trusted(peer):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop
    return hops[0] if hops else peer
