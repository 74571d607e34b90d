from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, field_validator

from app.domain.outbound import check_url_syntax
from app.domain.schemas import InputModel, ReadModel

MASK = "********"
Text = Annotated[str, Field(min_length=1, max_length=1600, description="up to 10 concatenated SMS parts")]
HeaderName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")]
HeaderValue = Annotated[str, Field(max_length=2000, pattern=r"^[^\r\n]*$")]


class SmsGatewayIn(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "url": "https://sms.example.com/v1/messages", "method": "POST",
        "headers": {"Authorization": "Bearer sk_live_123", "Content-Type": "application/json"},
        "body_template": '{"from": {{ sender|tojson }}, "to": {{ to|tojson }}, "text": {{ text|tojson }}, '
                         '"reference": {{ id|tojson }}}',
        "from": "+4930901820"}]}}

    url: Annotated[str, Field(min_length=1, max_length=2000, description=(
        "the provider's endpoint; may hold placeholders (`{{ to|urlencode }}`) for gateways that take the "
        "message in the query string"))]
    method: Literal["POST", "PUT", "GET"] = "POST"
    headers: Annotated[dict[HeaderName, HeaderValue], Field(max_length=20)] = Field(
        default_factory=dict, description=(
            "sent with every request (API keys, Content-Type); sealed at rest and shown masked. A value of "
            f"`{MASK}` keeps the stored value of that header"))
    body_template: Annotated[str, Field(max_length=20_000)] = Field("", description=(
        "the request body, sandboxed Jinja2 with `to` (E.164), `sender` (the `from` number or name), `text` "
        "and `id` (the message's id, for the provider's idempotency); use `tojson` or `urlencode` for escaping"))
    from_: Annotated[str, Field(min_length=1, max_length=32, alias="from",
                                description="sender number (E.164) or alphanumeric sender id")]
    rate_per_minute: int = Field(60, ge=1, le=100_000, description="most campaign texts sent per minute")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "{" not in value.split("?", 1)[0]:
            check_url_syntax(value)
        elif not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


class SmsGatewayRead(ReadModel):
    model_config = ConfigDict(from_attributes=True, serialize_by_alias=True)

    url: str
    method: Literal["POST", "PUT", "GET"]
    headers: dict[str, str] = Field(description=f"names as stored, values masked (`{MASK}`)")
    body_template: str
    from_: str = Field(validation_alias="sender", serialization_alias="from")
    rate_per_minute: int
    updated_at: datetime
    version: int


class SmsSend(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "to": "+4915112345678", "text": "Hello Ana, your installer arrives at 9:00.",
        "contact_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91"}]}}

    to: Annotated[str, Field(min_length=3, max_length=40, description=(
        "a phone number: E.164, or national in the org's `default_phone_region`"))]
    text: Text
    contact_id: UUID | None = Field(None, description="on whose timeline it goes (default: the contact with "
                                                      "this number, if exactly one)")
    lead_id: UUID | None = None
    deal_id: UUID | None = None


class SmsRead(ReadModel):
    model_config = ConfigDict(from_attributes=True, serialize_by_alias=True)

    id: UUID
    status: Literal["queued", "sent", "failed"] = Field(description=(
        "`queued` until the gateway accepted it (`sent`) or refused it for good (`failed`, with `error`)"))
    to: str = Field(examples=["+4915112345678"])
    from_: str = Field(validation_alias="sender", serialization_alias="from")
    text: str
    contact_id: UUID | None
    lead_id: UUID | None
    deal_id: UUID | None
    created_by: UUID | None
    sent_at: datetime | None
    error: str | None
    attempts: int
    created_at: datetime
    version: int
