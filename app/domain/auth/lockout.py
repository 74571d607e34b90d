"""Login lockout, in Redis: too many failed logins for one account (or, with a higher limit, from one client
address) within `CRM_LOGIN_FAILURE_WINDOW_SECONDS` lock further logins, the right password included.

The lock grows with each failure past the limit: `CRM_LOGIN_LOCKOUT_SECONDS` × 2^(failures − limit), up to
`CRM_LOGIN_LOCKOUT_MAX_SECONDS`. A successful login clears the account's count. Redis being unreachable lets
logins through (logged), as the other rate limits do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

from app.domain.errors import RateLimited
from app.logging import log
from app.settings import Settings


class LoginLocked(RateLimited):
    """429 while a lock is in force; keeps the `login.failed` audit row written before it."""

    keep_changes = True


@dataclass(frozen=True)
class Lock:
    limit: int
    retry_after: int

    def error(self) -> LoginLocked:
        headers = {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": "0",
                   "RateLimit-Reset": str(self.retry_after)}
        return LoginLocked(self.retry_after, "Too many failed logins; try again later", headers)


def _account(email: str) -> str:
    return "login:acct:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _address(ip: str | None) -> str:
    return f"login:ip:{ip or 'unknown'}"


def _lock_seconds(settings: Settings, failures: int, limit: int) -> int:
    exponent = min(failures - limit, 20)
    return min(settings.login_lockout_seconds * (2 ** exponent), settings.login_lockout_max_seconds)


async def current_lock(redis: Redis | None, settings: Settings, email: str, ip: str | None) -> Lock | None:
    """The lock on this account or address, if one is in force."""
    if redis is None:
        return None
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.pttl(_account(email) + ":lock")
            pipe.pttl(_address(ip) + ":lock")
            account_ms, address_ms = await pipe.execute()
    except Exception as exc:  # noqa: BLE001 - fail open, as the other limits
        log.warning("login_lockout_unavailable", error=type(exc).__name__)
        return None
    if account_ms and account_ms > 0:
        return Lock(settings.login_max_failures, max(1, -(-account_ms // 1000)))
    if address_ms and address_ms > 0:
        return Lock(settings.login_max_failures_per_ip, max(1, -(-address_ms // 1000)))
    return None


async def _count(redis: Redis, settings: Settings, key: str, limit: int) -> None:
    window = settings.login_failure_window_seconds
    failures = int(await redis.incr(key))
    if failures == 1:
        await redis.expire(key, window)
    if failures >= limit:
        seconds = _lock_seconds(settings, failures, limit)
        await redis.set(key + ":lock", "1", ex=seconds)
        await redis.expire(key, window + seconds)  # keep counting across the lock: the next one locks longer


async def failed(redis: Redis | None, settings: Settings, email: str, ip: str | None) -> None:
    """Count one failed login for the account and the address."""
    if redis is None:
        return
    try:
        await _count(redis, settings, _account(email), settings.login_max_failures)
        await _count(redis, settings, _address(ip), settings.login_max_failures_per_ip)
    except Exception as exc:  # noqa: BLE001
        log.warning("login_lockout_unavailable", error=type(exc).__name__)


async def succeeded(redis: Redis | None, email: str) -> None:
    if redis is None:
        return
    try:
        await redis.delete(_account(email))
    except Exception as exc:  # noqa: BLE001
        log.warning("login_lockout_unavailable", error=type(exc).__name__)
