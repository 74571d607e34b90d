from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, model_validator

from app.domain.schemas import InputModel, Instant, Name, ReadModel, Source, Tag


class SegmentFilter(InputModel):
    """The list filters of `GET /v1/contacts` (or `/v1/leads`), saved."""

    q: Annotated[str, Field(max_length=200)] | None = None
    owner_id: UUID | None = None
    created_after: Instant | None = None
    created_before: Instant | None = None
    updated_since: Instant | None = None
    source: Source | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = Field(None, description="contacts: having all these")
    company_id: UUID | None = Field(None, description="contacts of this company")
    status: Literal["new", "working", "qualified", "disqualified", "converted"] | None = Field(
        None, description="leads in this status")
    cf: Annotated[dict[str, str], Field(max_length=20)] = Field(
        default_factory=dict, description="custom fields, as `cf.<key>=<value>` in the list")
    won_deals_count_gte: Annotated[int, Field(ge=0)] | None = Field(None, description="contacts: customer metrics")
    lifetime_value_gte: Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)] | None = None
    last_won_before: Instant | None = None
    last_activity_before: Instant | None = None

    @property
    def by_metrics(self) -> bool:
        return any(v is not None for v in (self.won_deals_count_gte, self.lifetime_value_gte, self.last_won_before,
                                           self.last_activity_before))


class SegmentCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "name": "VIP customers", "object": "contact", "filter": {"tags": ["vip"], "source": "referral"}}]}}

    name: Name
    object: Literal["contact", "lead"] = "contact"
    filter: SegmentFilter = Field(default_factory=SegmentFilter)

    @model_validator(mode="after")
    def _fits_object(self) -> SegmentCreate:
        if self.object == "lead" and (self.filter.tags or self.filter.company_id or self.filter.by_metrics):
            raise ValueError("tags, company_id and the customer metrics filter contacts, not leads")
        if self.object == "contact" and self.filter.status:
            raise ValueError("status filters leads, not contacts")
        return self


class SegmentUpdate(InputModel):
    name: Name | None = None
    filter: SegmentFilter | None = None


class SegmentRead(ReadModel):
    id: UUID
    name: str
    object: Literal["contact", "lead"]
    filter: SegmentFilter
    created_at: datetime
    updated_at: datetime
    version: int


class SegmentCount(ReadModel):
    count: int


class CampaignCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "name": "Spring offer", "channel": "email", "template_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e90",
        "segment_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91", "mailbox_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e92"}]}}

    name: Name
    channel: Literal["email", "sms"] = Field("email", description=(
        "email: sent from `mailbox_id`; sms: through the org's SMS gateway (`/v1/settings/sms`) to the contacts' "
        "phones"))
    template_id: UUID = Field(description="a template of the campaign's channel")
    segment_id: UUID
    mailbox_id: UUID | None = Field(None, description="required for email, absent for sms")
    send_at: Instant | None = Field(None, description="`send` before this time schedules it")

    @model_validator(mode="after")
    def _mailbox(self) -> CampaignCreate:
        if self.channel == "email" and self.mailbox_id is None:
            raise ValueError("an email campaign needs mailbox_id")
        if self.channel == "sms" and self.mailbox_id is not None:
            raise ValueError("an sms campaign goes through the SMS gateway: no mailbox_id")
        return self


class CampaignUpdate(InputModel):
    name: Name | None = None
    template_id: UUID | None = None
    segment_id: UUID | None = None
    mailbox_id: UUID | None = None
    send_at: Instant | None = None


class CampaignStats(ReadModel):
    recipients: int
    queued: int
    sent: int
    failed: int
    skipped: int
    unsubscribed: int
    replied: int


class CampaignRead(ReadModel):
    id: UUID
    name: str
    channel: Literal["email", "sms"]
    template_id: UUID
    segment_id: UUID
    mailbox_id: UUID | None
    send_at: datetime | None
    status: Literal["draft", "scheduled", "sending", "paused", "sent", "cancelled"]
    started_at: datetime | None
    finished_at: datetime | None
    stats: CampaignStats = Field(default_factory=lambda: CampaignStats(
        recipients=0, queued=0, sent=0, failed=0, skipped=0, unsubscribed=0, replied=0))
    created_at: datetime
    updated_at: datetime
    version: int


class RecipientRead(ReadModel):
    id: UUID
    contact_id: UUID
    address: str | None = Field(description="the email address, or the phone (E.164) of an sms campaign")
    status: Literal["queued", "sent", "failed", "skipped"]
    reason: str | None
    sent_at: datetime | None
    message_id: str | None
