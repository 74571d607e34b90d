"""Documents: templates (admins), documents requested for a deal or a contact (numbered in the request's
transaction, rendered to PDF by a worker: `app.domain.documents.rendering`), their payments and voiding.

A document is fixed when it is requested: its number, total, the template's body and the placeholders' values
are stored with it, so the PDF shows the deal as it was then, and a failed render keeps its number."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.deals.models import Deal
from app.domain.documents.models import Document, DocumentCounter, DocumentPayment, DocumentTemplate
from app.domain.documents.schemas import (
    DocumentRequest,
    DocumentTemplateCreate,
    DocumentTemplateUpdate,
    PaymentIn,
    PaymentRead,
)
from app.domain.errors import Conflict, ValidationFailed
from app.domain.events import service as events
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, org_settings, require_ref
from app.domain.templates import render
from app.domain.templates import service as templates
from app.ids import new_id

DOCUMENT = Kind.of(kinds.DOCUMENT)
TEMPLATE = Kind.of(kinds.DOCUMENT_TEMPLATE)
DEAL = Kind.of(kinds.DEAL)
CONTACT = Kind.of(kinds.CONTACT)
COMPANY = Kind.of(kinds.COMPANY)
SORTS = {"created_at": Document.created_at}
TEMPLATE_SORTS = {"created_at": DocumentTemplate.created_at, "name": DocumentTemplate.name}
JOBS = "document_jobs"


def _now() -> datetime:
    return datetime.now(UTC)


# --- templates -----------------------------------------------------------------------------------------


def _check_body(body_html: str) -> None:
    """422 naming `body_html` and the line when the template does not parse (as email templates)."""
    render.check({"body_html": body_html})


async def create_template(session: AsyncSession, who: Principal, body: DocumentTemplateCreate) -> DocumentTemplate:
    _check_body(body.body_html)
    template = DocumentTemplate(org_id=who.org_id, name=body.name, kind=body.kind, number_prefix=body.number_prefix,
                                body_html=body.body_html)
    return await TEMPLATE.created(session, who, template)


async def list_templates(session: AsyncSession, who: Principal, page: PageRequest,
                         kind: str | None = None) -> Page[DocumentTemplate]:
    stmt = TEMPLATE.readable(who)
    if kind is not None:
        stmt = stmt.where(DocumentTemplate.kind == kind)
    return await keyset_page(session, stmt, page, TEMPLATE_SORTS, DocumentTemplate.id)


async def update_template(session: AsyncSession, who: Principal, template_id: UUID, patch: DocumentTemplateUpdate,
                          expected_version: int | None) -> DocumentTemplate:
    """Name, prefix and body (the kind stays: numbers count per kind). Documents already requested keep what
    they were made of."""
    template = await TEMPLATE.get(session, who, template_id, for_update=True)
    check_version(template.version, expected_version)
    before = TEMPLATE.dump(template)
    changes = patch.model_dump(exclude_unset=True)
    for key in ("name", "number_prefix", "body_html"):
        if key in changes and changes[key] is None:
            raise ValidationFailed(f"{key} cannot be cleared", loc=("body", key))
    if "body_html" in changes:
        _check_body(changes["body_html"])
    for key, value in changes.items():
        setattr(template, key, value)
    return await TEMPLATE.updated(session, who, template, before)


async def delete_template(session: AsyncSession, who: Principal, template_id: UUID,
                          expected_version: int | None) -> None:
    await TEMPLATE.delete(session, who, template_id, expected_version)


# --- numbers and totals --------------------------------------------------------------------------------


def deal_total(deal: Deal) -> tuple[Decimal, str]:
    """What a deal's document totals: its `value_with_tax` when it has line items, else its `value`."""
    if deal.value_with_tax_amount is not None:
        return deal.value_with_tax_amount, deal.currency
    return deal.value_amount, deal.currency


def format_number(prefix: str, year: int, sequence: int) -> str:
    """`INV-2026-00001`: the sequence zero-padded to five digits (a sixth comes after 99999)."""
    return f"{prefix}-{year:04d}-{sequence:05d}"


async def take_sequence(session: AsyncSession, org_id: UUID, kind: str, year: int) -> int:
    """The next sequence number of this org, kind and year, in the caller's transaction. The counter row stays
    locked until that transaction ends: concurrent requests wait their turn, and one that rolls back gives its
    number back, so numbers have neither gaps nor repeats. Take it last, just before the document is written."""
    stmt = (insert(DocumentCounter).values(org_id=org_id, kind=kind, year=year, last_value=1)
            .on_conflict_do_update(index_elements=["org_id", "kind", "year"],
                                   set_={"last_value": DocumentCounter.last_value + 1})
            .returning(DocumentCounter.last_value))
    return int((await session.execute(stmt)).scalar_one())


# --- requesting documents ------------------------------------------------------------------------------


async def _template_for(session: AsyncSession, who: Principal, template_id: UUID) -> DocumentTemplate:
    return await require_ref(session, TEMPLATE, who, template_id, "template_id")


async def _live(session: AsyncSession, kind: Kind[Any], org_id: UUID, record_id: UUID) -> bool:
    """Whether the organisation still holds this record (not deleted)."""
    return bool(await session.scalar(select(exists().where(
        kind.record_type.readable(org_id), kind.model.id == record_id))))


def _document_values(doc: Document) -> dict[str, Any]:
    """`document.*` for the template."""
    return {"id": str(doc.id), "number": doc.number, "kind": doc.kind, "issued_at": doc.issued_at.isoformat(),
            "due_date": doc.due_date.isoformat() if doc.due_date else "",
            "total": {"amount": str(doc.total_amount), "currency": doc.currency} if doc.total is not None else {}}


async def _issue(session: AsyncSession, who: Principal, template: DocumentTemplate, due_date: date | None,
                 deal: Deal | None, contact_id: UUID | None) -> Document:
    """Write the document with its number (taken last) and its fixed content; `document.created`; its render
    is enqueued after commit. The placeholders' values are read as the organisation sees the records: the
    caller may read the deal (or contact) the document is for, and the document shows its addressee."""
    org_id = who.org_id
    if contact_id is not None and deal is not None and not await _live(session, CONTACT, org_id, contact_id):
        contact_id = None  # the deal's contact was deleted: the document has no addressee
    context = await templates.context(session, org_id, contact_id, deal.id if deal else None, who.user_id)
    if deal is not None and deal.company_id is not None and await _live(session, COMPANY, org_id, deal.company_id):
        context["company"] = COMPANY.dump(await COMPANY.get(session, org_id, deal.company_id))  # the one billed
    total: tuple[Decimal, str] | tuple[None, None] = (None, None)
    if deal is not None and template.kind != "letter":
        total = deal_total(deal)
    org = await org_settings(session, org_id)
    issued_at = _now()
    year = issued_at.astimezone(ZoneInfo(org.timezone)).year
    sequence = await take_sequence(session, org_id, template.kind, year)
    doc = Document(org_id=org_id, id=new_id(), kind=template.kind, template_id=template.id,
                   deal_id=deal.id if deal else None, contact_id=contact_id, year=year, sequence=sequence,
                   number=format_number(template.number_prefix, year, sequence), status="pending",
                   issued_at=issued_at, due_date=due_date, total_amount=total[0], currency=total[1],
                   paid_total=Decimal("0.00"), payment_status="unpaid", body_html=template.body_html,
                   context={}, created_by=who.user_id)
    doc.context = {**context, "document": _document_values(doc)}
    session.add(doc)
    await session.flush()
    await emit(session, who, doc, "document.created")
    session.info.setdefault(JOBS, []).append((org_id, doc.id))
    return doc


async def request_for_deal(session: AsyncSession, who: Principal, deal_id: UUID, body: DocumentRequest) -> Document:
    """A quote, invoice, contract (or letter) for a deal the caller may read (else 404)."""
    deal = await DEAL.get(session, who, deal_id)
    template = await _template_for(session, who, body.template_id)
    return await _issue(session, who, template, body.due_date, deal, deal.contact_id)


async def request_for_contact(session: AsyncSession, who: Principal, contact_id: UUID,
                              body: DocumentRequest) -> Document:
    """A letter to a contact the caller may read (else 404); it has no total."""
    contact = await CONTACT.get(session, who, contact_id)
    template = await _template_for(session, who, body.template_id)
    if template.kind != "letter":
        raise ValidationFailed(f"template_id: a contact's document is a letter; a {template.kind} is made for a "
                               "deal (POST /v1/deals/{id}/documents)", loc=("body", "template_id"))
    return await _issue(session, who, template, body.due_date, None, contact.id)


def committed_document_jobs(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    """(org, document) of the renders a committed transaction asked for."""
    return session.info.pop(JOBS, [])


# --- reading -------------------------------------------------------------------------------------------


def filters(deal_id: UUID | None, contact_id: UUID | None, kind: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if deal_id is not None:
        where.append(Document.deal_id == deal_id)
    if contact_id is not None:
        where.append(Document.contact_id == contact_id)
    if kind is not None:
        where.append(Document.kind == kind)
    return where


async def list_documents(session: AsyncSession, who: Principal, page: PageRequest,
                         where: Iterable[ColumnElement[bool]]) -> Page[Document]:
    return await keyset_page(session, DOCUMENT.readable(who).where(*where), page, SORTS, Document.id)


def dump(doc: Document) -> dict[str, Any]:
    return DOCUMENT.dump(doc)


def dump_payment(payment: DocumentPayment) -> dict[str, Any]:
    return PaymentRead.model_validate(payment).model_dump(mode="json")


async def emit(session: AsyncSession, actor: Principal | None, doc: Document, type_: str,
               **extra: Any) -> None:
    """One `document.*` event with the document as it is now (and `extra` beside it in `data`)."""
    await events.emit_many(session, actor, doc.org_id,
                           [(type_, "document", doc.id, doc.version, {"object": dump(doc), **extra})])


# --- payments and voiding ------------------------------------------------------------------------------


async def add_payment(session: AsyncSession, who: Principal, document_id: UUID, body: PaymentIn) -> DocumentPayment:
    """A payment in the document's currency: `paid_amount` grows, `payment_status` becomes `partially_paid`
    below the total and `paid` from it on (`document.paid`, once: payments only add up)."""
    doc = await DOCUMENT.get(session, who, document_id, for_update=True)
    if doc.total_amount is None:
        raise Conflict("This document has no total (a letter): it takes no payments")
    if doc.payment_status == "void":
        raise Conflict("This document is void: it takes no payments")
    currency = body.amount.currency or doc.currency
    if currency != doc.currency:
        raise ValidationFailed(f"amount.currency: the document is in {doc.currency}", loc=("body", "amount", "currency"))
    if body.amount.amount <= 0:
        raise ValidationFailed("amount.amount must be more than 0", loc=("body", "amount", "amount"))
    payment = DocumentPayment(org_id=doc.org_id, id=new_id(), document_id=doc.id, amount=body.amount.amount,
                              currency=currency, paid_at=body.paid_at or _now(), method=body.method,
                              reference=body.reference, created_by=who.user_id)
    session.add(payment)
    was = doc.payment_status
    doc.paid_total = doc.paid_total + body.amount.amount
    doc.payment_status = "paid" if doc.paid_total >= doc.total_amount else "partially_paid"
    doc.updated_at = _now()
    await session.flush()
    await session.refresh(payment)
    await emit(session, who, doc, "document.payment_recorded", payment=dump_payment(payment))
    if was != "paid" and doc.payment_status == "paid":
        await emit(session, who, doc, "document.paid")
    return payment


async def payments(session: AsyncSession, who: Principal, document_id: UUID) -> list[DocumentPayment]:
    doc = await DOCUMENT.get(session, who, document_id)
    return list(await session.scalars(select(DocumentPayment).where(
        DocumentPayment.org_id == doc.org_id, DocumentPayment.document_id == doc.id)
        .order_by(DocumentPayment.paid_at, DocumentPayment.id)))


async def void(session: AsyncSession, who: Principal, document_id: UUID, expected_version: int | None) -> Document:
    """`payment_status: void` (`document.voided`); the number and the PDF stay. Voiding again changes nothing."""
    doc = await DOCUMENT.get(session, who, document_id, for_update=True)
    check_version(doc.version, expected_version)
    if doc.payment_status == "void":
        return doc
    doc.payment_status, doc.voided_at, doc.updated_at = "void", _now(), _now()
    await session.flush()
    await emit(session, who, doc, "document.voided")
    return doc
