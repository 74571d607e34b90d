"""The public end of lead forms: posted to straight from websites, cross-origin, without credentials."""

from typing import Annotated

import orjson
from fastapi import Header, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.api.deps import SessionDep, SettingsDep
from app.api.problems import NOT_FOUND, RATE_LIMIT_HEADERS, TOO_LARGE, VALIDATION, problem_doc, problem_response
from app.api.ratelimit import client_ip, hit, next_count
from app.api.records import JSONBytes
from app.api.routing import Router
from app.domain.errors import CRMError, Forbidden, PayloadTooLarge, RateLimited, ValidationFailed
from app.domain.flows import form_intake
from app.domain.forms import intake, service
from app.domain.forms.models import Form
from app.domain.forms.schemas import Accepted, plain_names
from app.domain.text import plain_text

router = Router(prefix="/v1/public/forms", tags=["public forms"])
PublicKey = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
THANKS = "<!doctype html><meta charset=utf-8><title>Thank you</title><p>Thank you, we will be in touch shortly.</p>"
ORIGIN_REFUSED = ("<!doctype html><meta charset=utf-8><title>Not sent</title><p>This form cannot be sent from this "
                  "page: the site is not among the form's allowed origins. Please contact us another way.</p>")


class SubmissionsRateLimited(RateLimited):
    keep_changes = True  # the dropped submission kept as spam is committed with the 429


def _cors(form: Form | None, origin: str | None) -> dict[str, str]:
    if form is None or not origin or origin.lower().rstrip("/") not in form.allowed_origins:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


@router.options("/{public_key}/submissions", include_in_schema=False)
async def preflight(public_key: PublicKey, request: Request, session: SessionDep) -> Response:
    """CORS preflight: allowed only for the form's `allowed_origins` (no credentials, ever)."""
    origin = request.headers.get("origin")
    form = await service.by_public_key(session, public_key)
    headers = _cors(form, origin)
    if "Access-Control-Allow-Origin" not in headers:
        return problem_response(403, "forbidden", "Forbidden", f"Origin {origin!r} is not allowed for this form "
                                "(the form's allowed_origins)", request.url.path, headers)
    headers.update({"Access-Control-Allow-Methods": "POST", "Access-Control-Max-Age": "600",
                    "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key"})
    return Response(status_code=204, headers=headers)


class MalformedJSON(CRMError):
    status, slug, title = 400, "malformed-json", "Malformed JSON"


class UnsupportedMediaType(CRMError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"

    def __init__(self) -> None:
        super().__init__("Send application/json, application/x-www-form-urlencoded or multipart/form-data")


async def _read_fields(request: Request, max_bytes: int) -> tuple[dict, bool]:
    """-> (fields, came from an HTML form). JSON objects, urlencoded and multipart (text parts) are accepted."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"a form submission is at most {max_bytes} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        body = await request.body()
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"a form submission is at most {max_bytes} bytes")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedJSON() from None
        if not isinstance(data, dict):
            raise ValidationFailed("send a JSON object of field names to values", loc=("body",))
        return data, False
    if ctype in FORM_TYPES:
        body = await request.body()
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"a form submission is at most {max_bytes} bytes")
        form = await request.form(max_files=0, max_fields=intake.MAX_FIELDS + 1, max_part_size=intake.MAX_VALUE * 4)
        return {k: v for k, v in form.multi_items() if isinstance(v, str)}, True
    raise UnsupportedMediaType()


def _wants_html(request: Request, from_html_form: bool) -> bool:
    return from_html_form and "application/json" not in request.headers.get("accept", "")


def _answer(request: Request, form: Form | None, submission_id: object, from_html_form: bool,
            extra: dict[str, str]) -> Response:
    headers = {**_cors(form, request.headers.get("origin")), **extra}
    if _wants_html(request, from_html_form):
        if form is not None and form.redirect_url:
            return RedirectResponse(form.redirect_url, status_code=303, headers=headers)
        return HTMLResponse(THANKS, status_code=200, headers=headers)
    return JSONBytes(orjson.dumps({"status": "accepted", "id": str(submission_id)}), status_code=202, headers=headers)


@router.post("/{public_key}/submissions", status_code=202, response_model=Accepted, operation_id="submitForm",
             responses={303: {"description": "HTML form posts go on to the form's redirect_url"},
                        **NOT_FOUND, **TOO_LARGE, **VALIDATION, **problem_doc(403, "Origin not allowed for this form"),
                        **problem_doc(415, "Unsupported content type"),
                        429: {**problem_doc(429, "Too many submissions from this address; see Retry-After")[429],
                              "headers": RATE_LIMIT_HEADERS}},
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": {"type": "object", "additionalProperties": {"type": "string"}},
                                      "example": {"first_name": "Ana", "email": "ana@example.com",
                                                  "utm_source": "newsletter"}},
                 "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                 "multipart/form-data": {"schema": {"type": "object"}}}}})
async def submit(
    public_key: PublicKey,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Response:
    """Post a website form: JSON, urlencoded (a plain HTML `<form>`) or multipart. No auth header.

    Fields named like lead fields (`first_name`, `last_name`, `email`, `phone`, `company_name`, `title`,
    `note`) are taken as they are, others per the form's `field_map`; the rest stay on the submission and
    in a note. `utm_*`, `gclid`, `fbclid`, `page_url` and `referrer` are kept. JSON answers 202; an HTML
    post answers 303 to the form's `redirect_url`.

    Dropped submissions are answered like accepted ones (202 with the id of the stored submission) and kept
    with `status: spam` for `CRM_FORM_SPAM_RETENTION_DAYS`, with their `spam_reason`: `honeypot` (the hidden
    `_hp` field was filled) or `too_fast` (with `min_fill_seconds` set: `_ts`, the time the form was shown in
    milliseconds since the epoch as `Date.now()` gives it, is missing or less than that many seconds ago). Rate
    limit: `CRM_FORM_RATE_LIMIT` per form and client address per `CRM_FORM_RATE_WINDOW_SECONDS` (429 with
    `Retry-After`; kept as `rate_limited` up to the limit's worth per window). `GET
    /v1/forms/{id}/submissions?status=spam` lists them; the form counts them (`spam_count`, `last_spam_at`).
    An HTML post from an origin the form does not allow gets a short HTML page (403)."""
    redis = getattr(request.app.state, "redis", None)
    ip = client_ip(request, settings.trusted_proxies)
    verdict = await hit(redis, f"form:{public_key}:{ip}", settings.form_rate_limit, settings.form_rate_window_seconds)
    try:
        raw, from_html_form = await _read_fields(request, settings.form_max_body_bytes)
        fields = plain_names(intake.validate_shape(raw))
    except CRMError:
        if verdict.allowed:
            raise
        fields, from_html_form = None, False  # over the limit and unreadable: refused, nothing kept
    form = await service.by_public_key(session, public_key, intake=True)
    origin = request.headers.get("origin")
    request.state.cors_headers = _cors(form, origin)  # errors from here on are readable by allowed pages
    if origin and form.allowed_origins and origin.lower().rstrip("/") not in form.allowed_origins:
        if _wants_html(request, from_html_form):  # a person's browser shows this page, not raw JSON
            return HTMLResponse(ORIGIN_REFUSED, status_code=403)
        raise Forbidden("This form does not accept submissions from that origin")
    now = service.now()
    incoming = intake.Incoming(
        fields=fields or {}, query=dict(request.query_params), referer_header=request.headers.get("referer"),
        user_agent=plain_text(request.headers.get("user-agent", "")) or None, ip=ip,
        idempotency_key=idempotency_key)
    if not verdict.allowed:
        # Kept too, so that a form whose visitors hit the limit is noticed; bounded: at most the limit's worth
        # of rows per form and address per window, the rest is only refused.
        kept = await hit(redis, f"form-spam:{public_key}:{ip}", settings.form_rate_limit,
                         settings.form_rate_window_seconds)
        if fields is not None and kept.allowed:
            await form_intake.keep_spam(session, form, incoming, now, "rate_limited")
        raise SubmissionsRateLimited(verdict.reset_seconds, "Too many submissions from your address; try again "
                                     "later", verdict.headers())
    reason = intake.spam_reason(form, incoming.fields, now)
    if reason is not None:  # looks accepted to the sender; kept as spam with its reason
        spam = await form_intake.keep_spam(session, form, incoming, now, reason)
        return _answer(request, form, spam.id, from_html_form, verdict.headers())
    if idempotency_key:
        previous = await intake.existing(session, form, idempotency_key)
        if previous is not None:
            response = _answer(request, form, previous.id, from_html_form, verdict.headers())
            response.headers["Idempotent-Replayed"] = "true"
            return response

    async def turns(f: Form) -> int | None:  # round-robin turns of this form, without locking its row
        return await next_count(redis, f"form-turn:{f.org_id}:{f.id}")

    submission = await form_intake.accept(session, form, incoming, now, turns)
    return _answer(request, form, submission.id, from_html_form, verdict.headers())


submit.open_query = True  # type: ignore[attr-defined]  # the page URL's utm_* and click ids ride along (query_check)
