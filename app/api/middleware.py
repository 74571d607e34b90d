"""Pure ASGI middleware: request id, access log and metrics; early refusal of oversized bodies."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import unhandled
from app.api.metrics import Metrics
from app.api.problems import problem_response
from app.api.ratelimit import client_ip
from app.domain.audit import service as audit
from app.logging import log

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class RequestContextMiddleware:
    """Every response carries `X-Request-ID` (the caller's, if sane, else a new one). The client's address
    (behind `trusted_proxies`) and user agent are bound for the audit log."""

    def __init__(self, app: ASGIApp, metrics: Metrics, trusted_proxies: list[str] | None = None) -> None:
        self.app, self.metrics, self.trusted_proxies = app, metrics, trusted_proxies or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        audit.bind_request(client_ip(Request(scope), self.trusted_proxies), headers.get("user-agent"))
        status = 500
        response_started = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                verdict = scope["state"].get("ratelimit")  # set by the rate limits of app.api.deps
                if verdict is not None and "ratelimit-limit" not in out:
                    for name, value in verdict.headers().items():
                        out[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Starlette's ServerErrorMiddleware sits outside ours: answer here so the 500 carries the id.
            if response_started:
                raise
            response = await unhandled(Request(scope, receive), exc)
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(elapsed)
            if route not in ("/healthz", "/readyz", "/metrics"):
                log.info("request", method=scope["method"], path=scope["path"], route=route, status=status,
                         duration_ms=round(elapsed * 1000, 2))


class BodySizeLimitMiddleware:
    """Refuse a declared Content-Length over the limit before reading anything; count streamed bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int, overrides: dict[str, int] | None = None) -> None:
        self.app, self.default, self.overrides = app, max_bytes, overrides or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            # PostgreSQL cannot store or compare a NUL character: refuse it here, not as a database error later.
            response = problem_response(400, "bad-request", "Bad request",
                                        "The URL contains a NUL (%00) character", scope["path"].replace("\x00", ""))
            await response(scope, receive, send)
            return
        limit = next((n for prefix, n in self.overrides.items() if scope["path"].startswith(prefix)), self.default)
        await _Limited(self.app, limit)(scope, receive, send)


class _Limited:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False
            if too_large:
                await self._refuse(scope, receive, send)
                return

        seen = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, "payload-too-large", "Request body too large",
            f"The request body is larger than {self.max_bytes} bytes", scope["path"],
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """An HTTPException, so FastAPI's body parsing re-raises it and the handlers answer 413 problem+json."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="The request body is too large")
