"""`Idempotency-Key` on POST: a retry with the same key and body replays the first answer.

Keys are scoped to the organisation and principal (a user stays the same principal across token
refreshes), kept `CRM_IDEMPOTENCY_TTL_SECONDS` (24 h) in Redis. The first request claims the key
atomically (SET NX): a second identical request arriving meanwhile gets 409, a different body 422.
A 5xx answer is not kept, so the client may retry it.
"""

from __future__ import annotations

import base64
import hashlib

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.domain.auth import service as auth_service
from app.domain.errors import CRMError
from app.logging import log

SKIP_PREFIXES = ("/v1/public/", "/v1/auth/")  # forms keep their own keys; token calls are not replayable
KEPT_HEADERS = ("content-type", "location", "etag")
BUFFER_LIMIT = 1 << 20  # bodies up to this size are read to fingerprint them; larger ones stream


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
            await _answer(problem_response(400, "bad-idempotency-key", "Bad Idempotency-Key",
                                           "Idempotency-Key must be 1 to 255 characters", path), scope, receive, send)
            return
        state = scope["app"].state
        principal = await _principal(state, headers.get("authorization", ""))
        if principal is None:  # unauthenticated: the route answers 401 itself
            await self.app(scope, receive, send)
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
        digest = hashlib.sha256(key.encode()).hexdigest()
        store_key = f"idem:{principal.org_id}:{principal.type}:{principal.id}:{digest}"
        redis = state.redis
        ttl = state.settings.idempotency_ttl_seconds
        try:
            claimed = await redis.set(store_key, orjson.dumps({"state": "running", "fp": fingerprint}), nx=True, ex=ttl)
            if not claimed:
                stored = orjson.loads(await redis.get(store_key) or b"{}")
        except Exception as exc:  # noqa: BLE001
            log.warning("idempotency_store_unavailable", error=type(exc).__name__)
            await _answer(problem_response(503, "unavailable", "Service unavailable",
                                           "Idempotency keys cannot be checked right now; retry shortly", path,
                                           {"Retry-After": "1"}), scope, receive, send)
            return
        if not claimed:
            if stored.get("fp") != fingerprint:
                problem = problem_response(422, "idempotency-key-reused", "Idempotency-Key reused",
                                           "This Idempotency-Key was used with a different request", path)
            elif stored.get("state") == "running":
                problem = problem_response(409, "idempotency-in-flight", "Request in progress",
                                           "A request with this Idempotency-Key is still running; retry later", path,
                                           {"Retry-After": "1"})
            else:
                replay_headers = [(k.encode(), v.encode()) for k, v in stored["headers"]]
                replay_headers.append((b"idempotent-replayed", b"true"))
                await send({"type": "http.response.start", "status": stored["status"], "headers": replay_headers})
                await send({"type": "http.response.body", "body": base64.b64decode(stored["body"])})
                return
            await _answer(problem, scope, receive, send)
            return

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
            try:
                if status >= 500:
                    await redis.delete(store_key)
                else:
                    await redis.set(store_key, orjson.dumps({
                        "state": "done", "fp": fingerprint, "status": status, "headers": kept,
                        "body": base64.b64encode(b"".join(chunks)).decode()}), ex=ttl)
            except Exception as exc:  # noqa: BLE001 - the answer went out; a lost record only weakens replay
                log.warning("idempotency_store_failed", error=type(exc).__name__)


async def _principal(state, authorization: str):  # noqa: ANN001, ANN202
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        async with state.db.sessions() as session:
            principal = await auth_service.resolve_bearer(session, state.settings, token.strip())
            await session.commit()
            return principal
    except CRMError:
        return None


async def _answer(response, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ANN001
    await response(scope, receive, send)
