from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from app.domain.metrics import MetricsRead
from app.domain.schemas import (
    MAX_EXTERNAL_IDS,
    Address,
    CustomFieldValues,
    Email,
    ExternalId,
    InputModel,
    ReadModel,
    RecordRead,
    Source,
    Tag,
    Text200,
    Utm,
)

PersonName = Annotated[str, Field(max_length=100)]
Phone = Annotated[str, Field(max_length=40, examples=["+49 30 1234567"], description="normalised to E.164")]
Tags = Annotated[list[Tag], Field(max_length=50)]
ExternalIds = Annotated[list[ExternalId], Field(max_length=MAX_EXTERNAL_IDS)]


ConsentState = Literal["subscribed", "unsubscribed", "unknown"]


class Consent(InputModel):
    """May the person be sent marketing by email and by SMS: every campaign skips `unsubscribed`."""

    email: ConsentState | None = None
    sms: ConsentState | None = None


class ConsentRead(ReadModel):
    email: ConsentState
    sms: ConsentState


class ContactCreate(InputModel):
    """At least a name, an email or a phone (the identity rule in `app.domain.kinds`, also after every update)."""

    model_config = {"json_schema_extra": {"examples": [{
        "first_name": "Ana", "last_name": "Silva", "email": "ana@example.com", "phone": "+351 912 345 678",
        "tags": ["vip"], "source": "referral", "custom_fields": {"segment": "smb"}}]}}

    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = None
    phone: Phone | None = None
    company_id: UUID | None = None
    title: Text200 | None = None
    tags: Tags = Field(default_factory=list)
    source: Source | None = None
    utm: Utm | None = None
    birthday: date | None = None
    address: Address | None = None
    external_ids: ExternalIds = Field(default_factory=list)
    owner_id: UUID | None = Field(None, description="default: the caller (for API keys, the key's creator)")
    custom_fields: CustomFieldValues = Field(default_factory=dict)
    consent: Consent | None = Field(None, description="default: unknown for both channels")


class ContactUpdate(InputModel):
    """JSON Merge Patch: absent = unchanged, null = cleared; custom_fields and address merge key by key."""

    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = None
    phone: Phone | None = None
    company_id: UUID | None = None
    title: Text200 | None = None
    tags: Tags | None = None
    source: Source | None = None
    utm: Utm | None = None
    birthday: date | None = None
    address: Address | None = None
    external_ids: ExternalIds | None = None
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues | None = None
    consent: Consent | None = Field(None, description="merged channel by channel; null resets both to unknown")


class ContactRead(RecordRead):
    metrics: MetricsRead = Field(description="read-only, over won deals (API.md Analytics): kept current with every deal and activity")
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    company_id: UUID | None
    title: str | None
    tags: list[str]
    source: str | None
    utm: dict[str, str | None] | None
    birthday: date | None
    address: dict[str, str | None] | None
    external_ids: list[dict[str, str]]
    consent: ConsentRead = Field(default_factory=lambda: ConsentRead(email="unknown", sms="unknown"))
