from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from app.domain.schemas import CustomFieldValues, InputModel, Instant, RecordRead

Type = Literal["task", "call", "meeting", "note", "email"]
Priority = Literal["low", "normal", "high"]
Subject = Annotated[str, Field(min_length=1, max_length=300)]
Body = Annotated[str, Field(max_length=100_000)]


class ActivityCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "type": "call", "subject": "Call back about the demo", "due_at": "2026-11-25T15:00:00Z",
        "priority": "high", "lead_id": "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"}]}}

    type: Type
    subject: Subject
    body: Body | None = None
    due_at: Instant | None = None
    remind_at: Instant | None = None
    done_at: Instant | None = Field(None, description="set to log something already done (a call, a note)")
    assignee_id: UUID | None = Field(None, description="default: the caller for tasks, calls and meetings")
    contact_id: UUID | None = None
    company_id: UUID | None = None
    deal_id: UUID | None = None
    lead_id: UUID | None = None
    priority: Priority = "normal"
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues = Field(default_factory=dict)


class ActivityUpdate(InputModel):
    """`done_at: null` reopens a completed activity."""

    type: Type | None = None
    subject: Subject | None = None
    body: Body | None = None
    due_at: Instant | None = None
    remind_at: Instant | None = None
    done_at: Instant | None = None
    assignee_id: UUID | None = None
    contact_id: UUID | None = None
    company_id: UUID | None = None
    deal_id: UUID | None = None
    lead_id: UUID | None = None
    priority: Priority | None = None
    owner_id: UUID | None = None
    custom_fields: CustomFieldValues | None = None


class ActivityRead(RecordRead):
    type: Type
    subject: str
    body: str | None
    due_at: AwareDatetime | None
    remind_at: AwareDatetime | None
    done_at: AwareDatetime | None
    assignee_id: UUID | None
    contact_id: UUID | None
    company_id: UUID | None
    deal_id: UUID | None
    lead_id: UUID | None
    priority: Priority
