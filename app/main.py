"""create_app(): routers, middleware, error handlers and the lifespan of shared resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from fastapi import Depends, FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from redis.asyncio import Redis

from app import __version__
from app.api import errors, idempotency, openapi_post
from app.api.cors import ApiCORSMiddleware
from app.api.metrics import Metrics
from app.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from app.api.query_check import refuse_unknown_query
from app.api.retry import TransactionRetryMiddleware
from app.api.router import routers
from app.db import Database
from app.logging import configure_logging
from app.migrate import ensure_schema_current
from app.settings import Settings, get_settings

DESCRIPTION = """
A headless CRM: contacts, companies, leads, deals in pipelines, activities, and the sync and
automation around them, as a typed JSON API.

**Auth**: `Authorization: Bearer <token>` where the token is a JWT access token from
`POST /v1/auth/token` (15 minutes; renew with `POST /v1/auth/refresh`), an API key (`crm_...`,
created by an admin with scopes) or a personal access token (`crm_...`, `POST /v1/me/tokens`, acting as
its user). Every route needs a scope (`*`, or `<area>:read` / `<area>:write`; write implies read); a key
acts within its scopes and its creator's current role (at most admin), a personal token within its scopes
and its user's current role; a missing scope or role → 403.

**Errors** are `application/problem+json` (RFC 9457) with `type`, `title`, `status`, `detail`,
`instance`; validation errors add `errors: [{loc, msg, type}]`.

**Lists** are keyset-paginated: `?limit=1..200&cursor=<next_cursor>&sort=field|-field`, answering
`{data, next_cursor}`.

**Concurrency**: single objects carry `ETag: "<version>"`; send `If-Match` on PATCH/DELETE (412 when
stale) and `If-None-Match` on GET (304 when unchanged).

**Limits**: request bodies up to `CRM_MAX_BODY_BYTES` (1 MiB by default; 413 above). Rate-limited
endpoints answer 429 with `Retry-After`.
"""


def create_app(settings: Settings | None = None, db: Database | None = None, redis: Redis | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    owns_resources = db is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_resources:
            app.state.db = Database.from_settings(settings)
            app.state.redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
            await ensure_schema_current(app.state.db.engine)
            app.state.metrics.watch_pool(app.state.db.engine)
        try:
            yield
        finally:
            if owns_resources:
                await app.state.redis.aclose()
                await app.state.db.dispose()

    app = FastAPI(
        dependencies=[Depends(refuse_unknown_query)],
        title="Headless CRM API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    if db is not None:
        app.state.db = db
        app.state.redis = redis
        app.state.metrics.watch_pool(db.engine)
    errors.install(app)
    for router in routers:
        app.include_router(router)

    # add_middleware stacks outward: the last added runs first. Request id wraps everything (even a 413
    # or a CORS refusal carries it); gzip and the body limit sit outside idempotency replays, which sit
    # outside the second run of a request whose transaction lost a race.
    app.add_middleware(TransactionRetryMiddleware)
    idempotency.install(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes,
                       overrides={"/v1/imports": settings.import_max_bytes,
                                  # a file and its form fields (the file's own limit is checked as it streams)
                                  "/v1/files": settings.max_file_bytes + 65_536})
    app.add_middleware(ApiCORSMiddleware, origins=settings.cors_origins, origin_regex=settings.cors_origin_regex)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics, trusted_proxies=settings.trusted_proxies)

    original_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = openapi_post.finish(original_openapi(), app.routes)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
