"""A lead converted: it becomes a contact (reused when its email or phone is already known), optionally a
company (reused by name) and a deal, and is marked converted. All or nothing, in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import locks
from app.domain.auth.principal import Principal
from app.domain.catalog import rules as reference_lists
from app.domain.companies import service as companies
from app.domain.companies.models import Company
from app.domain.companies.schemas import CompanyCreate
from app.domain.contacts import service as contacts
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate
from app.domain.errors import Conflict
from app.domain.events import service as events
from app.domain.leads.schemas import LeadConvert
from app.domain.leads.service import LEAD


async def convert(session: AsyncSession, actor: Principal, lead_id: UUID, body: LeadConvert) -> dict[str, Any]:
    """Locks by the rule of `app.domain.flows`: the person's and the company's keys (a form submission or
    another conversion of the same person finds what this one makes), the target pipeline, then the lead."""
    lead = await LEAD.get(session, actor, lead_id)
    keys = locks.person(actor.org_id, lead.email, lead.phone)
    if body.create_company and lead.company_name:
        keys.append(f"company:{actor.org_id}:{lead.company_name.lower()}")
    await locks.keys(session, *keys)
    if body.create_deal:
        await locks.pipeline_shared(session, actor.org_id, pipeline_id=body.pipeline_id, stage_id=body.stage_id)
    await session.refresh(lead, with_for_update=True)
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
        with reference_lists.carried_over(session):  # the lead's source was checked when the lead got it
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
