"""SMS: texts sent through the organisation's HTTP gateway (`POST /v1/sms`, sent by a worker, on the
timelines as `sms`), and the gateway's settings (`/v1/settings/sms`, admins). SMS share the `mail` scopes."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import Query, Request, Response

from app.api import scoping
from app.api.deps import IfMatch, PageDep, SessionDep, SettingsDep, conditional, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.sms import service
from app.domain.sms.schemas import SmsGatewayIn, SmsGatewayRead, SmsRead, SmsSend

router = Router(prefix="/v1/sms", tags=["mail"])
settings_router = Router(prefix="/v1/settings/sms", tags=["mail"])
Reader = Annotated[Principal, require("mail:read")]
Sender = Annotated[Principal, require("mail:write", Role.member)]
Admin = Annotated[Principal, require("org:read", Role.admin)]
AdminWriter = Annotated[Principal, require("org:write", Role.admin)]


@router.get("", response_model=ListPage[SmsRead], operation_id="listSms", responses=AUTHED)
async def list_sms(
    session: SessionDep, who: Reader, page: PageDep,
    contact_id: Annotated[UUID | None, Query(description="texts linked to this contact")] = None,
    lead_id: Annotated[UUID | None, Query()] = None,
    deal_id: Annotated[UUID | None, Query()] = None,
) -> JSONBytes:
    """Texts sent from here that you may read (those of records you may read, and your own), newest first by
    default (`sort` `created_at` or `-created_at`); keyset pages."""
    result = await service.list_sms(session, who, page, service.filters(contact_id, lead_id, deal_id))
    return JSONBytes(orjson.dumps({"data": [service.dump(s) for s in result.items],
                                   "next_cursor": result.next_cursor}))


@router.post("", status_code=202, response_model=SmsRead, operation_id="sendSms",
             responses={**AUTHED, 409: {"description": "SMS is not configured (`PUT /v1/settings/sms`)"}})
async def send_sms(body: SmsSend, session: SessionDep, who: Sender) -> Response:
    """Send a text through the organisation's gateway: it is `queued` and a worker hands it over (`sent`),
    retrying when the gateway is down or busy (429, 5xx) with back-off; a refusal ends `failed` with `error`.
    `to` is read in the org's phone region; without `contact_id`, `lead_id` or `deal_id` the text goes on the
    timeline of the one contact (else open lead) with that number."""
    named = [k for k, v in (("contact", body.contact_id), ("lead", body.lead_id), ("deal", body.deal_id)) if v]
    scoping.refuse_unreadable(who, named, "Linking the text to these records")
    sms = await service.queue_sms(session, who, body)
    return one(service.dump(sms), sms.version, None, 202, {"Location": f"/v1/sms/{sms.id}"})


@router.get("/{sms_id}", response_model=SmsRead, operation_id="getSms", responses={**AUTHED, **NOT_FOUND})
async def get_sms(sms_id: UUID, session: SessionDep, who: Reader) -> Response:
    """One text, if you may read it."""
    sms = await service.SMS.get(session, who, sms_id)
    return one(service.dump(sms), sms.version, None)


@settings_router.get("", response_model=SmsGatewayRead, operation_id="getSmsSettings",
                     responses={**AUTHED, **NOT_FOUND})
async def get_settings(request: Request, session: SessionDep, settings: SettingsDep, who: Admin) -> Response:
    """The SMS gateway (admins); header values are masked. 404 until it is configured."""
    gw = await service.get_gateway(session, who.org_id)
    conditional(request, gw.version)
    return one(service.dump_gateway(settings, gw), gw.version, None)


@settings_router.put("", response_model=SmsGatewayRead, operation_id="putSmsSettings",
                     responses={**AUTHED, **PRECONDITION})
async def put_settings(body: SmsGatewayIn, session: SessionDep, settings: SettingsDep, who: AdminWriter,
                       expected: IfMatch) -> Any:
    """Configure the generic HTTP gateway (admins): each text is one request to `url` with `method`, `headers`
    and the rendered `body_template` (placeholders `to`, `sender`, `text`, `id`). A 2xx answer means sent;
    408, 425, 429 and 5xx are retried; other answers fail the text. The URL must be public (as webhooks').
    Replaces the settings whole; a header value sent as `********` keeps the stored one."""
    gw = await service.put_gateway(session, settings, who.org_id, body, expected)
    return one(service.dump_gateway(settings, gw), gw.version, None)
