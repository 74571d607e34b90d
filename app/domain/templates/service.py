"""Templates (admins and managers write, everyone reads) and what they render to for a contact (and a deal)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds
from app.domain.auth.models import User
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.errors import CRMError, NotFound, ValidationFailed
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, org_settings, require_ref
from app.domain.templates import render
from app.domain.templates.models import Template
from app.domain.templates.schemas import PreviewRequest, TemplateCreate, TemplateUpdate

TEMPLATE = Kind.of(kinds.TEMPLATE)
SORTS = {"created_at": Template.created_at, "name": Template.name}


def _fields(t: Template) -> dict[str, str | None]:
    return {"subject": t.subject, "body_html": t.body_html, "body_text": t.body_text}


def _fits_channel(channel: str, values: dict[str, Any]) -> None:
    """An SMS template is its `body_text`: no subject, no HTML."""
    if channel == "sms":
        if not values.get("body_text"):
            raise ValidationFailed("an sms template needs body_text (the text)", loc=("body", "body_text"))
        if values.get("body_html") or values.get("subject"):
            field = "body_html" if values.get("body_html") else "subject"
            raise ValidationFailed(f"an sms template has no {field}: the text is body_text", loc=("body", field))


async def create(session: AsyncSession, who: Principal, body: TemplateCreate) -> Template:
    _fits_channel(body.channel, body.model_dump())
    render.check(body.model_dump())
    template = Template(org_id=who.org_id, name=body.name, channel=body.channel, subject=body.subject,
                        body_html=body.body_html, body_text=body.body_text)
    return await TEMPLATE.created(session, who, template)


async def list_page(session: AsyncSession, who: Principal, page: PageRequest) -> Page[Template]:
    return await keyset_page(session, TEMPLATE.readable(who), page, SORTS, Template.id)


async def update(session: AsyncSession, who: Principal, template_id: UUID, patch: TemplateUpdate,
                 expected_version: int | None) -> Template:
    template = await TEMPLATE.get(session, who, template_id, for_update=True)
    check_version(template.version, expected_version)
    before = TEMPLATE.dump(template)
    changes = patch.model_dump(exclude_unset=True)
    _fits_channel(template.channel, {**_fields(template), **changes})
    render.check({**_fields(template), **changes})
    for key, value in changes.items():
        if value is not None or key in ("body_html", "body_text"):
            setattr(template, key, value)
    return await TEMPLATE.updated(session, who, template, before)


async def delete(session: AsyncSession, who: Principal, template_id: UUID, expected_version: int | None) -> None:
    template = await TEMPLATE.get(session, who, template_id)
    check_version(template.version, expected_version)
    await TEMPLATE.delete(session, who, template_id, None)


async def context(session: AsyncSession, who: Principal | UUID, contact_id: UUID | None, deal_id: UUID | None = None,
                  sender_id: UUID | None = None, unsubscribe_url: str | None = None) -> dict[str, Any]:
    """What placeholders read: the records as the API shows them (the reader's visibility applies). Without a
    contact (a document for a deal that has none) `contact.*` and `company.*` are empty."""
    contact_kind, company_kind, deal_kind = (Kind.of(kinds.named(t)) for t in ("contact", "company", "deal"))
    contact = await require_ref(session, contact_kind, who, contact_id, "contact_id") if contact_id else None
    company = await session.scalar(company_kind.readable(who).where(company_kind.model.id == contact.company_id)) \
        if contact and contact.company_id else None  # a deleted company leaves `company.*` empty
    deal = await require_ref(session, deal_kind, who, deal_id, "deal_id") if deal_id else None
    org_id = kinds.org_of(who)
    org = await org_settings(session, org_id)
    sender = await session.scalar(select(User).where(User.org_id == org_id, User.id == sender_id)) \
        if sender_id else None
    return {
        "contact": contact_kind.dump(contact) if contact else {},
        "company": company_kind.dump(company) if company else {},
        "deal": deal_kind.dump(deal) if deal else {},
        "user": {"id": str(sender.id), "name": sender.name, "email": sender.email} if sender else {},
        "org": {"id": str(org.id), "name": org.name, "timezone": org.timezone},
        "unsubscribe_url": unsubscribe_url or "",
    }


async def preview(session: AsyncSession, who: Principal, template_id: UUID, body: PreviewRequest) -> dict[str, Any]:
    template = await TEMPLATE.get(session, who, template_id)
    values = await context(session, who, body.contact_id, body.deal_id, who.user_id,
                           unsubscribe_url="https://crm.example.com/v1/public/unsubscribe/PREVIEW")
    return render.render(_fields(template), values)


async def render_for(session: AsyncSession, org_id: UUID, template_id: UUID, contact_id: UUID,
                     sender_id: UUID | None, unsubscribe_url: str | None = None) -> dict[str, Any]:
    """For the system's own sends (auto-replies, campaigns): the org's view of the records."""
    template = await TEMPLATE.get(session, org_id, template_id)
    values = await context(session, org_id, contact_id, None, sender_id, unsubscribe_url)
    return render.render(_fields(template), values)


async def render_many(session: AsyncSession, org_id: UUID, template_id: UUID, sender_id: UUID | None,
                      recipients: list[tuple[UUID, str]]) -> list[dict[str, Any] | CRMError]:
    """`render_for` for many contacts at once (a campaign's chunk): each `(contact_id, unsubscribe_url)` gets
    its rendering, or the error that stopped it. Five statements whatever the number of contacts."""
    contact_kind, company_kind = Kind.of(kinds.named("contact")), Kind.of(kinds.named("company"))
    try:
        template = await TEMPLATE.get(session, org_id, template_id)
    except CRMError as exc:
        return [exc for _ in recipients]
    contacts = {c.id: c for c in await session.scalars(contact_kind.readable(org_id).where(
        contact_kind.model.id.in_([c for c, _ in recipients])))}
    company_ids = {c.company_id for c in contacts.values() if c.company_id}
    companies = {c.id: c for c in await session.scalars(company_kind.readable(org_id).where(
        company_kind.model.id.in_(company_ids)))} if company_ids else {}
    org = await org_settings(session, org_id)
    sender = await session.scalar(select(User).where(User.org_id == org_id, User.id == sender_id)) \
        if sender_id else None
    base = {"deal": {}, "org": {"id": str(org.id), "name": org.name, "timezone": org.timezone},
            "user": {"id": str(sender.id), "name": sender.name, "email": sender.email} if sender else {}}
    out: list[dict[str, Any] | CRMError] = []
    for contact_id, url in recipients:
        contact = contacts.get(contact_id)
        if contact is None:
            out.append(NotFound("Contact not found"))
            continue
        company = companies.get(contact.company_id) if contact.company_id else None
        try:
            out.append(render.render(_fields(template), {
                **base, "contact": contact_kind.dump(contact),
                "company": company_kind.dump(company) if company else {}, "unsubscribe_url": url}))
        except CRMError as exc:
            out.append(exc)
    return out
