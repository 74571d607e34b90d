"""Documents: templates (quote, invoice, contract, letter), the documents rendered from them to PDF, the
per-org counters their numbers come from, and the payments recorded against them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, ref_fk
from app.ids import new_id

KINDS = ("quote", "invoice", "contract", "letter")
STATUSES = ("pending", "ready", "failed")
PAYMENT_STATUSES = ("unpaid", "partially_paid", "paid", "void")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values)


class DocumentTemplate(TenantRecord, Base):
    __tablename__ = "document_templates"
    __table_args__ = (CheckConstraint(f"kind IN ({_in(KINDS)})", name="kind"),
                      Index(None, "org_id", "created_at", "id"))

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    number_prefix: Mapped[str] = mapped_column(String(20))
    body_html: Mapped[str] = mapped_column(Text)


class DocumentCounter(Base):
    """The last sequence number given per org, kind and year: taken with one `INSERT ... ON CONFLICT DO UPDATE
    ... RETURNING` in the requesting transaction, whose row lock serialises concurrent requests until commit
    (a rolled-back request gives its number back: no gaps, no repeats)."""

    __tablename__ = "document_counters"

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class Document(TenantRecord, Base):
    __tablename__ = "documents"
    __table_args__ = (
        ref_fk("documents", "template_id", "document_templates"),
        ref_fk("documents", "deal_id", "deals"),
        ref_fk("documents", "contact_id", "contacts"),
        CheckConstraint(f"kind IN ({_in(KINDS)})", name="kind"),
        CheckConstraint(f"status IN ({_in(STATUSES)})", name="status"),
        CheckConstraint(f"payment_status IN ({_in(PAYMENT_STATUSES)})", name="payment_status"),
        CheckConstraint("deal_id IS NOT NULL OR contact_id IS NOT NULL", name="subject"),
        Index(None, "org_id", "kind", "year", "sequence", unique=True),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "deal_id", "created_at", "id"),
        Index(None, "org_id", "contact_id", "created_at", "id"),
        Index("ix_documents_render_due", "created_at", postgresql_where=text("status = 'pending'")),
    )

    kind: Mapped[str] = mapped_column(String(8))
    template_id: Mapped[UUID] = mapped_column()
    deal_id: Mapped[UUID | None] = mapped_column()
    contact_id: Mapped[UUID | None] = mapped_column()
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(8), default="pending", server_default="pending")
    issued_at: Mapped[datetime] = mapped_column()
    due_date: Mapped[date | None] = mapped_column(Date)
    total_amount: Mapped[Decimal | None] = mapped_column(Numeric)
    currency: Mapped[str | None] = mapped_column(String(3))
    paid_total: Mapped[Decimal] = mapped_column(Numeric, default=Decimal("0.00"), server_default="0")
    payment_status: Mapped[str] = mapped_column(String(16), default="unpaid", server_default="unpaid")
    voided_at: Mapped[datetime | None] = mapped_column()
    # what the PDF is made of, fixed when the document is requested: the template's body and the placeholders'
    # values then (a later edit of the template or the deal changes no document)
    body_html: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)
    file_key: Mapped[str | None] = mapped_column(String(300))  # where storage keeps the PDF
    file_size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    rendered_at: Mapped[datetime | None] = mapped_column()
    render_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[UUID | None] = mapped_column()

    @property
    def total(self) -> dict[str, Any] | None:
        if self.total_amount is None:
            return None
        return {"amount": self.total_amount, "currency": self.currency}

    @property
    def paid_amount(self) -> Decimal | None:
        """The payments' sum, in the document's currency (none for a document without a total)."""
        return None if self.total_amount is None else self.paid_total

    @property
    def payment_state(self) -> str | None:
        """`payment_status` as read: none for a document without a total (a letter) unless it was voided."""
        if self.total_amount is None and self.payment_status != "void":
            return None
        return self.payment_status


class DocumentPayment(Base):
    """A payment received against a document (never edited: a mistake is voided with the document)."""

    __tablename__ = "document_payments"
    __table_args__ = (ref_fk("document_payments", "document_id", "documents"),
                      Index(None, "org_id", "document_id", "paid_at", "id"))

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    document_id: Mapped[UUID] = mapped_column()
    amount: Mapped[Decimal] = mapped_column(Numeric)
    currency: Mapped[str] = mapped_column(String(3))
    paid_at: Mapped[datetime] = mapped_column()
    method: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))

    @property
    def money(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}
