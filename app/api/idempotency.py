"""`Idempotency-Key` on POST: a retry with the same key and body replays the first answer.

Keys are scoped to the organisation and principal (a user stays the same principal across token
refreshes). The middleware fingerprints the request (path, query, body) and leaves it in the request's
state; the key is claimed only once the caller is authenticated (`claim`, called by the authentication
dependency with the principal it resolved), so an unauthenticated request neither reads nor reserves one.

The claim (SET NX) marks the key "running" for `CRM_IDEMPOTENCY_RUNNING_SECONDS`, renewed while the
request runs: a second identical request meanwhile gets 409, a different body 422, and a process killed
mid-request frees the key within that time. The answer is kept `CRM_IDEMPOTENCY_TTL_SECONDS` (24 h);
a 5xx answer is not kept, so the client may retry it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.domain.auth.principal import Principal
from app.domain.errors import Conflict, ServiceUnavailable, ValidationFailed
from app.logging import log

SKIP_PREFIXES = ("/v1/public/", "/v1/auth/")  # forms keep their own keys; token calls are not replayable
KEPT_HEADERS = ("content-type", "location", "etag")
BUFFER_LIMIT = 1 << 20  # bodies up to this size are read to fingerprint them; larger ones stream
STATE = "idempotency"


class InFlight(Conflict):
    slug, title = "idempotency-in-flight", "Request in progress"
    retry_after = 1


class KeyReused(ValidationFailed):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused"


class Replay(Exception):  # noqa: N818 - not an error: answered with the stored response
    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored = stored


@dataclass
class Pending:
    """A keyed request: its fingerprint, and once it holds the key, where and the task renewing it."""

    digest: str
    fingerprint: str
    store_key: str | None = None
    renewal: asyncio.TimerHandle | None = None  # the next renewal, a timer (cheap to cancel: most requests end first)
    renewing: asyncio.Task[None] | None = None  # a renewal under way
    finished: bool = False


async def claim(request: Request, principal: Principal) -> None:
    """Claim the request's key for `principal`; raise what a repeat is answered with. No key: nothing."""
    pending: Pending | None = request.scope.get("state", {}).get(STATE)
    if pending is None or pending.store_key is not None:  # no key, or already ours (a retried unit of work)
        return
    store_key = f"idem:{principal.org_id}:{principal.type}:{principal.id}:{pending.digest}"
    state = request.app.state
    lease = state.settings.idempotency_running_seconds
    try:
        claimed = await state.redis.set(store_key, orjson.dumps({"state": "running", "fp": pending.fingerprint}),
                                        nx=True, ex=lease)
        stored = None if claimed else orjson.loads(await state.redis.get(store_key) or b"{}")
    except Exception as exc:  # noqa: BLE001
        log.warning("idempotency_store_unavailable", error=type(exc).__name__)
        raise ServiceUnavailable("Idempotency keys cannot be checked right now; retry shortly", retry_after=1) from None
    if claimed:
        pending.store_key = store_key
        _renew_later(pending, state.redis, lease)
        return
    if not stored or stored.get("state") == "running":  # (an empty record expired between the two calls)
        if stored and stored.get("fp") != pending.fingerprint:
            raise KeyReused("This Idempotency-Key was used with a different request", loc=("header", "Idempotency-Key"))
        raise InFlight("A request with this Idempotency-Key is still running; retry later")
    if stored.get("fp") != pending.fingerprint:
        raise KeyReused("This Idempotency-Key was used with a different request", loc=("header", "Idempotency-Key"))
    raise Replay(stored)


def _renew_later(pending: Pending, redis: Any, lease: int) -> None:
    """Every lease/3 while the request runs, extend the mark (a timer, not a task per request)."""
    def renew() -> None:
        if not pending.finished:
            pending.renewing = asyncio.ensure_future(_renew(pending, redis, lease))

    pending.renewal = asyncio.get_running_loop().call_later(lease / 3, renew)


async def _renew(pending: Pending, redis: Any, lease: int) -> None:
    try:
        await redis.expire(pending.store_key, lease)
    except Exception as exc:  # noqa: BLE001 - the marker then lapses; a retry may run the request again
        log.warning("idempotency_renewal_failed", error=type(exc).__name__)
    if not pending.finished:
        _renew_later(pending, redis, lease)


async def replay(request: Request, exc: Replay) -> Response:
    headers = {k: v for k, v in exc.stored["headers"]}
    headers["Idempotent-Replayed"] = "true"
    return Response(base64.b64decode(exc.stored["body"]), status_code=exc.stored["status"], headers=headers)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].startswith(SKIP_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not key or len(key) > 255:
            response = problem_response(400, "bad-idempotency-key", "Bad Idempotency-Key",
                                        "Idempotency-Key must be 1 to 255 characters", path)
            await response(scope, receive, send)
            return

        declared = headers.get("content-length", "")
        large = declared.isdigit() and int(declared) > BUFFER_LIMIT
        body = b""
        if large:  # an upload (an import, say) streams through; its fingerprint is its size, not its bytes
            fingerprint = hashlib.sha256(b"\n".join([path.encode(), scope.get("query_string", b""),
                                                     b"size:" + declared.encode()])).hexdigest()
        else:
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            fingerprint = hashlib.sha256(b"\n".join([path.encode(), scope.get("query_string", b""), body])).hexdigest()
        pending = Pending(hashlib.sha256(key.encode()).hexdigest(), fingerprint)
        scope.setdefault("state", {})[STATE] = pending

        sent_body = large

        async def replay_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status, kept, chunks = 500, [], []

        async def capture(message: Message) -> None:
            nonlocal status, kept
            if pending.store_key is not None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    kept = [(k.decode(), v.decode()) for k, v in message.get("headers", []) if k.decode().lower()
                            in KEPT_HEADERS]
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        finally:
            if pending.store_key is not None:
                await _finish(scope, pending, status, kept, b"".join(chunks))


async def _finish(scope: Scope, pending: Pending, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    pending.finished = True
    if pending.renewal is not None:
        pending.renewal.cancel()
    if pending.renewing is not None and not pending.renewing.done():
        pending.renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending.renewing
    state = scope["app"].state
    try:
        if status >= 500:
            await state.redis.delete(pending.store_key)
        else:
            await state.redis.set(pending.store_key, orjson.dumps({
                "state": "done", "fp": pending.fingerprint, "status": status, "headers": headers,
                "body": base64.b64encode(body).decode()}), ex=state.settings.idempotency_ttl_seconds)
    except Exception as exc:  # noqa: BLE001 - the answer went out; a lost record only weakens replay
        log.warning("idempotency_store_failed", error=type(exc).__name__)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Replay, replay)  # type: ignore[arg-type]
    app.add_middleware(IdempotencyMiddleware)
