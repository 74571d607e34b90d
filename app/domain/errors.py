"""The one domain error hierarchy. The API maps each to an RFC 9457 problem in one place."""

from __future__ import annotations

from typing import Any, ClassVar


class CRMError(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal server error"
    keep_changes: ClassVar[bool] = False  # commit the unit of work even though we answer with an error

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions

    @property
    def type(self) -> str:
        return f"/problems/{self.slug}"


class BadRequest(CRMError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(CRMError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(CRMError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(CRMError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(CRMError):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(CRMError):
    status, slug, title = 410, "gone", "Gone"


class PreconditionFailed(CRMError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(CRMError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class ValidationFailed(CRMError):
    """422 with FastAPI's `errors: [{loc, msg, type}]` shape."""

    status, slug, title = 422, "validation", "Validation failed"

    def __init__(self, msg: str, loc: tuple[str | int, ...] | list[str | int] = ("body",),
                 type: str = "value_error") -> None:
        super().__init__(msg)
        self.errors = [{"loc": list(loc), "msg": msg, "type": type}]


class RateLimited(CRMError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or f"Rate limit reached; retry in {retry_after} s")
        self.retry_after = retry_after
        self.headers = headers or {}


class ServiceUnavailable(CRMError):
    status, slug, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, retry_after: int | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.retry_after = retry_after
