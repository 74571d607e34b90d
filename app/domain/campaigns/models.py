"""Segments (saved contact or lead filters), campaigns (a template sent to a segment from a mailbox) and one
row per recipient, which is what makes every message go exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, ref_fk
from app.ids import new_id


class Segment(TenantRecord, Base):
    __tablename__ = "segments"
    __table_args__ = (CheckConstraint("object IN ('contact', 'lead')", name="object"),
                      Index(None, "org_id", "created_at", "id"))

    name: Mapped[str] = mapped_column(String(200))
    object: Mapped[str] = mapped_column(String(8))
    filter: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")


class Campaign(TenantRecord, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        ref_fk("campaigns", "template_id", "templates"),
        ref_fk("campaigns", "segment_id", "segments"),
        ref_fk("campaigns", "mailbox_id", "mailboxes"),
        CheckConstraint("channel IN ('email', 'sms')", name="channel"),
        CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')", name="status"),
        Index(None, "org_id", "created_at", "id"),
        Index("ix_campaigns_due", "send_at", postgresql_where=text("status IN ('scheduled', 'sending')")),
    )

    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(8), default="email")
    template_id: Mapped[UUID] = mapped_column()
    segment_id: Mapped[UUID] = mapped_column()
    mailbox_id: Mapped[UUID | None] = mapped_column()
    send_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default="draft")
    created_by: Mapped[UUID | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class Recipient(Base):
    """One segment member of a sending: `queued` until its message went (`sent`, committed before the SMTP
    server could accept it), `failed`, or `skipped` with the reason it was not mailed."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        ref_fk("campaign_recipients", "campaign_id", "campaigns", ondelete="CASCADE"),
        CheckConstraint("status IN ('queued', 'sent', 'failed', 'skipped')", name="status"),
        Index("uq_campaign_recipients_contact", "org_id", "campaign_id", "contact_id", unique=True),
        Index(None, "org_id", "campaign_id", "status", "id"),
        Index(None, "org_id", "contact_id", "sent_at"),
        Index(None, "org_id", "message_id"),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    campaign_id: Mapped[UUID] = mapped_column()
    contact_id: Mapped[UUID] = mapped_column()
    address: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(8), default="queued")
    reason: Mapped[str | None] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(998))
    sent_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_until: Mapped[datetime | None] = mapped_column()
    unsubscribed_at: Mapped[datetime | None] = mapped_column()
    # SMS: set (committed) just before the text goes to the gateway. A queued row that has it was interrupted
    # with an unknown outcome and is never tried again: nobody gets a text twice.
    handed_at: Mapped[datetime | None] = mapped_column()
