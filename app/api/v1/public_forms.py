"""The public end of lead forms: posted to straight from websites, cross-origin, without credentials."""

from typing import Annotated
from uuid import uuid4

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
    post answers 303 to the form's `redirect_url`. A filled `_hp` honeypot is answered like success and
    nothing is stored. Rate limit: `CRM_FORM_RATE_LIMIT` per form and client address per
    `CRM_FORM_RATE_WINDOW_SECONDS` (429 with `Retry-After`)."""
    verdict = await hit(getattr(request.app.state, "redis", None),
                        f"form:{public_key}:{client_ip(request, settings.trusted_proxies)}",
                        settings.form_rate_limit, settings.form_rate_window_seconds)
    if not verdict.allowed:
        raise RateLimited(verdict.reset_seconds, "Too many submissions from your address; try again later",
                          verdict.headers())
    raw, from_html_form = await _read_fields(request, settings.form_max_body_bytes)
    fields = plain_names(intake.validate_shape(raw))
    if fields.get("_hp", "").strip():  # a bot: looks accepted, touches nothing
        return _answer(request, None, uuid4(), from_html_form, verdict.headers())
    form = await service.by_public_key(session, public_key)
    origin = request.headers.get("origin")
    request.state.cors_headers = _cors(form, origin)  # errors from here on are readable by allowed pages
    if origin and form.allowed_origins and origin.lower().rstrip("/") not in form.allowed_origins:
        raise Forbidden("This form does not accept submissions from that origin")
    now = service.now()
    if intake.is_bot(form, fields, now):
        return _answer(request, form, uuid4(), from_html_form, verdict.headers())
    if idempotency_key:
        previous = await intake.existing(session, form, idempotency_key)
        if previous is not None:
            response = _answer(request, form, previous.id, from_html_form, verdict.headers())
            response.headers["Idempotent-Replayed"] = "true"
            return response
    incoming = intake.Incoming(
        fields=fields, query=dict(request.query_params), referer_header=request.headers.get("referer"),
        user_agent=plain_text(request.headers.get("user-agent", "")) or None,
        ip=client_ip(request, settings.trusted_proxies),
        idempotency_key=idempotency_key)
    redis = getattr(request.app.state, "redis", None)

    async def turns(f: Form) -> int | None:  # round-robin turns of this form, without locking its row
        return await next_count(redis, f"form-turn:{f.org_id}:{f.id}")

    submission = await form_intake.accept(session, form, incoming, now, turns)
    return _answer(request, form, submission.id, from_html_form, verdict.headers())


submit.open_query = True  # type: ignore[attr-defined]  # the page URL's utm_* and click ids ride along (query_check)
