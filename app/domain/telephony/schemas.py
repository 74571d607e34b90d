from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, field_validator

from app.domain.companies.schemas import CompanyRead
from app.domain.contacts.schemas import ContactRead
from app.domain.deals.schemas import DealRead
from app.domain.leads.schemas import LeadRead
from app.domain.outbound import check_url_syntax
from app.domain.schemas import InputModel, Instant, ReadModel
from app.domain.webhooks.signing import valid_secret

MASK = "********"
Phone = Annotated[str, Field(min_length=1, max_length=40, description=(
    "a phone number: E.164, or national in the org's `default_phone_region` (`030 1234567`)"))]
Direction = Literal["inbound", "outbound"]
Status = Literal["answered", "missed", "busy", "failed"]


class TelephonySettingsIn(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "originate_url": "https://pbx.example.com/api/originate", "auth_header": "Bearer pbx_live_123",
        "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "assignees": ["0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91"]}]}}

    originate_url: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(None, description=(
        "where click-to-call requests go (`POST /v1/calls/originate`); public hosts only, as webhooks'"))
    auth_header: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\r\n]*$")] | None = Field(
        None, description=f"sent as `Authorization` with every click-to-call request; sealed at rest, shown masked. "
                          f"`{MASK}` keeps the stored value")
    webhook_secret: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(None, description=(
        "the Standard Webhooks secret (`whsec_` and base64 of 16 to 64 bytes) the provider signs its call events "
        f"with (`POST /v1/public/telephony/{{org_id}}/calls`); sealed at rest, shown masked. `{MASK}` keeps the "
        "stored value; without one, the provider's events are refused"))
    assignees: Annotated[list[UUID], Field(max_length=100)] = Field(default_factory=list, description=(
        "leads for unknown inbound callers go round-robin to those of them who are active and not out of office "
        "(none: the first active admin)"))

    @field_validator("originate_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            check_url_syntax(value)
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and value != MASK and not valid_secret(value):
            raise ValueError("must be `whsec_` and base64 of 16 to 64 bytes (a Standard Webhooks secret)")
        return value


class TelephonySettingsRead(ReadModel):
    originate_url: str | None
    auth_header: str | None = Field(description=f"`{MASK}` when set")
    webhook_secret: str | None = Field(description=f"`{MASK}` when set")
    assignees: list[UUID]
    webhook_path: str = Field(description="where the provider posts its signed call events (on this API's host)",
                              examples=["/v1/public/telephony/0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e90/calls"])
    updated_at: datetime
    version: int


class CallCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "direction": "inbound", "from": "+4915112345678", "to": "+4930901820",
        "started_at": "2026-12-04T10:15:00+01:00", "duration_seconds": 185, "status": "answered",
        "recording_url": "https://pbx.example.com/recordings/8812.mp3",
        "user_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91"}]}}

    direction: Direction
    from_: Phone = Field(alias="from", description="the calling number (the customer's when inbound)")
    to: Phone = Field(description="the called number (the customer's when outbound)")
    started_at: Instant
    duration_seconds: int = Field(ge=0, le=7 * 24 * 3600, description="talk time; 0 for a call not answered")
    status: Status
    recording_url: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    user_id: UUID | None = Field(None, description=(
        "who took or made the call (an active user); default: the calling user, none for an API key"))

    @field_validator("recording_url")
    @classmethod
    def _recording(cls, value: str | None) -> str | None:
        if value is not None:
            check_url_syntax(value)
        return value


class CallRead(ReadModel):
    model_config = ConfigDict(from_attributes=True, serialize_by_alias=True)

    id: UUID
    direction: Direction
    from_: str = Field(validation_alias="from_phone", serialization_alias="from", examples=["+4915112345678"])
    to: str = Field(validation_alias="to_phone", examples=["+4930901820"])
    started_at: datetime
    duration_seconds: int
    status: Status
    recording_url: str | None
    user_id: UUID | None
    contact_id: UUID | None = Field(description="the contact with the customer's number")
    lead_id: UUID | None = Field(description="else the open lead with it (for an unknown inbound caller, a new one)")
    activity_id: UUID = Field(description="the done `call` activity logging it, on that record's timeline")
    task_id: UUID | None = Field(description="the call-back task it opened (a missed call, a new lead)")
    created_at: datetime
    version: int


class OriginateIn(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "to": "0151 12345678", "user_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91"}]}}

    to: Phone
    user_id: UUID | None = Field(None, description="whose phone rings first (an active user); default: the caller")


class OriginationRead(ReadModel):
    id: UUID
    status: Literal["queued", "sent", "failed"] = Field(description=(
        "`queued` until the provider took the request (`sent`) or refused it for good (`failed`)"))
    to: str = Field(examples=["+4915112345678"])
    user_id: UUID
    created_at: datetime


class Lookup(ReadModel):
    """What a screen pop shows for a number; each record as its own GET returns it."""

    contact: ContactRead | None
    lead: LeadRead | None = Field(description="the oldest open lead with this number")
    company: CompanyRead | None = Field(description="the contact's company, else the company with this number")
    open_deals: list[DealRead] = Field(description="open deals of the contact or the company, newest first (50 at "
                                                   "most)")


def masked(value: Any) -> str | None:
    return MASK if value else None
