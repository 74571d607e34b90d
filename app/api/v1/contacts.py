from typing import Annotated
from uuid import UUID

from fastapi import Query
from sqlalchemy import ColumnElement

from app.api.deps import AnyCaller
from app.api.records import record_routes
from app.api.routing import Router
from app.domain import kinds
from app.domain.contacts import service
from app.domain.contacts.models import Contact
from app.domain.contacts.schemas import ContactCreate, ContactUpdate
from app.domain.listing import belongs_to

router = Router(prefix="/v1/contacts", tags=["contacts"])
SORTS = {"created_at": Contact.created_at, "updated_at": Contact.updated_at, "last_name": Contact.last_name}


async def filters(
    who: AnyCaller,
    company_id: UUID | None = None,
    tags: Annotated[list[str] | None, Query(max_length=20, description="contacts having all these tags")] = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if company_id is not None:
        where.append(belongs_to(Contact.company_id, kinds.COMPANY, company_id, who))
    if tags:
        where.append(Contact.tags.contains(tags))
    if source is not None:
        where.append(Contact.source == source)
    return where


record_routes(router, kind=service.CONTACT, plural="contacts", area="contacts", create_schema=ContactCreate,
              update_schema=ContactUpdate, create=service.create, update=service.update, sorts=SORTS,
              filters=filters, sort_doc="Sorts: created_at, updated_at, last_name.")
