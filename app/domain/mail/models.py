"""Mailboxes the team connects (IMAP in, SMTP out), the sync position per folder, and every email synced or
sent, linked to the contacts, leads and deals its addresses belong to."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, ref_fk


class Mailbox(TenantRecord, Base):
    __tablename__ = "mailboxes"
    __table_args__ = (
        ref_fk("mailboxes", "owner_id", "users"),
        CheckConstraint("auth IN ('password', 'oauth2')", name="auth"),
        Index(None, "org_id", "created_at", "id"),
        Index("ix_mailboxes_sync_due", "next_sync_at", postgresql_where=text("deleted_at IS NULL")),
    )

    email: Mapped[str] = mapped_column(String(320))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_id: Mapped[UUID | None] = mapped_column()
    auth: Mapped[str] = mapped_column(String(8), default="password")
    imap: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {host, port, ssl, username}: no secret
    smtp: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {host, port, starttls, ssl, username}
    oauth: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # {provider, client_id}: no secret
    sealed_secrets: Mapped[str] = mapped_column(Text)  # passwords and tokens, encrypted (app.domain.sealing)
    sync_since_days: Mapped[int] = mapped_column(Integer, default=30)
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=60)
    routing: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    round_robin: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # routing's turns
    last_synced_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None] = mapped_column()
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_sync_at: Mapped[datetime | None] = mapped_column()
    leased_until: Mapped[datetime | None] = mapped_column()

    @property
    def status(self) -> str:
        if self.last_error is not None:
            return "error"
        return "ok" if self.last_synced_at is not None else "never_synced"


class MailFolder(Base):
    """How far a mailbox's folder is synced: the UIDs seen under one UIDVALIDITY."""

    __tablename__ = "mail_folders"
    __table_args__ = (ref_fk("mail_folders", "mailbox_id", "mailboxes", ondelete="CASCADE"),
                      CheckConstraint("role IN ('inbox', 'sent')", name="role"))

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    mailbox_id: Mapped[UUID] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)


class Email(TenantRecord, Base):
    __tablename__ = "emails"
    __table_args__ = (
        ref_fk("emails", "mailbox_id", "mailboxes"),
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        CheckConstraint("status IN ('received', 'queued', 'sent', 'failed')", name="status"),
        Index("uq_emails_mailbox_message", "org_id", "mailbox_id", "message_id", unique=True),
        Index(None, "org_id", "message_id"),
        Index(None, "org_id", "in_reply_to"),
        Index("ix_emails_references", "references", postgresql_using="gin"),
        Index(None, "org_id", "thread_id", "sent_at", "id"),
        Index(None, "org_id", "sent_at", "id"),
        Index(None, "org_id", "mailbox_id", "sent_at", "id"),
        Index("ix_emails_contact_ids", "contact_ids", postgresql_using="gin"),
        Index("ix_emails_lead_ids", "lead_ids", postgresql_using="gin"),
        Index("ix_emails_deal_ids", "deal_ids", postgresql_using="gin"),
        Index("ix_emails_send_due", "next_attempt_at", postgresql_where=text("status = 'queued'")),
    )

    mailbox_id: Mapped[UUID] = mapped_column()
    direction: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(998), default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str | None] = mapped_column(String(200))
    to_addresses: Mapped[list[str]] = mapped_column(ARRAY(String(320)), default=list)
    cc_addresses: Mapped[list[str]] = mapped_column(ARRAY(String(320)), default=list)
    sent_at: Mapped[datetime] = mapped_column()
    message_id: Mapped[str] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    thread_id: Mapped[UUID] = mapped_column()
    contact_ids: Mapped[list[UUID]] = mapped_column(ARRAY(PGUUID(as_uuid=True)), default=list)
    lead_ids: Mapped[list[UUID]] = mapped_column(ARRAY(PGUUID(as_uuid=True)), default=list)
    deal_ids: Mapped[list[UUID]] = mapped_column(ARRAY(PGUUID(as_uuid=True)), default=list)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    folder_uid: Mapped[int | None] = mapped_column(BigInteger)  # the IMAP UID it was synced from
    created_by: Mapped[UUID | None] = mapped_column()  # who asked to send it (outbound)
    auto_reply: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")  # sent by routing
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    leased_until: Mapped[datetime | None] = mapped_column()

    # The read model's names (API.md): `to`, `cc`, `text`, `html`.
    @property
    def to(self) -> list[str]:
        return self.to_addresses

    @property
    def cc(self) -> list[str]:
        return self.cc_addresses

    @property
    def text(self) -> str | None:
        return self.body_text

    @property
    def html(self) -> str | None:
        return self.body_html
