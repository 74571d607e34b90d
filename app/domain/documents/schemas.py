from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from app.domain.schemas import Amount, Currency, InputModel, Instant, Money, Name, ReadModel

Kind = Literal["quote", "invoice", "contract", "letter"]
Body = Annotated[str, Field(min_length=1, max_length=200_000, description=(
    "sandboxed Jinja2 HTML: the placeholders of email templates (`contact.*`, `company.*`, `deal.*`, `user.*`, "
    "`org.*`, `<obj>.custom_fields.<key>`) plus `document.*` (`number`, `kind`, `issued_at`, `due_date`, "
    "`total.amount`, `total.currency`); inserted values are escaped"))]
Prefix = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]*$",
                              examples=["INV"], description="the number's start: `<prefix>-<YYYY>-<00001>`")]
BODY_EXAMPLE = ("<h1>Invoice {{ document.number }}</h1><p>{{ contact.first_name }} {{ contact.last_name }}</p>"
                "<p>{{ deal.title }}: {{ document.total.amount }} {{ document.total.currency }}</p>")


class DocumentTemplateCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "name": "Invoice", "kind": "invoice", "number_prefix": "INV", "body_html": BODY_EXAMPLE}]}}

    name: Name
    kind: Kind
    number_prefix: Prefix
    body_html: Body


class DocumentTemplateUpdate(InputModel):
    name: Name | None = None
    number_prefix: Prefix | None = None
    body_html: Body | None = None


class DocumentTemplateRead(ReadModel):
    id: UUID
    name: str
    kind: Kind
    number_prefix: str
    body_html: str
    created_at: datetime
    updated_at: datetime
    version: int


class DocumentRequest(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "template_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91", "due_date": "2026-12-31"}]}}

    template_id: UUID = Field(description="a document template of your organisation")
    due_date: date | None = Field(None, description="when payment is due (invoices); shown as `document.due_date`")


class DocumentRead(ReadModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    kind: Kind
    number: str = Field(examples=["INV-2026-00001"], description=(
        "`<number_prefix>-<YYYY>-<sequence>`: the sequence counts from 00001 per organisation, kind and year of "
        "`issued_at` (in the organisation's time zone), without gaps or repeats; a failed render keeps it"))
    status: Literal["pending", "ready", "failed"] = Field(description=(
        "`pending` until a worker rendered the PDF (`ready`) or could not (`failed`, with `error`)"))
    issued_at: datetime
    due_date: date | None
    total: Money | None = Field(description=(
        "the deal's value with tax (its value when it has no line items) when the document was requested; "
        "null for a contact's letter"))
    payment_status: Literal["unpaid", "partially_paid", "paid", "void"] | None = Field(
        validation_alias="payment_state", description=(
            "`partially_paid` while the payments add up to less than `total`, `paid` from it on; `void` once voided; "
            "null for a document without a total"))
    paid_amount: Decimal | None = Field(examples=["500.00"], description=(
        "the payments' sum in the total's currency (decimal string); null without a total"))
    template_id: UUID
    deal_id: UUID | None
    contact_id: UUID | None = Field(description="the addressee: the contact of a letter, the deal's contact")
    error: str | None = Field(description="why the render failed")
    file_size: int | None = Field(description="bytes of the PDF, once ready")
    voided_at: datetime | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    version: int


class DocumentAccepted(ReadModel):
    id: UUID
    status: Literal["pending", "ready", "failed"]
    number: str = Field(examples=["INV-2026-00001"])


class PaymentAmount(InputModel):
    amount: Amount
    currency: Currency | None = Field(None, description="the document's currency (the default); another → 422")


class PaymentIn(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "amount": {"amount": "500.00", "currency": "EUR"}, "paid_at": "2026-12-04T10:00:00+01:00",
        "method": "bank_transfer", "reference": "SEPA 2026-12-04 / INV-2026-00001"}]}}

    amount: PaymentAmount
    paid_at: Instant | None = Field(None, description="default: now")
    method: Annotated[str, Field(min_length=1, max_length=32, examples=["bank_transfer"],
                                 description="free text: bank_transfer, card, cash, ...")]
    reference: Annotated[str, Field(max_length=200)] | None = None


class PaymentRead(ReadModel):
    id: UUID
    document_id: UUID
    amount: Money = Field(validation_alias="money")
    paid_at: datetime
    method: str
    reference: str | None
    created_by: UUID | None
    created_at: datetime


class ShareLink(ReadModel):
    model_config = {"json_schema_extra": {"examples": [{
        "url": "https://crm.example.com/v1/public/documents/AZCo9GwufUuaHz5bLH2OkQ...", "expires_at":
            "2026-12-11T10:00:00Z"}]}}

    url: str = Field(description="opens the PDF without credentials until `expires_at`")
    expires_at: datetime
