from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, Field

from app.domain.outbound import check_url_syntax
from app.domain.schemas import InputModel, ReadModel


def _url(value: str) -> str:
    check_url_syntax(value)
    return value


def _pattern(value: str) -> str:
    if value != "*" and not re.fullmatch(r"[a-z_]+\.(\*|[a-z_]+)", value):
        raise ValueError("use an event type like 'deal.stage_changed', a family like 'deal.*', or '*'")
    return value


Url = Annotated[str, Field(max_length=2048, examples=["https://erp.example.com/hooks/crm"]), AfterValidator(_url)]
EventPattern = Annotated[str, Field(max_length=64, examples=["deal.*"]), AfterValidator(_pattern)]


class WebhookCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [
        {"url": "https://erp.example.com/hooks/crm", "events": ["deal.*", "contact.created"],
         "description": "ERP sync"}]}}

    url: Url
    events: Annotated[list[EventPattern], Field(min_length=1, max_length=100)]
    description: Annotated[str, Field(max_length=500)] | None = None
    enabled: bool = True


class WebhookUpdate(InputModel):
    url: Url | None = None
    events: Annotated[list[EventPattern], Field(min_length=1, max_length=100)] | None = None
    description: Annotated[str, Field(max_length=500)] | None = None
    enabled: bool | None = Field(None, description="true re-enables an endpoint that was switched off")


class WebhookRead(ReadModel):
    id: UUID
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class WebhookCreated(WebhookRead):
    secret: str = Field(description="`whsec_...`, shown only here and on rotation; verify signatures with it")


class Attempt(ReadModel):
    at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None = None


class DeliveryRead(ReadModel):
    id: UUID = Field(description="the `webhook-id` header, the same on every attempt")
    event_id: UUID | None
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: list[Attempt]
    next_attempt_at: datetime | None
    created_at: datetime
    payload: dict[str, Any] = Field(description="the body sent (the event envelope)")
