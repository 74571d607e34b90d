from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from app.domain.schemas import InputModel, Name, ReadModel

Body = Annotated[str, Field(max_length=200_000)]
Subject = Annotated[str, Field(max_length=998)]


class TemplateCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "name": "Welcome", "channel": "email", "subject": "Welcome, {{ contact.first_name }}",
        "body_html": "<p>Hello {{ contact.first_name }},</p><p>{{ user.name }} from {{ org.name }}</p>",
        "body_text": "Hello {{ contact.first_name }},\n{{ user.name }} from {{ org.name }}"}]}}

    name: Name
    channel: Literal["email", "sms"] = "email"
    subject: Subject = ""
    body_html: Body | None = None
    body_text: Body | None = None


class TemplateUpdate(InputModel):
    name: Name | None = None
    subject: Subject | None = None
    body_html: Body | None = None
    body_text: Body | None = None


class TemplateRead(ReadModel):
    id: UUID
    name: str
    channel: Literal["email", "sms"]
    subject: str
    body_html: str | None
    body_text: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class PreviewRequest(InputModel):
    contact_id: UUID = Field(description="whose data fills `contact.*` (and `company.*`, the contact's company)")
    deal_id: UUID | None = Field(None, description="fills `deal.*`")


class Rendered(ReadModel):
    model_config = {"json_schema_extra": {"examples": [{
        "subject": "Welcome, Ana", "html": "<p>Hello Ana,</p>", "text": "Hello Ana,"}]}}

    subject: str
    html: str | None
    text: str | None
