from typing import Annotated
from uuid import UUID

import orjson
from fastapi import Query
from sqlalchemy import ColumnElement

from app.api.deps import AnyCaller, SessionDep, SettingsDep, require
from app.api.metric_filters import metric_filters
from app.api.problems import AUTHED, NOT_FOUND
from app.api.records import JSONBytes, record_routes
from app.api.routing import Router
from app.domain import kinds
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.contacts import service
from app.domain.contacts.models import Contact
from app.domain.contacts.schemas import ContactCreate, ContactUpdate
from app.domain.errors import Forbidden
from app.domain.listing import belongs_to
from app.domain.privacy import service as privacy
from app.domain.privacy.schemas import ContactExport, ErasureResult

router = Router(prefix="/v1/contacts", tags=["contacts"])
SORTS = {"created_at": Contact.created_at, "updated_at": Contact.updated_at, "last_name": Contact.last_name}


async def filters(
    who: AnyCaller,
    company_id: UUID | None = None,
    tags: Annotated[list[str] | None, Query(max_length=20, description="contacts having all these tags")] = None,
    source: Annotated[str | None, Query(max_length=64)] = None,
    by_metrics: list[ColumnElement[bool]] = metric_filters(Contact),
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = list(by_metrics)
    if company_id is not None:
        where.append(belongs_to(Contact.company_id, kinds.COMPANY, company_id, who))
    if tags:
        where.append(Contact.tags.contains(tags))
    if source is not None:
        where.append(Contact.source == source)
    return where


record_routes(router, kind=service.CONTACT, plural="contacts", area="contacts", create_schema=ContactCreate,
              update_schema=ContactUpdate, create=service.create, update=service.update, sorts=SORTS,
              searches="first and last names, email addresses and phone numbers",
              filters=filters, sort_doc="Sorts: created_at, updated_at, last_name.")


@router.get("/{record_id}/export", response_model=ContactExport, operation_id="exportContact",
            summary="Export everything held about a contact (GDPR)", responses={**AUTHED, **NOT_FOUND})
async def export_contact(record_id: UUID, session: SessionDep,
                         who: Annotated[Principal, require("contacts:read")]) -> JSONBytes:
    """One JSON object with the contact and every linked record the caller may read, each as its own GET returns
    it, soft-deleted ones included: `activities` (of the contact and of its leads), `deals`, `leads` (linked to
    the contact, e.g. the lead it was converted from), `submissions` (form submissions of the contact and its
    leads), `emails` (mail linked to the contact or its leads), `calls` (with the contact or its leads),
    `documents` (letters to the contact and the documents of its deals), `files` (attached to the contact or its
    leads: their metadata) and `events` (of all of these, oldest first, as the changes feed shows them). Needs
    `contacts:read`, and also `activities:read`, `deals:read`, `leads:read`, `changes:read`, `mail:read`,
    `calls:read`, `documents:read` and `files:read` (403 naming the missing scope)."""
    for scope in privacy.EXPORT_SCOPES:
        if not who.allows(scope):
            raise Forbidden(f"An export also reads other areas: this caller lacks {scope!r}", required_scope=scope)
    return JSONBytes(orjson.dumps(await privacy.export(session, who, record_id)))


@router.post("/{record_id}/erase", status_code=202, response_model=ErasureResult, operation_id="eraseContact",
             summary="Erase a contact's personal data (GDPR)", responses={**AUTHED, **NOT_FOUND})
async def erase_contact(record_id: UUID, session: SessionDep, settings: SettingsDep,
                        who: Annotated[Principal, require("contacts:write", Role.admin)]) -> JSONBytes:
    """Admins only. Removes the person's personal data from the contact, the leads linked to it, the activities
    and form submissions of both, and from the payloads of their events (the changes feed and the webhook
    history, including deliveries still to be sent) and from their mail (subject, bodies, attachments and their
    address); files attached to the contact or its leads are removed with their content; the person's name,
    email and phone are cut out of linked
    deals' titles and of notifications. Ids, timestamps, owners, statuses, deal values and stages stay, so
    reports and counts are unchanged. The contact stays as an anonymised, deleted tombstone (GET → 404; it is
    never restored) and a `contact.erased` event tells sync clients to drop what they hold about the person.
    The work is done when the response comes (in the request's transaction); 202 because copies outside this
    service (webhook receivers, backups) are not under its control. Calling it again changes nothing."""
    result = await privacy.erase(session, who, record_id, settings)
    if result["counts"]["files"] or result["counts"]["letters"]:
        await session.commit()  # the rows no longer point at the bytes: now the bytes may go
        await privacy.forget_erased_files(session, settings)
    return JSONBytes(ErasureResult.model_validate(result).model_dump_json().encode(), status_code=202)
