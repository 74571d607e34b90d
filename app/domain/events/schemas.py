"""An event as the changes feed, webhooks and GDPR exports show it: one envelope per object type, told apart
by `object_type`, whose `data.object` is the record as its own GET returns it.

Built from the registry (`app.domain.kinds`): a kind whose events reach the feed has its envelope here without
anyone listing it. The few events whose data is not `{object, previous?}` say so beside their kind."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.domain import kinds
from app.domain.deals.schemas import ConvertResult
from app.domain.forms.schemas import SubmissionRead
from app.domain.schemas import Actor


class EnvelopeBase(BaseModel):
    id: UUID = Field(description="the event's id; the same in the feed, in webhooks (`webhook-id`) and exports")
    type: str = Field(description="the event type, `<object_type>.<action>` (the catalogue: API.md \"Events\")",
                      examples=["deal.stage_changed"])
    object_id: UUID
    action: str = Field(examples=["stage_changed"])
    occurred_at: datetime
    actor: Actor
    version: int | None = Field(description="the record's version after the change")


_PREVIOUS = (dict[str, Any] | None,
             Field(None, description="the old values of the fields this change touched (updates and stage moves)"))
# Events whose data adds to {object, previous}: their extra fields, documented on the kind's data.
_SLA_BREACHED: dict[str, Any] = {
             "notify": (list[UUID] | None, Field(None, description="`lead.sla_breached`: who is told")),
             "title": (str | None, Field(None, description="`lead.sla_breached`: the notification's title")),
             "activity_id": (UUID | None, Field(None, description="`lead.sla_breached`: the call-back task")),
             "form_id": (UUID | None, Field(None, description="`lead.sla_breached`: the form")),
             "assignee_id": (UUID | None, Field(None, description="`lead.sla_breached`: the task's assignee"))}
_EXTRA: dict[str, dict[str, Any]] = {
    "webhook": {"reason": (str | None, Field(None, description="`webhook.disabled`: why"))},
    "lead": _SLA_BREACHED,
    "contact": {**_SLA_BREACHED,  # the form's record: a lead, or a known contact
                "channel": (str | None, Field(None, description="`contact.unsubscribed`: email or sms")),
                "campaign_id": (UUID | None, Field(None, description="`contact.unsubscribed`: through which"))},
}
# What `data.object` may be beyond the kind's own read model.
_OTHER_OBJECTS: dict[str, tuple[Any, ...]] = {"form": (SubmissionRead,)}  # form.submitted: the submission


def _envelope(kind: kinds.RecordType) -> type[EnvelopeBase]:
    name = kind.label.replace(" ", "")
    obj: Any = kind.read if kind.read is not None else dict[str, Any]
    for other in _OTHER_OBJECTS.get(kind.object_type, ()):
        obj = obj | other
    data: Any = create_model(  # type: ignore[call-overload]
        f"{name}ChangeData", __config__=ConfigDict(extra="allow"),
        object=(obj, Field(description=f"the {kind.label.lower()} after the change (a tombstone for a deletion)")),
        previous=_PREVIOUS, **_EXTRA.get(kind.object_type, {}))
    if kind.object_type == "lead":
        data = data | ConvertResult  # lead.converted: {lead, contact, company, deal}
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{name}Change", __base__=EnvelopeBase, object_type=(Literal[kind.object_type], ...), data=(data, ...))


ENVELOPES = tuple(_envelope(k) for k in kinds.having("feed"))
Envelope = Annotated[Union[ENVELOPES], Field(discriminator="object_type")]  # type: ignore[valid-type]  # noqa: UP007
"""One event of the feed, typed by its `object_type`."""
