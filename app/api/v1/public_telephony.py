"""Where the telephony provider posts call events: no API key, a Standard Webhooks signature made with the
organisation's `webhook_secret` instead."""

from __future__ import annotations

import time
from typing import Annotated
from uuid import UUID

from fastapi import Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api.deps import SessionDep, SettingsDep
from app.api.problems import TOO_LARGE, VALIDATION, problem_doc
from app.api.records import one
from app.api.routing import Router
from app.db import set_org
from app.domain.errors import PayloadTooLarge, Unauthorized
from app.domain.sealing import Unsealable
from app.domain.telephony import service
from app.domain.telephony.schemas import CallCreate, CallRead
from app.domain.webhooks import signing

router = Router(prefix="/v1/public/telephony", tags=["telephony"])
MAX_BODY = 64 * 1024
REFUSED = ("Not a genuine call event: webhook-id, webhook-timestamp (within 5 minutes) and webhook-signature, "
           "signed with the organisation's telephony webhook_secret, are required")


@router.post("/{org_id}/calls", status_code=201, response_model=CallRead, operation_id="receiveCallEvent",
             responses={200: {"description": "This webhook-id was received before: the call stored then",
                              "model": CallRead},
                        **problem_doc(401, "Missing, stale or wrong signature (or no such organisation)"),
                        **VALIDATION, **TOO_LARGE},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"$ref": "#/components/schemas/CallCreate"}}}}})
async def receive_call_event(
    org_id: Annotated[UUID, Path(description="the organisation's id (`webhook_path` in its telephony settings)")],
    request: Request, session: SessionDep, settings: SettingsDep,
) -> Response:
    """A call reported by the telephony provider, processed as `POST /v1/calls` (the same body). Signed as our
    own webhooks are (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
    HMAC-SHA256 of "{id}.{timestamp}.{body}">`) with the `webhook_secret` of the organisation's telephony
    settings. A missing or wrong signature, or a timestamp more than 5 minutes off, is a 401 and nothing is
    stored; an organisation that does not exist or has no secret answers the same. A `webhook-id` received
    before answers 200 with the call it stored (a provider's retry is never a second call)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"a call event is at most {MAX_BODY} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"a call event is at most {MAX_BODY} bytes")
    await set_org(session, org_id)
    row = await service.settings_of(session, org_id)
    try:
        secret = service.secrets_of(settings, row).get("webhook_secret") if row is not None else None
    except Unsealable:  # a secret no configured key opens verifies nothing: as if none were set
        secret = None
    if not secret or signing.verify(str(secret), request.headers, raw, time.time()) is not None:
        raise Unauthorized(REFUSED)
    try:
        body = CallCreate.model_validate_json(raw or b"null")
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    event_id = request.headers["webhook-id"][:255]
    call, stored = await service.record_call(session, service.line(org_id, None), body, event_id)
    return one(service.dump(call), call.version, None, 201 if stored else 200,
               {"Location": f"/v1/calls/{call.id}"} if stored else None)
