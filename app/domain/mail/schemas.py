from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, model_validator

from app.domain.schemas import Email, InputModel, ReadModel

Host = Annotated[str, Field(min_length=1, max_length=253, examples=["imap.example.com"])]
Port = Annotated[int, Field(ge=1, le=65535)]
Secret = Annotated[str, Field(min_length=1, max_length=2000)]
Username = Annotated[str, Field(min_length=1, max_length=320)]


class ImapIn(InputModel):
    host: Host
    port: Port = 993
    ssl: bool = Field(True, description="TLS from the first byte (port 993); false: plain IMAP (test servers only)")
    username: Username
    password: Secret | None = Field(None, description="write-only: stored sealed, never returned")


class SmtpIn(InputModel):
    host: Host
    port: Port = 587
    starttls: bool = Field(True, description="upgrade to TLS with STARTTLS (port 587)")
    ssl: bool = Field(False, description="TLS from the first byte (port 465)")
    username: Username | None = Field(None, description="absent: no AUTH (a relay that trusts this host)")
    password: Secret | None = Field(None, description="write-only: stored sealed, never returned")

    @model_validator(mode="after")
    def _one_tls(self) -> SmtpIn:
        if self.ssl and self.starttls:
            raise ValueError("ssl and starttls exclude each other: port 465 is ssl, port 587 starttls")
        return self


class OAuthIn(InputModel):
    provider: Literal["google", "microsoft"]
    client_id: Annotated[str, Field(min_length=1, max_length=500)]
    client_secret: Secret = Field(description="write-only")
    refresh_token: Secret = Field(description="from the provider's consent (offline access); write-only")


class Routing(InputModel):
    unknown_sender: Literal["create_lead", "ignore"] = "ignore"
    assignees: Annotated[list[UUID], Field(max_length=100)] = Field(
        default_factory=list, description="new leads go round-robin to those of them who are active and not out of "
                                          "office")
    auto_reply_template_id: UUID | None = None


class MailboxCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "email": "sales@example.com", "shared": True, "auth": "password",
        "imap": {"host": "imap.example.com", "port": 993, "ssl": True, "username": "sales@example.com",
                 "password": "app-password"},
        "smtp": {"host": "smtp.example.com", "port": 587, "starttls": True, "username": "sales@example.com",
                 "password": "app-password"},
        "sync_since_days": 30, "routing": {"unknown_sender": "create_lead", "assignees": []}}]}}

    email: Email
    shared: bool = Field(False, description="a team inbox (sales@); members may only add their own, unshared one")
    private: bool = Field(False, description="its mail is visible to its owner and admins only")
    owner_id: UUID | None = Field(None, description="default: the caller")
    auth: Literal["password", "oauth2"] = "password"
    imap: ImapIn
    smtp: SmtpIn
    oauth: OAuthIn | None = Field(None, description="with auth oauth2: XOAUTH2 for IMAP and SMTP")
    sync_since_days: int = Field(30, ge=1, le=3650, description="how far back the first sync reads")
    rate_per_minute: int = Field(60, ge=1, le=10_000, description="most messages sent per minute (campaigns)")
    routing: Routing = Field(default_factory=Routing)

    @model_validator(mode="after")
    def _credentials(self) -> MailboxCreate:
        if self.auth == "oauth2" and self.oauth is None:
            raise ValueError("auth oauth2 needs oauth (provider, client_id, client_secret, refresh_token)")
        if self.auth == "password" and self.imap.password is None:
            raise ValueError("auth password needs imap.password")
        if self.auth == "password" and self.oauth is not None:
            raise ValueError("oauth is for auth oauth2")
        return self


class MailboxUpdate(InputModel):
    shared: bool | None = None
    private: bool | None = None
    owner_id: UUID | None = None
    imap: ImapIn | None = Field(None, description="the whole IMAP block; a missing password keeps the stored one")
    smtp: SmtpIn | None = Field(None, description="the whole SMTP block; a missing password keeps the stored one")
    oauth: OAuthIn | None = Field(None, description="an oauth2 mailbox reconnected: the new grant replaces the "
                                                    "stored one, and a sync stopped by a revoked grant starts again")
    sync_since_days: int | None = Field(None, ge=1, le=3650)
    rate_per_minute: int | None = Field(None, ge=1, le=10_000)
    routing: Routing | None = None


class ImapRead(ReadModel):
    host: str
    port: int
    ssl: bool
    username: str


class SmtpRead(ReadModel):
    host: str
    port: int
    starttls: bool
    ssl: bool
    username: str | None


class OAuthRead(ReadModel):
    provider: Literal["google", "microsoft"]
    client_id: str


class RoutingRead(ReadModel):
    unknown_sender: Literal["create_lead", "ignore"] = "ignore"
    assignees: list[UUID] = Field(default_factory=list)
    auto_reply_template_id: UUID | None = None


class MailboxRead(ReadModel):
    id: UUID
    email: str
    shared: bool
    private: bool
    owner_id: UUID | None
    auth: Literal["password", "oauth2"]
    imap: ImapRead
    smtp: SmtpRead
    oauth: OAuthRead | None
    sync_since_days: int
    rate_per_minute: int
    routing: RoutingRead
    status: Literal["ok", "error", "never_synced"] = Field(
        description="`error`: the last sync failed (`last_error`); it is retried with growing back-off, except "
                    "after a refused OAuth2 grant (`next_sync_at` null until the mailbox is reconnected or a sync "
                    "is asked for)")
    last_synced_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    next_sync_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


ErrorKind = Literal["auth_failed", "tls_error", "unreachable", "timeout"]


class ServerCheck(ReadModel):
    ok: bool
    error: ErrorKind | None = None
    detail: str | None = None


class MailboxCheck(ReadModel):
    model_config = {"json_schema_extra": {"examples": [{
        "imap": {"ok": True}, "smtp": {"ok": False, "error": "auth_failed", "detail": "535 authentication failed"}}]}}

    imap: ServerCheck
    smtp: ServerCheck


class Attachment(ReadModel):
    file_id: UUID
    filename: str
    content_type: str
    size: int


class EmailRead(ReadModel):
    model_config = ConfigDict(from_attributes=True, serialize_by_alias=True)

    id: UUID
    mailbox_id: UUID
    direction: Literal["inbound", "outbound"]
    status: Literal["received", "queued", "sent", "failed"] = Field(
        description="inbound mail is `received`; outbound is `queued` until the SMTP server took it (`sent`) or "
                    "refused it for good (`failed`, with `error`)")
    subject: str
    from_: str = Field(validation_alias="from_address", serialization_alias="from", examples=["ana@example.com"])
    from_name: str | None
    to: list[str]
    cc: list[str]
    sent_at: datetime
    message_id: str
    in_reply_to: str | None
    thread_id: UUID
    contact_ids: list[UUID]
    lead_ids: list[UUID]
    deal_ids: list[UUID]
    text: str | None
    html: str | None
    attachments: list[Attachment]
    error: str | None
    attempts: int
    created_at: datetime


class EmailSend(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "mailbox_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e90", "to": ["ana@example.com"],
        "subject": "Your quote", "text": "Hello Ana,\n\nplease find our quote below.",
        "contact_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91"}]}}

    mailbox_id: UUID
    to: Annotated[list[Email], Field(min_length=1, max_length=50)]
    cc: Annotated[list[Email], Field(max_length=50)] = Field(default_factory=list)
    subject: Annotated[str, Field(max_length=998)] = ""
    text: Annotated[str, Field(max_length=1_000_000)] | None = None
    html: Annotated[str, Field(max_length=1_000_000)] | None = None
    contact_id: UUID | None = None
    deal_id: UUID | None = None
    lead_id: UUID | None = None
    in_reply_to: UUID | None = Field(None, description="the email this answers (its thread and Message-ID are used)")

    @model_validator(mode="after")
    def _body(self) -> EmailSend:
        if self.text is None and self.html is None:
            raise ValueError("an email needs text or html")
        if any("\r" in s or "\n" in s for s in (self.subject,)):
            raise ValueError("subject must be one line")
        return self
