"""Leads: capture and qualification (conversion into a contact, company and deal is a flow:
`app.domain.flows.lead_conversion`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.errors import ValidationFailed
from app.domain.leads.models import OPEN_STATUSES, Lead
from app.domain.leads.schemas import LeadCreate, LeadRead, LeadUpdate
from app.domain.records import Kind, apply, prepare_values, reassign_owner, same_person

LEAD = Kind(Lead, "lead", "Lead", LeadRead)


async def create(session: AsyncSession, actor: Principal, body: LeadCreate | dict[str, Any],
                 **server_fields: Any) -> Lead:
    return await LEAD.created(session, actor, Lead(**await new_values(session, actor, body, **server_fields)))


async def new_values(session: AsyncSession, actor: Principal, body: LeadCreate | dict[str, Any],
                     **server_fields: Any) -> dict[str, Any]:
    """A new lead's column values, every rule checked (bulk writers insert them without an ORM object)."""
    data = body.model_dump(mode="python") if isinstance(body, LeadCreate) else body
    values = await prepare_values(session, actor, "lead", data)
    if not values.get("source") and actor.type == "api_key":
        values["source"] = "api"
    return {"org_id": actor.org_id, **values, **server_fields}


async def update(session: AsyncSession, actor: Principal, lead_id: UUID, patch: LeadUpdate,
                 expected_version: int | None) -> Lead:
    lead = await LEAD.get(session, actor, lead_id, for_update=True)
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


async def mark_first_response(session: AsyncSession, actor: Principal, lead_id: UUID, at: datetime) -> None:
    """The first completed activity on a lead stamps its response time (once): a write to the lead, with its
    `lead.updated`."""
    lead = await LEAD.get(session, actor.org_id, lead_id, include_deleted=True)
    if lead.first_response_at is None:
        before = LEAD.dump(lead)
        lead.first_response_at = at
        await LEAD.updated(session, actor, lead, before)


async def reassign(session: AsyncSession, actor: Principal, from_user: UUID, to_user: UUID) -> int:
    """A leaving rep's open leads go to a colleague."""
    return await reassign_owner(session, actor, LEAD, (Lead.owner_id == from_user) & Lead.status.in_(OPEN_STATUSES),
                                from_user, to_user)
