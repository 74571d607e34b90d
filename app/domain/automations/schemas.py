"""The contract's automation shapes (API.md "Automations")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, model_validator

from app.domain.schemas import InputModel, Name, ReadModel, Source
from app.domain.webhooks.schemas import Url

Path = Annotated[str, Field(min_length=3, max_length=120, pattern=r"^[a-z_]+\.[a-z_][a-z0-9_.]*$",
                            examples=["deal.value.amount", "contact.tags", "deal.cf.region"])]
Op = Literal["eq", "neq", "in", "gt", "gte", "lt", "lte", "contains", "is_empty"]
OBJECTS = ("deal", "contact", "lead", "company", "activity")


class EventTrigger(InputModel):
    event: Annotated[str, Field(max_length=64, examples=["deal.stage_changed"])]
    pipeline_id: UUID | None = None
    from_stage_id: UUID | None = None
    to_stage_id: UUID | None = None
    source: Source | None = None
    form_id: UUID | None = None

    @model_validator(mode="after")
    def _on_records(self) -> EventTrigger:  # whether the type is in the catalogue: the service (kinds sit below)
        if self.event.split(".", 1)[0] not in OBJECTS:
            raise ValueError(f"event: rules run on {', '.join(OBJECTS)} events")
        return self


class InStageTrigger(InputModel):
    schedule: Literal["in_stage_longer_than"]
    days: Annotated[int, Field(ge=1, le=3650)]
    stage_id: UUID | None = Field(None, description="default: any stage")


class NoActivityTrigger(InputModel):
    schedule: Literal["no_activity_for"]
    days: Annotated[int, Field(ge=1, le=3650)]
    object: Literal["contact", "deal", "lead"]


class DateOffsetTrigger(InputModel):
    schedule: Literal["date_offset"]
    field: Annotated[str, Field(pattern=r"^(contact\.birthday|deal\.expected_close_date|"
                                        r"(contact|deal|lead|company)\.cf\.[a-z][a-z0-9_]{0,62})$",
                                examples=["contact.birthday"])]
    days: Annotated[int, Field(ge=-365, le=365)] = 0
    at: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time, the org's time zone")] = (
        "09:00")


Trigger = EventTrigger | InStageTrigger | NoActivityTrigger | DateOffsetTrigger


class Condition(InputModel):
    field: Path
    op: Op
    value: Any = None


class Assignee(InputModel):
    type: Literal["owner", "user", "manager", "round_robin"]
    user_id: UUID | None = None
    user_ids: Annotated[list[UUID], Field(max_length=100)] | None = None
    team_id: UUID | None = None

    @model_validator(mode="after")
    def _complete(self) -> Assignee:
        if self.type == "user" and self.user_id is None:
            raise ValueError("assignee user needs user_id")
        if self.type == "round_robin" and not (self.user_ids or self.team_id):
            raise ValueError("assignee round_robin needs user_ids or team_id")
        return self


class Due(InputModel):
    in_minutes: Annotated[int, Field(ge=0, le=525_600)] | None = None
    field: Path | None = None
    offset_minutes: Annotated[int, Field(ge=-525_600, le=525_600)] = 0

    @model_validator(mode="after")
    def _one(self) -> Due:
        if (self.in_minutes is None) == (self.field is None):
            raise ValueError("due is {in_minutes} or {field, offset_minutes}")
        return self


class CreateTask(InputModel):
    type: Literal["create_task"]
    subject: Annotated[str, Field(min_length=1, max_length=300)]
    assignee: Assignee = Field(default_factory=lambda: Assignee(type="owner"))
    due: Due | None = None


class SendEmail(InputModel):
    type: Literal["send_email"]
    template_id: UUID
    mailbox_id: UUID
    to: Annotated[str, Field(min_length=1, max_length=320, description="contact | owner | manager | <address>")]


class SendSms(InputModel):
    type: Literal["send_sms"]
    template_id: UUID


class UpdateField(InputModel):
    type: Literal["update_field"]
    field: Path
    value: Any = None


class AddTag(InputModel):
    type: Literal["add_tag"]
    tag: Annotated[str, Field(min_length=1, max_length=64)]


class MoveStage(InputModel):
    type: Literal["move_stage"]
    stage_id: UUID


class AssignOwner(InputModel):
    type: Literal["assign_owner"]
    assignee: Assignee


class Delay(InputModel):
    type: Literal["delay"]
    minutes: Annotated[int, Field(ge=1, le=525_600)]


class CallWebhook(InputModel):
    """POST the run's object to `url`, signed like webhook deliveries with the rule's `webhook_secret`
    (Standard Webhooks; `webhook-id` the same on every attempt of one action of one run)."""

    type: Literal["webhook"]
    url: Url


Action = Annotated[CreateTask | SendEmail | SendSms | UpdateField | AddTag | MoveStage | AssignOwner | CallWebhook
                   | Delay, Field(discriminator="type")]


class AutomationCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "name": "Measurement → measurer's task", "enabled": True,
        "trigger": {"event": "deal.stage_changed", "to_stage_id": "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a"},
        "conditions": [{"field": "deal.value.amount", "op": "gte", "value": "1000"}],
        "actions": [{"type": "create_task", "subject": "Measure on site", "due": {"in_minutes": 1440},
                     "assignee": {"type": "user", "user_id": "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3b"}}]}]}}

    name: Name
    enabled: bool = True
    trigger: Trigger = Field(description=(
        "an event of the catalogue narrowed by the optional fields, or a schedule: `in_stage_longer_than` "
        "(open deals), `no_activity_for` (contacts or deals), `date_offset` (a date field; birthdays yearly)"))
    conditions: Annotated[list[Condition], Field(max_length=20)] = Field(default_factory=list)
    actions: Annotated[list[Action], Field(min_length=1, max_length=20)]


class AutomationUpdate(InputModel):
    name: Name | None = None
    enabled: bool | None = None
    trigger: Trigger | None = None
    conditions: Annotated[list[Condition], Field(max_length=20)] | None = None
    actions: Annotated[list[Action], Field(min_length=1, max_length=20)] | None = None


class AutomationRead(ReadModel):
    id: UUID
    name: str
    enabled: bool
    trigger: Trigger
    conditions: list[Condition]
    actions: list[Action]
    created_at: datetime
    updated_at: datetime
    version: int


class AutomationCreated(AutomationRead):
    webhook_secret: str = Field(description=(
        "`whsec_...`: signs the rule's `webhook` actions; shown only here and on rotation "
        "(`POST /v1/automations/{id}/rotate-secret`)"))


class ActionResult(ReadModel):
    type: str
    status: Literal["succeeded", "failed", "skipped"]
    result: Any = Field(None, description="what it made (ids), or why it failed")


class RunRead(ReadModel):
    id: UUID
    event_id: UUID = Field(description="the triggering event; for a schedule, the occurrence's own id")
    object_type: str
    object_id: UUID
    status: Literal["queued", "succeeded", "failed", "skipped"] = Field(description=(
        "`queued` until a worker ran it (or while a `delay` runs: `reason` says until when); `skipped`: a "
        "condition did not hold"))
    reason: str | None
    depth: int = Field(description="0 for a run caused by a person's or client's write; +1 per automation write")
    started_at: datetime | None
    actions: list[ActionResult]


class DryRunRequest(InputModel):
    object_id: UUID


class ConditionCheck(ReadModel):
    field: str
    op: Op
    value: Any
    actual: Any
    passed: bool


class DryRun(ReadModel):
    would_run: bool
    conditions: list[ConditionCheck]
    actions: list[dict[str, Any]]
