"""Every problem type the API answers with: the page behind each `type` URI (`GET /problems/{slug}`).

A `type` is a link a developer will click. Each slug the server can emit is described here once: what it means,
when it happens and what to do. tests/test_problem_pages.py walks the error classes and every literal slug in
the code and fails on one that is missing here (or on an entry nothing emits any more)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        return f"/problems/{self.slug}"


_TYPES = [
    ProblemType("bad-request", 400, "Bad request",
                "The request could not be read as sent: a header or query value has the wrong form (an "
                "`If-Match` that is not an ETag, a malformed cursor header), or the request is not allowed in "
                "this form. `detail` says which part; fix the request and send it again."),
    ProblemType("malformed-json", 400, "Malformed JSON",
                "The body is not valid JSON (or not a JSON object where one is expected). `errors` points at the "
                "position the parser stopped at. Send `Content-Type: application/json` with a valid document."),
    ProblemType("bad-idempotency-key", 400, "Bad Idempotency-Key",
                "The `Idempotency-Key` header is empty, too long or has characters outside printable ASCII. "
                "Use a fresh random value (a UUID) per logical operation, at most 255 characters."),
    ProblemType("unauthorized", 401, "Authentication required",
                "No credential, or one that is invalid, expired or revoked, or whose user was deactivated. Send "
                "`Authorization: Bearer <access token or API key>`; refresh an expired access token with "
                "`POST /v1/auth/token` (`grant_type=refresh_token`)."),
    ProblemType("invalid-credentials", 401, "Invalid credentials",
                "The email and password (or the OAuth2 client credentials) do not match an active account. "
                "Repeated failures lock the account or address for a while (then `rate-limited`)."),
    ProblemType("password-expired", 401, "Password expired",
                "The password is older than the organisation's `password_max_age_days`. Set a new one with "
                "`POST /v1/me/password` (the current password proves it is you), then log in again."),
    ProblemType("refresh-token-reused", 401, "Refresh token reused",
                "A refresh token was used a second time. Each refresh token works once; a reuse means it may "
                "have leaked, so every token of that login family was revoked. Log in again."),
    ProblemType("forbidden", 403, "Forbidden",
                "The caller is authenticated but may not do this: its role is too low, the credential lacks a "
                "scope (`missing_scopes` lists them), the record is outside what the caller may see, or an "
                "origin is not allowed for a form. Ask an admin for the role or a key with the scope."),
    ProblemType("not-found", 404, "Not found",
                "No such route, or no record with this id that the caller may see. Records of other "
                "organisations and deleted records answer the same way, so a 404 never reveals that something "
                "exists elsewhere."),
    ProblemType("method-not-allowed", 405, "Method not allowed",
                "The route exists but not with this HTTP method; the `Allow` header lists the methods it takes."),
    ProblemType("not-acceptable", 406, "Not acceptable",
                "The `Accept` header asks for a media type this operation cannot produce (JSON, or CSV where "
                "the operation offers it)."),
    ProblemType("conflict", 409, "Conflict",
                "The write clashes with the current state: a unique value (an email, an external id, a key) "
                "is taken, or the record is in a state that does not allow it. `detail` names the clash; read "
                "the record and decide."),
    ProblemType("concurrent-update", 409, "Concurrent update",
                "Another request changed the same record at the same moment. Fetch it again and retry your "
                "change (with `If-Match` to be sure you overwrite what you saw)."),
    ProblemType("transaction-conflict", 409, "Transaction conflict",
                "The database could not order this request with another running at the same time (a "
                "serialization failure or deadlock that persisted after one retry). Retry the request; with an "
                "`Idempotency-Key` the retry is safe."),
    ProblemType("idempotency-in-flight", 409, "Request in progress",
                "A request with the same `Idempotency-Key` is still being processed. Wait and retry: you will "
                "get its stored answer."),
    ProblemType("gone", 410, "Gone",
                "What the request points at no longer exists: a changes-feed cursor older than the retention "
                "(`resync: true`: export again, then follow the feed), or a one-time link that was used."),
    ProblemType("precondition-failed", 412, "Precondition failed",
                "`If-Match` named a version that is no longer current: someone changed the record since you "
                "read it. GET it again (the response has the new ETag), reapply your change, send it again."),
    ProblemType("payload-too-large", 413, "Request body too large",
                "The body is over the limit for this route (see `detail`). Split a batch, or upload a large "
                "CSV through the imports API."),
    ProblemType("unsupported-media-type", 415, "Unsupported media type",
                "The body's `Content-Type` is not one this operation reads. JSON routes take "
                "`application/json`; public forms also take urlencoded and multipart posts."),
    ProblemType("validation", 422, "Validation failed",
                "The input is well-formed but not valid: `errors` lists each problem as `{loc, msg, type}`, "
                "`loc` naming the place (`body`, `query` or `path`, then the field). Unknown fields and "
                "parameters are refused the same way, so typos never pass silently."),
    ProblemType("idempotency-key-reused", 422, "Idempotency-Key reused",
                "The `Idempotency-Key` was already used for a different request (another method, path or "
                "body). Use a new key for a new operation."),
    ProblemType("rate-limited", 429, "Too many requests",
                "The credential (or, for login and public forms, the address) went over its rate limit, or a "
                "login is locked after repeated failures. Wait for `Retry-After` seconds; the `RateLimit-*` "
                "headers say how much is left."),
    ProblemType("internal", 500, "Internal server error",
                "Something failed on the server's side. Nothing you sent is to blame; the response's "
                "`X-Request-ID` identifies the failure in the server's logs. Retrying later may work."),
    ProblemType("unavailable", 503, "Service unavailable",
                "The database or queue is unreachable or restarting. Retry after `Retry-After` seconds; "
                "requests with an `Idempotency-Key` are safe to retry."),
    ProblemType("timeout", 503, "Timed out",
                "The database did not answer within the statement timeout. Narrow the request (smaller page, "
                "tighter filters) or retry later."),
]

PROBLEM_TYPES: dict[str, ProblemType] = {t.slug: t for t in _TYPES}
