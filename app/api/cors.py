"""CORS for the API's own routes: the allowed origins (`CRM_CORS_ORIGINS`, and under `crm dev` any
`http://localhost:*` / `http://127.0.0.1:*`), never credentials. A refused preflight is a 403 problem naming
what was refused, not a plain-text 400 or a 405. Public form routes keep their per-form origin rules."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.problems import problem_response

PUBLIC_FORMS = "/v1/public/forms/"
DEV_ORIGIN_REGEX = r"http://(localhost|127\.0\.0\.1)(:\d{1,5})?"
"""Front ends in development, on any port (only under `crm dev`)."""

ALLOW_HEADERS = ["Authorization", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "X-Request-ID"]
EXPOSE_HEADERS = ["ETag", "X-Request-ID", "Retry-After", "Location", "RateLimit-Limit", "RateLimit-Remaining",
                  "RateLimit-Reset", "X-Changes-Cursor", "Idempotent-Replayed"]


class ApiCORSMiddleware(CORSMiddleware):
    def __init__(self, app: ASGIApp, origins: list[str], origin_regex: str | None = None) -> None:
        super().__init__(app, allow_origins=origins, allow_origin_regex=origin_regex, allow_credentials=False,
                         allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"], allow_headers=ALLOW_HEADERS,
                         expose_headers=EXPOSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(PUBLIC_FORMS):
            await self.app(scope, receive, send)  # forms answer their own preflights, per form
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            response = self.preflight_response(request_headers=headers)
            if response.status_code != 200:
                refused = response.body.decode().removeprefix("Disallowed CORS ")
                response = problem_response(
                    403, "forbidden", "Forbidden",
                    f"Cross-origin request refused ({refused}) for origin {origin!r}: allowed origins are set with "
                    "CRM_CORS_ORIGINS", scope["path"])
            await response(scope, receive, send)
            return
        await self.simple_response(scope, receive, send, request_headers=headers)
