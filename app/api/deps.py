"""Dependencies shared by routers: the unit of work, the caller, list parameters, conditional requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.api import idempotency, ratelimit
from app.api.errors import NotModified
from app.api.ratelimit import client_ip
from app.db import Database
from app.domain.auth import service as auth_service
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.auth.scopes import grants
from app.domain.concurrency import ANY_VERSION
from app.domain.errors import Forbidden, PreconditionFailed, RateLimited, Unauthorized
from app.domain.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from app.settings import Settings
from app.workers import queue


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.db


async def get_redis(request: Request) -> Redis:
    return request.app.state.redis


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The unit of work: one transaction per request, committed before the response is sent."""
    async with request.app.state.db.unit_of_work() as session:
        yield session
    # Committed: hand the new events to the relay (the outbox sweeper covers a failed hand-over).
    queue.hand_over(getattr(request.app.state, "redis", None), session)


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit (or roll back) right after the endpoint returns, before the response goes
# out, so a client never sees a 2xx for a transaction that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
RedisDep = Annotated[Redis, Depends(get_redis)]



bearer = HTTPBearer(
    auto_error=False,
    description="A JWT access token from `POST /v1/auth/token`, or an API key (`crm_...`).",
)


async def authenticate(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller; then the request's Idempotency-Key, if any, is claimed for it (or answered from its record)."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Send 'Authorization: Bearer <access token or API key>'")
    principal = await auth_service.resolve_bearer(session, settings, credentials.credentials,
                                                  client_ip(request, settings.trusted_proxies))
    await limit_rate(request, f"credential:{principal.type}:{principal.id}", settings.rate_limit_per_credential,
                     settings.rate_limit_window_seconds)
    await idempotency.claim(request, principal)
    return principal


async def limit_rate(request: Request, key: str, limit: int, window_seconds: int) -> None:
    """Count this request against `key`: the verdict's `RateLimit-*` headers go on the response (whatever it
    is, see `RequestContextMiddleware`); over the limit, 429 with `Retry-After`."""
    verdict = await ratelimit.hit(getattr(request.app.state, "redis", None), key, limit, window_seconds)
    request.state.ratelimit = verdict
    if not verdict.allowed:
        raise RateLimited(verdict.reset_seconds, f"More than {limit} requests in {window_seconds} s; retry in "
                          f"{verdict.reset_seconds} s", verdict.headers())


async def limit_auth_rate(request: Request, settings: SettingsDep) -> None:
    """Per client address, for the routes that take a password or a refresh token."""
    await limit_rate(request, f"auth-ip:{client_ip(request, settings.trusted_proxies)}",
                     settings.rate_limit_auth_per_ip, settings.rate_limit_window_seconds)


def require(scope: str, role: Role = Role.viewer):  # noqa: ANN201 (a dependency factory)
    """The caller must hold `scope` (API keys, personal access tokens) and at least `role`; viewers never write."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(scope, role):
            if not grants(principal.scopes, scope):
                raise Forbidden(f"This credential lacks the scope {scope!r}", required_scope=scope)
            raise Forbidden(f"Your role ({principal.role.value}) cannot do this; it needs {role.value} or above"
                            if not principal.role.at_least(role) else "Viewers have read-only access")
        return principal

    dependency.required_scope = scope  # type: ignore[attr-defined] # routes are checked for one (tests)
    dependency.required_role = role  # type: ignore[attr-defined]
    return Depends(dependency)


def require_own(scope: str):  # noqa: ANN201 (a dependency factory)
    """For what callers do to their own things (their notifications, tokens, profile), whatever their role:
    the caller must hold `scope`; the service checks whose things they are."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not grants(principal.scopes, scope):
            raise Forbidden(f"This credential lacks the scope {scope!r}", required_scope=scope)
        return principal

    dependency.required_scope = scope  # type: ignore[attr-defined]
    return Depends(dependency)


# Any authenticated caller, whatever its scopes: only for saying who is calling (`/v1/me`, `/v1/ping`) and
# for sub-dependencies of routes that require a scope themselves.
AnyCaller = Annotated[Principal, Depends(authenticate)]


async def get_report_session(request: Request, session: SessionDep, who: AnyCaller) -> AsyncIterator[AsyncSession]:
    """Reports read the replica when there is one (CRM_DATABASE_REPLICA_URL), else the request's session."""
    db: Database = request.app.state.db
    if db.replica_sessions is None:
        yield session
        return
    async with db.read_only(who.org_id) as replica_session:
        yield replica_session


ReportSessionDep = Annotated[AsyncSession, Depends(get_report_session, scope="function")]


async def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1..{MAX_LIMIT}")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=1024, description="`next_cursor` of the previous page")] = None,
    sort: Annotated[str | None, Query(max_length=64, description="field, or -field for descending")] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor, sort=sort)


PageDep = Annotated[PageRequest, Depends(page_request)]


VERSION_DIGITS = 10  # versions are 32-bit integers: a longer number can never match


def _parse_etag(value: str) -> int | None:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return int(value) if value.isascii() and value.isdigit() and len(value) <= VERSION_DIGITS else None


async def if_match(
    _: AnyCaller,
    value: Annotated[str | None, Header(alias="If-Match", description='the ETag you last saw, e.g. "3"')] = None,
) -> int | None:
    """-> the version the client expects (None = unconditional); an unparsable value can never match: 412.
    Checked for an authenticated caller only: a stranger learns nothing from 412 versus 401."""
    if value is None:
        return None
    if value.strip() == "*":
        return ANY_VERSION
    versions = [v for v in (_parse_etag(part) for part in value.split(",")) if v is not None]
    if len(versions) != 1:
        raise PreconditionFailed("If-Match must carry one ETag such as \"3\"")
    return versions[0]


IfMatch = Annotated[int | None, Depends(if_match)]


def etag_of(version: int) -> str:
    return f'"{version}"'


def conditional(request: Request, version: int) -> str:
    """For GETs: raise NotModified (304) when If-None-Match already holds this version; else the ETag."""
    etag = etag_of(version)
    header = request.headers.get("if-none-match")
    if header:
        if header.strip() == "*" or any(_parse_etag(p) == version for p in header.split(",")):
            raise NotModified(etag)
    return etag
