"""Telephony: calls logged onto the timelines of the records they belong to (`POST /v1/calls`, or the provider's
signed events at `/v1/public/telephony/{org_id}/calls`), the screen pop for a ringing number, click-to-call, and
the provider's settings (`/v1/settings/telephony`, admins)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import Query, Request, Response

from app.api import scoping
from app.api.deps import IfMatch, PageDep, SessionDep, SettingsDep, conditional, require
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.api.user_filter import ME_DOC, UserRef, user_id_of
from app.domain import kinds
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.listing import belongs_to
from app.domain.telephony import lookup as screen_pop
from app.domain.telephony import service
from app.domain.telephony.models import Call
from app.domain.telephony.schemas import (
    CallCreate,
    CallRead,
    Lookup,
    OriginateIn,
    OriginationRead,
    TelephonySettingsIn,
    TelephonySettingsRead,
)

router = Router(prefix="/v1/calls", tags=["telephony"])
settings_router = Router(prefix="/v1/settings/telephony", tags=["telephony"])
Reader = Annotated[Principal, require("calls:read")]
Writer = Annotated[Principal, require("calls:write", Role.member)]
Admin = Annotated[Principal, require("org:read", Role.admin)]
AdminWriter = Annotated[Principal, require("org:write", Role.admin)]
CARD = ("contact", "lead", "company", "deal")


@router.get("", response_model=ListPage[CallRead], operation_id="listCalls", responses=AUTHED)
async def list_calls(
    session: SessionDep, who: Reader, page: PageDep,
    contact_id: Annotated[UUID | None, Query(description="calls with this contact (if you may read it)")] = None,
    lead_id: Annotated[UUID | None, Query(description="calls with this lead (if you may read it)")] = None,
    user_id: Annotated[UserRef | None, Query(description=f"who took or made the call: {ME_DOC}")] = None,
    status: Annotated[Literal["answered", "missed", "busy", "failed"] | None, Query()] = None,
) -> JSONBytes:
    """Calls you may read (as you may read the `call` activities logging them), newest first by default (`sort`
    `created_at` or `-created_at`); keyset pages."""
    where = service.filters(None, None, user_id_of(user_id, who, "user_id"), status)
    for parent, value in ((kinds.CONTACT, contact_id), (kinds.LEAD, lead_id)):
        if value is not None:
            where.append(belongs_to(getattr(Call, f"{parent.object_type}_id"), parent, value, who))
    result = await service.list_calls(session, who, page, where)
    return JSONBytes(orjson.dumps({"data": [service.dump(c) for c in result.items],
                                   "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=CallRead, operation_id="createCall",
             responses={**AUTHED, **CONFLICT})
async def create_call(body: CallCreate, session: SessionDep, who: Writer) -> Response:
    """Log a call. The customer's number (`from` when inbound, `to` when outbound) is read in E.164 with the org's
    `default_phone_region` and matched to the oldest contact with it, else the oldest open lead. An unknown
    inbound number becomes a lead (`source: phone`) for the next of the telephony settings' `assignees`
    (round-robin among the active, not out-of-office ones), with a call-back task (`task_id`). Every call is
    logged as a done `call` activity (`activity_id`) on that record's timeline; a missed call also opens a
    call-back task for the record's owner. Writes `call.created` (and the lead's and activities' events)."""
    call, _ = await service.record_call(session, who, body)
    return one(service.dump(call), call.version, None, 201, {"Location": f"/v1/calls/{call.id}"})


@router.get("/lookup", response_model=Lookup, operation_id="lookupCaller", responses=AUTHED)
async def lookup_caller(
    session: SessionDep, who: Reader,
    phone: Annotated[str, Query(min_length=1, max_length=40, examples=["+49 30 1234567"], description=(
        "the number calling: E.164, or national in the org's `default_phone_region` (`030 1234567`)"))],
) -> JSONBytes:
    """The screen pop for a ringing number, in one database round trip: the contact with this number, the oldest
    open lead with it, the contact's company (else the company with the number) and up to 50 open deals of the
    contact or company, newest first; each as its own GET returns it and only if you may read it; `null` (and
    `[]`) when unknown. Needs `calls:read` and the read scopes of contacts, leads, companies and deals."""
    scoping.refuse_unreadable(who, CARD, "The caller's card")
    return JSONBytes(await screen_pop.lookup_json(session, who, phone))


@router.post("/originate", status_code=202, response_model=OriginationRead, operation_id="originateCall",
             responses={**AUTHED, 409: {"description": "Click-to-call is not configured (`originate_url`)"}})
async def originate_call(body: OriginateIn, session: SessionDep, who: Writer) -> JSONBytes:
    """Click-to-call: a worker asks the provider (`originate_url`, with `auth_header` as `Authorization`) to ring
    `user_id`'s phone and then dial `to`, sending `{"id", "to", "user": {"id", "email", "name"}}` as JSON.
    Retried when the provider is down or busy (408, 425, 429, 5xx, timeouts) with back-off; the call itself is
    logged when the provider reports it."""
    row = await service.originate(session, who, body)
    return JSONBytes(orjson.dumps(service.dump_origination(row)), status_code=202)


@router.get("/{call_id}", response_model=CallRead, operation_id="getCall", responses={**AUTHED, **NOT_FOUND})
async def get_call(call_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """One call, if you may read it."""
    call = await service.CALL.get(session, who, call_id)
    conditional(request, call.version)
    return one(service.dump(call), call.version, None)


@settings_router.get("", response_model=TelephonySettingsRead, operation_id="getTelephonySettings",
                     responses={**AUTHED, **NOT_FOUND})
async def get_settings(request: Request, session: SessionDep, settings: SettingsDep, who: Admin) -> Response:
    """The telephony provider's settings (admins); `auth_header` and `webhook_secret` are masked. 404 until they
    are configured."""
    row = await service.get_settings(session, who.org_id)
    conditional(request, row.version)
    return one(service.dump_settings(settings, row), row.version, None)


@settings_router.put("", response_model=TelephonySettingsRead, operation_id="putTelephonySettings",
                     responses={**AUTHED, **PRECONDITION})
async def put_settings(body: TelephonySettingsIn, session: SessionDep, settings: SettingsDep, who: AdminWriter,
                       expected: IfMatch) -> Any:
    """Configure telephony (admins): `originate_url` and `auth_header` for click-to-call (the URL must be public,
    as webhooks'), `webhook_secret` for the provider's signed call events (Standard Webhooks, posted to
    `webhook_path`), and the `assignees` of unknown callers' leads. Replaces the settings whole; a secret sent as
    `********` keeps the stored one."""
    row = await service.put_settings(session, settings, who.org_id, body, expected)
    return one(service.dump_settings(settings, row), row.version, None)
