"""Maps every error the app can raise to problem+json, in one place. No stack trace or SQL leaks."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import StatementError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.api import db_errors
from app.api.problems import problem_response
from app.domain.errors import CRMError, RateLimited, Unauthorized, ValidationFailed
from app.logging import log

_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


class NotModified(Exception):
    """Raised by conditional GETs; answered with an empty 304 carrying the ETag."""

    def __init__(self, etag: str) -> None:
        self.etag = etag


def _instance(request: Request) -> str:
    return request.url.path


def crm_error_response(request: Request, exc: CRMError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers.update(exc.headers)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    headers.update(getattr(request.state, "cors_headers", {}))  # set by routes with per-record CORS (forms)
    extensions: dict[str, Any] = dict(exc.extensions)
    if isinstance(exc, ValidationFailed):
        extensions["errors"] = exc.errors
    return problem_response(exc.status, exc.slug, exc.title, exc.detail, _instance(request), headers, **extensions)


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's `loc` shape, without echoing inputs back (they may hold secrets)."""
    out = []
    for e in errors:
        msg = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field"
        out.append({"loc": list(e.get("loc", ())), "msg": msg, "type": e.get("type", "value_error")})
    return out


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = _clean_validation_errors(list(exc.errors()))
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON",
                                _instance(request), errors=errors)
    fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or e["loc"][0] for e in errors[:5] if e["loc"])
    return problem_response(422, "validation", "Validation failed", f"Invalid input: {fields}" if fields else
                            "Invalid input", _instance(request), errors=errors)


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("bad-request", "Bad request") if exc.status_code < 500
                                  else ("internal", "Internal server error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No route {request.method} {request.url.path}"
    return problem_response(exc.status_code, slug, title, detail, _instance(request), dict(exc.headers or {}))


async def not_modified(request: Request, exc: NotModified) -> Response:
    return Response(status_code=304, headers={"ETag": exc.etag})


async def stale_data(request: Request, exc: StaleDataError) -> Response:
    return problem_response(409, "concurrent-update", "Concurrent update",
                            "The record was changed by another request at the same time; fetch it and retry",
                            _instance(request))


RETRY_UNIT_OF_WORK = "retry_unit_of_work"
"""Set in the request's state when its transaction lost a race: app.api.retry runs the request again."""


def database_problem(request: Request, exc: BaseException) -> Response | None:
    """The answer to a database failure (see app.api.db_errors), or None when `exc` is not one."""
    problem = db_errors.classify(exc)
    if problem is None:
        return None
    # Logged: the server's own message (it names the problem, not the parameters); never sent to clients.
    (log.error if problem.status >= 500 else log.warning)(
        "database_error", status=problem.status, problem=problem.slug,
        error=type(getattr(exc, "orig", None) or exc).__name__, message=db_errors.server_message(exc))
    if problem.transient:
        setattr(request.state, RETRY_UNIT_OF_WORK, True)
    headers = {"Retry-After": str(problem.retry_after)} if problem.retry_after is not None else None
    return problem_response(problem.status, problem.slug, problem.title, problem.detail, _instance(request),
                            headers, errors=problem.errors or None, **problem.extensions)


async def database_error(request: Request, exc: StatementError) -> Response:
    return database_problem(request, exc) or await unhandled(request, exc)


async def unhandled(request: Request, exc: Exception) -> Response:
    answer = database_problem(request, exc)  # a socket error raised while connecting, say
    if answer is not None:
        return answer
    log.exception("unhandled_error", path=request.url.path)
    return problem_response(500, "internal", "Internal server error",
                            "Something went wrong on our side; the request id identifies it in our logs",
                            _instance(request))


def install(app: FastAPI) -> None:
    app.add_exception_handler(CRMError, lambda r, e: crm_error_response(r, e))  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(NotModified, not_modified)  # type: ignore[arg-type]
    app.add_exception_handler(StaleDataError, stale_data)  # type: ignore[arg-type]
    app.add_exception_handler(StatementError, database_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unhandled)
