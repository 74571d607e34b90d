"""SMS: the org's gateway settings (admin) and `POST /v1/sms`, which writes the text `queued` for a worker
(`app.domain.sms.sending`), linked to the contact, lead or deal it belongs to."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.contacts.models import Contact
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.domain.leads.models import Lead
from app.domain.normalize import normalize_phone
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, org_settings, require_ref
from app.domain.sealing import seal, unseal
from app.domain.sms.models import Sms, SmsGateway
from app.domain.sms.schemas import MASK, SmsGatewayIn, SmsSend
from app.domain.templates import render
from app.ids import new_id
from app.settings import Settings

SMS = Kind.of(kinds.SMS)
SORTS = {"created_at": Sms.created_at}
JOBS = "sms_jobs"
OPEN_LEAD = ("new", "working", "qualified")


def _now() -> datetime:
    return datetime.now(UTC)


# --- the gateway ---------------------------------------------------------------------------------------


async def gateway(session: AsyncSession, org_id: UUID, for_update: bool = False) -> SmsGateway | None:
    stmt = select(SmsGateway).where(SmsGateway.org_id == org_id)
    return await session.scalar(stmt.with_for_update() if for_update else stmt)


async def get_gateway(session: AsyncSession, org_id: UUID) -> SmsGateway:
    found = await gateway(session, org_id)
    if found is None:
        raise NotFound("SMS is not configured: PUT /v1/settings/sms")
    return found


def headers_of(settings: Settings, gw: SmsGateway) -> dict[str, str]:
    return unseal(settings, gw.sealed_headers)


def dump_gateway(settings: Settings, gw: SmsGateway) -> dict[str, Any]:
    return {"url": gw.url, "method": gw.method, "headers": dict.fromkeys(headers_of(settings, gw), MASK),
            "body_template": gw.body_template, "from": gw.sender, "rate_per_minute": gw.rate_per_minute,
            "updated_at": gw.updated_at, "version": gw.version}


async def put_gateway(session: AsyncSession, settings: Settings, org_id: UUID, body: SmsGatewayIn,
                      expected_version: int | None) -> SmsGateway:
    """Replace the settings whole; a header sent as the mask keeps its stored value."""
    render.check_one("url", body.url)
    render.check_one("body_template", body.body_template)
    gw = await gateway(session, org_id, for_update=True)
    kept = headers_of(settings, gw) if gw is not None else {}
    masked = [name for name, value in body.headers.items() if value == MASK and name not in kept]
    if masked:
        raise ValidationFailed(f"headers.{masked[0]}: no stored value to keep; send the real value",
                               loc=("body", "headers", masked[0]))
    headers = {name: kept[name] if value == MASK else value for name, value in body.headers.items()}
    values = {"url": body.url, "method": body.method, "body_template": body.body_template, "sender": body.from_,
              "rate_per_minute": body.rate_per_minute, "sealed_headers": seal(settings, headers)}
    if gw is None:
        if expected_version is not None:
            check_version(0, expected_version)
        gw = SmsGateway(org_id=org_id, **values)
        session.add(gw)
    else:
        check_version(gw.version, expected_version)
        for key, value in values.items():
            setattr(gw, key, value)
        gw.updated_at = _now()
    await session.flush()
    await session.refresh(gw)
    return gw


# --- messages ------------------------------------------------------------------------------------------


async def phone_of(session: AsyncSession, org_id: UUID, raw: str, field: str = "to") -> str:
    region = (await org_settings(session, org_id)).default_phone_region
    try:
        return normalize_phone(raw, region)
    except ValueError as exc:
        raise ValidationFailed(f"{field}: {exc}", loc=("body", field)) from None


async def _owner_of_number(session: AsyncSession, who: Principal, phone: str) -> tuple[UUID | None, UUID | None]:
    """The one contact with this number the caller may read, else the one open lead: whose timeline a text
    without an explicit record belongs on. Several candidates: none (no guessing)."""
    contacts = list(await session.scalars(select(Contact.id).where(
        kinds.CONTACT.readable(who), Contact.phone == phone).limit(2)))
    if len(contacts) == 1:
        return contacts[0], None
    if contacts:
        return None, None
    leads = list(await session.scalars(select(Lead.id).where(
        kinds.LEAD.readable(who), Lead.phone == phone, Lead.status.in_(OPEN_LEAD)).limit(2)))
    return None, leads[0] if len(leads) == 1 else None


async def queue_sms(session: AsyncSession, who: Principal, body: SmsSend) -> Sms:
    gw = await gateway(session, who.org_id)
    if gw is None:
        raise Conflict("SMS is not configured for this organisation: an admin sets PUT /v1/settings/sms first")
    to = await phone_of(session, who.org_id, body.to)
    for kind, value in (("contact", body.contact_id), ("lead", body.lead_id), ("deal", body.deal_id)):
        if value is not None:
            await require_ref(session, Kind.of(kinds.named(kind)), who, value, f"{kind}_id")
    contact_id, lead_id = body.contact_id, body.lead_id
    if contact_id is None and lead_id is None and body.deal_id is None:
        contact_id, lead_id = await _owner_of_number(session, who, to)
    now = _now()
    sms = Sms(org_id=who.org_id, id=new_id(), status="queued", to_phone=to, sender=gw.sender, text=body.text,
              contact_id=contact_id, lead_id=lead_id, deal_id=body.deal_id, created_by=who.user_id,
              next_attempt_at=now)
    session.add(sms)
    await session.flush()
    send_after_commit(session, sms)
    return sms


def send_after_commit(session: AsyncSession, sms: Sms) -> None:
    session.info.setdefault(JOBS, []).append((sms.org_id, sms.id))


def committed_sms_jobs(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    return session.info.pop(JOBS, [])


def filters(contact_id: UUID | None, lead_id: UUID | None, deal_id: UUID | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for column, value in ((Sms.contact_id, contact_id), (Sms.lead_id, lead_id), (Sms.deal_id, deal_id)):
        if value is not None:
            where.append(column == value)
    return where


async def list_sms(session: AsyncSession, who: Principal, page: PageRequest,
                   where: Iterable[ColumnElement[bool]]) -> Page[Sms]:
    return await keyset_page(session, SMS.readable(who).where(*where), page, SORTS, Sms.id)


def dump(sms: Sms) -> dict[str, Any]:
    return SMS.dump(sms)
