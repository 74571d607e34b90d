"""RFC 9457 problem+json: the one shape of every error response, and its OpenAPI description."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "email"]])
    msg: str = Field(examples=["value is not a valid email address"])
    type: str = Field(examples=["value_error"])


class Problem(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["/problems/not-found"], description="stable identifier of the problem kind")
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["Contact not found"])
    instance: str = Field(examples=["/v1/contacts/0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"])
    errors: list[FieldError] | None = Field(None, description="for 400/422: what is wrong, where")


def problem_response(status: int, slug: str, title: str, detail: str, instance: str,
                     headers: dict[str, str] | None = None, **extensions: Any) -> Response:
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, "instance": instance}
    body.update({k: v for k, v in extensions.items() if v is not None})
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_doc(status: int, description: str) -> dict[str, Any]:
    return {status: {"model": Problem, "description": description,
                     "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


UNAUTHORIZED = problem_doc(401, "Missing, invalid or expired credentials")
FORBIDDEN = problem_doc(403, "The role or the API key's scopes do not allow this")
NOT_FOUND = problem_doc(404, "No such record in your organisation")
CONFLICT = problem_doc(409, "Conflicts with the current state")
PRECONDITION = problem_doc(412, "If-Match does not match the current version")
VALIDATION = problem_doc(422, "Invalid input; `errors` names each field")
BAD_REQUEST = problem_doc(400, "Malformed request (e.g. invalid JSON)")
TOO_LARGE = problem_doc(413, "Request body too large")
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "requests allowed in the current window", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "requests left in the current window", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "seconds until the window resets", "schema": {"type": "integer"}},
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}},
}
TOO_MANY = {429: {**problem_doc(429, "Too many attempts; see `Retry-After` and `RateLimit-*`")[429],
                  "headers": RATE_LIMIT_HEADERS}}
RATE_LIMITED = {429: {**TOO_MANY[429], "description": (
    "Too many requests for this credential (`CRM_RATE_LIMIT_PER_CREDENTIAL` per "
    "`CRM_RATE_LIMIT_WINDOW_SECONDS`) or, on /v1/auth, from this address (`CRM_RATE_LIMIT_AUTH_PER_IP`); "
    "retry after `Retry-After` seconds"),
    "headers": RATE_LIMIT_HEADERS}}

AUTHED = {**UNAUTHORIZED, **FORBIDDEN, **VALIDATION, **RATE_LIMITED}
"""Responses every authenticated route can give."""
