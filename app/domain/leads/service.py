"""Leads: capture, qualification, and conversion into a contact (+ company, + deal) in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.companies import service as companies
from app.domain.companies.models import Company
from app.domain.companies.schemas import CompanyCreate
from app.domain.concurrency import check_version
from app.domain.contacts import service as contacts
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate
from app.domain.errors import Conflict, ValidationFailed
from app.domain.events import service as events
from app.domain.leads.models import OPEN_STATUSES, Lead
from app.domain.leads.schemas import LeadConvert, LeadCreate, LeadRead, LeadUpdate
from app.domain.records import Kind, apply, prepare_values, reassign_owner, same_person

LEAD = Kind(Lead, "lead", "Lead", LeadRead)


async def create(session: AsyncSession, actor: Principal, body: LeadCreate | dict[str, Any],
                 **server_fields: Any) -> Lead:
    data = body.model_dump(mode="python") if isinstance(body, LeadCreate) else body
    values = await prepare_values(session, actor, "lead", data)
    if not values.get("source") and actor.type == "api_key":
        values["source"] = "api"
    return await LEAD.created(session, actor, Lead(org_id=actor.org_id, **values, **server_fields))


async def update(session: AsyncSession, actor: Principal, lead_id: UUID, patch: LeadUpdate,
                 expected_version: int | None) -> Lead:
    lead = await LEAD.get(session, actor.org_id, lead_id, for_update=True)
    check_version(lead.version, expected_version)
    if lead.status == "converted" and patch.status is not None and patch.status != "converted":
        raise ValidationFailed("a converted lead stays converted", loc=("body", "status"))
    before = LEAD.dump(lead)
    values = await prepare_values(session, actor, "lead", patch.model_dump(exclude_unset=True), lead)
    apply(lead, values, required=("status",))
    return await LEAD.updated(session, actor, lead, before)


async def find_open_by_email_or_phone(session: AsyncSession, org_id: UUID, email: str | None,
                                      phone: str | None) -> Lead | None:
    match = same_person(Lead, email, phone)
    if match is None:
        return None
    return await session.scalar(LEAD.scoped(org_id).where(Lead.status.in_(OPEN_STATUSES), match)
                                .order_by(Lead.created_at, Lead.id).limit(1))


async def convert(session: AsyncSession, actor: Principal, lead_id: UUID, body: LeadConvert) -> dict[str, Any]:
    """The lead becomes a contact (reused when its email or phone is already known), optionally a company
    (reused by name) and a deal; the lead is marked converted. All or nothing."""
    lead = await LEAD.get(session, actor.org_id, lead_id, for_update=True)
    if lead.status == "converted":
        raise Conflict("The lead is already converted", contact_id=str(lead.contact_id))
    before = LEAD.dump(lead)
    owner = Principal(actor.org_id, actor.type, actor.id, actor.role, actor.scopes, lead.owner_id)

    company = None
    if body.create_company and lead.company_name:
        company = await session.scalar(
            companies.COMPANY.scoped(actor.org_id).where(func.lower(Company.name) == lead.company_name.lower())
            .order_by(Company.created_at).limit(1))
        if company is None:
            company = await companies.create(session, owner, CompanyCreate(name=lead.company_name))

    contact = await contacts.find_by_email_or_phone(session, actor.org_id, lead.email, lead.phone)
    if contact is None:
        contact = await contacts.create(session, owner, {
            "first_name": lead.first_name, "last_name": lead.last_name or (None if lead.first_name else lead.title),
            "email": lead.email, "phone": lead.phone, "source": lead.source, "utm": lead.utm,
            "company_id": company.id if company else None,
        })
    elif company is not None and contact.company_id is None:
        contact_before = contacts.CONTACT.dump(contact)
        contact.company_id = company.id
        await contacts.CONTACT.updated(session, actor, contact, contact_before)

    deal = None
    if body.create_deal:
        title = body.deal_title or lead.title or lead.company_name or " ".join(
            p for p in (lead.first_name, lead.last_name) if p) or "Deal"
        deal = await deals.create(session, owner, DealCreate(
            title=title, pipeline_id=body.pipeline_id, stage_id=body.stage_id, value=body.value,
            contact_id=contact.id, company_id=company.id if company else None))

    lead.status = "converted"
    lead.converted_at = datetime.now(UTC)
    lead.contact_id, lead.company_id, lead.deal_id = contact.id, company.id if company else None, (
        deal.id if deal else None)
    await LEAD.updated(session, actor, lead, before)
    result = {
        "lead": LEAD.dump(lead),
        "contact": contacts.CONTACT.dump(contact),
        "company": companies.COMPANY.dump(company) if company else None,
        "deal": deals.DEAL.dump(deal) if deal else None,
    }
    await events.emit(session, actor, "lead.converted", "lead", lead.id, actor.org_id, result, lead.version)
    return result


async def mark_first_response(session: AsyncSession, org_id: UUID, lead_id: UUID, at: datetime) -> None:
    """The first completed activity on a lead stamps its response time (once)."""
    lead = await LEAD.get(session, org_id, lead_id, include_deleted=True)
    if lead.first_response_at is None:
        lead.first_response_at = at
        await session.flush()


async def reassign(session: AsyncSession, actor: Principal, from_user: UUID, to_user: UUID) -> int:
    """A leaving rep's open leads go to a colleague."""
    return await reassign_owner(session, actor, LEAD, (Lead.owner_id == from_user) & Lead.status.in_(OPEN_STATUSES),
                                from_user, to_user)
