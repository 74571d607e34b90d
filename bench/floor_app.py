"""The HTTP floor: the least a Python HTTP server can do to answer what the API's hot endpoints answer.

A Starlette app on asyncpg, run by the harness with the same server as `crm serve` (uvicorn, same worker count
`CRM_WORKERS`, no access log, no proxy headers, uvicorn's default loop and HTTP parser), connecting to the same
database as the same role the API uses, so row-level security applies: every request is one transaction that
first names its org (`set_config('crm.org_id', ..., true)`, as `app.db.set_org` does), then sends one statement
whose JSON PostgreSQL builds (`row_to_json` / `json_agg` / `json_build_object`); the answer is passed on as it
comes. Authentication is a fixed key check, comparable to nothing: the `Authorization` header is compared
(constant time) with the one key the harness gives it; no lookup, no cache, no scopes.

    GET  /deals/{id}             the deal's row (the API's `readable` rule for an owner key: org, not deleted)
    GET  /deals?limit=50         a page of deals, newest first (keyset: `created_at DESC, id DESC`, limit + 1 read)
    GET  /contacts?q=...         the same name search as `GET /v1/contacts?q=` (its `search @@ to_tsquery(...)`
                                 predicate, word prefixes), a page of 50, newest first
    POST /contacts               a contact INSERT and its `contact.created` event (outbox) row, one transaction

Configured by the environment (the harness sets it): BENCH_FLOOR_DSN, BENCH_FLOOR_AUTH, BENCH_FLOOR_ORG,
BENCH_FLOOR_OWNER, BENCH_FLOOR_ACTOR (the event's actor JSON), CRM_HOST, CRM_PORT, CRM_WORKERS.

    python -m bench.floor_app
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uuid_utils.compat import uuid7

SET_ORG = "SELECT set_config('crm.org_id', $1, true)"  # as app.db.set_org

DEAL = """SELECT row_to_json(d) FROM deals d WHERE d.org_id = $1 AND d.id = $2 AND d.deleted_at IS NULL"""

DEALS_PAGE = """
WITH page AS (
    SELECT * FROM deals WHERE org_id = $1 AND deleted_at IS NULL
      AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
    ORDER BY created_at DESC, id DESC LIMIT $4 + 1)
SELECT json_build_object(
    'data', coalesce((SELECT json_agg(row_to_json(p) ORDER BY p.created_at DESC, p.id DESC)
                      FROM (SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT $4) p), '[]'::json),
    'has_more', (SELECT count(*) > $4 FROM page))"""

# The predicate is app.domain.listing.search_clause's for a name (word prefixes over the `search` column).
CONTACTS_SEARCH = """
WITH page AS (
    SELECT * FROM contacts WHERE org_id = $1 AND deleted_at IS NULL AND search @@ to_tsquery('simple', $2)
    ORDER BY created_at DESC, id DESC LIMIT $3 + 1)
SELECT json_build_object(
    'data', coalesce((SELECT json_agg(to_jsonb(p) - 'search' ORDER BY p.created_at DESC, p.id DESC)
                      FROM (SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT $3) p), '[]'::json),
    'has_more', (SELECT count(*) > $3 FROM page))"""

CREATE_CONTACT = """
WITH c AS (
    INSERT INTO contacts (org_id, id, owner_id, first_name, last_name, email, phone, title, version)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1) RETURNING *),
e AS (
    INSERT INTO events (org_id, id, type, object_type, object_id, action, actor, version, data)
    SELECT c.org_id, $9, 'contact.created', 'contact', c.id, 'created', $10::jsonb, c.version, to_jsonb(c) - 'search'
    FROM c)
SELECT (to_jsonb(c) - 'search')::text FROM c"""

_WORD = re.compile(r"[\w.@+-]+")  # as app.domain.listing: words of letters, digits and . @ + -


def _json(text: str, status: int = 200) -> Response:
    return Response(text.encode(), status_code=status, media_type="application/json")


def _denied() -> Response:
    return _json('{"status": 401}', 401)


class Floor:
    def __init__(self) -> None:
        self.dsn = os.environ["BENCH_FLOOR_DSN"]
        self.auth = os.environ["BENCH_FLOOR_AUTH"].encode()
        self.org = os.environ["BENCH_FLOOR_ORG"]
        self.owner = os.environ["BENCH_FLOOR_OWNER"]
        self.actor = os.environ["BENCH_FLOOR_ACTOR"]
        self.pool: asyncpg.Pool | None = None

    def allowed(self, request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("authorization", "").encode(), self.auth)

    async def one(self, sql: str, *args: Any) -> Any:
        assert self.pool is not None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(SET_ORG, self.org)
            return await conn.fetchval(sql, *args)

    async def deal(self, request: Request) -> Response:
        if not self.allowed(request):
            return _denied()
        text = await self.one(DEAL, self.org, request.path_params["id"])
        return _json(text) if text is not None else _json('{"status": 404}', 404)

    async def deals(self, request: Request) -> Response:
        if not self.allowed(request):
            return _denied()
        limit = int(request.query_params.get("limit", "50"))
        return _json(await self.one(DEALS_PAGE, self.org, None, None, limit))

    async def contacts(self, request: Request) -> Response:
        if not self.allowed(request):
            return _denied()
        q = request.query_params.get("q", "")
        words = [w.strip(".-") for w in _WORD.findall(q.lower()) if w.strip(".-")][:8]
        query = " & ".join(f"'{w.replace(chr(39), '')}':*" for w in words)
        limit = int(request.query_params.get("limit", "50"))
        return _json(await self.one(CONTACTS_SEARCH, self.org, query, limit))

    async def create_contact(self, request: Request) -> Response:
        if not self.allowed(request):
            return _denied()
        body = orjson.loads(await request.body())
        text = await self.one(CREATE_CONTACT, self.org, uuid7(), self.owner, body.get("first_name"),
                              body.get("last_name"), body.get("email"), body.get("phone"), body.get("title"),
                              uuid7(), self.actor)
        return _json(text, 201)

    async def ready(self, request: Request) -> Response:
        return _json('{"status": "ok"}')

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # the API's pool: 10 connections (CRM_DB_POOL_SIZE) plus 10 overflow, 30 s statement timeout
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=20, server_settings={
            "application_name": "crm-floor", "statement_timeout": "30000"})
        try:
            yield
        finally:
            await self.pool.close()


def create_app() -> Starlette:
    floor = Floor()
    return Starlette(routes=[
        Route("/readyz", floor.ready),
        Route("/deals/{id:uuid}", floor.deal),
        Route("/deals", floor.deals),
        Route("/contacts", floor.contacts),
        Route("/contacts", floor.create_contact, methods=["POST"]),
    ], lifespan=floor.lifespan)


def main() -> None:
    import uvicorn

    # as `crm serve`: uvicorn.run(factory, workers=CRM_WORKERS, log_config=None, access_log=False,
    # proxy_headers=False), uvicorn choosing its loop and HTTP parser the same way
    uvicorn.run("bench.floor_app:create_app", factory=True, host=os.environ.get("CRM_HOST", "127.0.0.1"),
                port=int(os.environ["CRM_PORT"]), workers=int(os.environ.get("CRM_WORKERS", "1")), log_config=None,
                access_log=False, proxy_headers=False)


if __name__ == "__main__":
    main()
