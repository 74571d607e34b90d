from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.companies.service import COMPANY
from app.domain.concurrency import check_version
from app.domain.contacts.models import Contact
from app.domain.contacts.schemas import ContactCreate, ContactUpdate
from app.domain.kinds import CONTACT as CONTACT_TYPE
from app.domain.records import Kind, apply, prepare_values, reassign_owner, require_ref, same_person

CONTACT: Kind[Contact] = Kind.of(CONTACT_TYPE)


async def create(session: AsyncSession, actor: Principal, body: ContactCreate | dict[str, Any]) -> Contact:
    return await CONTACT.created(session, actor, Contact(**await new_values(session, actor, body)))


async def new_values(session: AsyncSession, actor: Principal, body: ContactCreate | dict[str, Any]) -> dict[str, Any]:
    """A new contact's column values, every rule checked (bulk writers insert them without an ORM object)."""
    data = body.model_dump(mode="python") if isinstance(body, ContactCreate) else body
    values = await prepare_values(session, actor, "contact", data)
    if values.get("company_id"):
        await require_ref(session, COMPANY, actor, values["company_id"], "company_id")
    return {"org_id": actor.org_id, **values}


async def update(session: AsyncSession, actor: Principal, contact_id: UUID, patch: ContactUpdate,
                 expected_version: int | None) -> Contact:
    contact = await CONTACT.get(session, actor, contact_id, for_update=True)
    check_version(contact.version, expected_version)
    before = CONTACT.dump(contact)
    values = await prepare_values(session, actor, "contact", patch.model_dump(exclude_unset=True), contact)
    if values.get("company_id") and values["company_id"] != contact.company_id:
        await require_ref(session, COMPANY, actor, values["company_id"], "company_id")
    apply(contact, values)
    return await CONTACT.updated(session, actor, contact, before)


async def find_by_email_or_phone(session: AsyncSession, org_id: UUID, email: str | None,
                                 phone: str | None) -> Contact | None:
    """The oldest live contact with this email (case-insensitive, stored lower-case) or E.164 phone."""
    match = same_person(Contact, email, phone)
    if match is None:
        return None
    return await session.scalar(CONTACT.readable(org_id).where(match).order_by(Contact.created_at, Contact.id).limit(1))


async def reassign(session: AsyncSession, actor: Principal, from_user: UUID, to_user: UUID) -> int:
    """A leaving rep's contacts go to a colleague."""
    return await reassign_owner(session, actor, CONTACT, Contact.owner_id == from_user, from_user, to_user)
