from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, Field, model_validator

from app.domain.outbound import check_url_syntax
from app.domain.schemas import InputModel, Name, ReadModel
from app.domain.text import plain_text

TARGETS = ("first_name", "last_name", "email", "phone", "company_name", "title", "note")


def _origin(value: str) -> str:
    value = value.rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?", value):
        raise ValueError("an origin is scheme://host[:port], e.g. https://www.example.com")
    return value.lower()


def _target(value: str) -> str:
    if value not in TARGETS and not re.fullmatch(r"cf\.[a-z][a-z0-9_]{0,63}", value):
        raise ValueError(f"map to one of {', '.join(TARGETS)} or cf.<key>")
    return value


def _url(value: str) -> str:
    check_url_syntax(value)
    return value


def plain_names(fields: dict[str, str]) -> dict[str, str]:
    """A submission's field names as plain text, like its values (they are shown with them, e.g. in the lead's
    note). A name that was nothing but markup goes with its value; of two names that end up equal, the first
    is kept."""
    out: dict[str, str] = {}
    for name, value in fields.items():
        plain = plain_text(name)
        if plain:
            out.setdefault(plain, value)
    return out


Origin = Annotated[str, Field(max_length=300, examples=["https://www.example.com"]), AfterValidator(_origin)]
Target = Annotated[str, AfterValidator(_target)]
SiteField = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-\[\]]+$")]
FieldMap = Annotated[dict[SiteField, Target], Field(max_length=100, examples=[{"your-name": "first_name",
                                                                               "mail": "email", "plan": "cf.plan"}])]
RedirectUrl = Annotated[str, Field(max_length=2048), AfterValidator(_url)]


class FormCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{
        "name": "Demo request", "redirect_url": "https://www.example.com/thanks",
        "allowed_origins": ["https://www.example.com"], "sla_minutes": 15}]}}

    name: Name
    enabled: bool = True
    creates: Literal["lead", "deal"] = "lead"
    pipeline_id: UUID | None = Field(None, description="required with creates=deal: the deal opens in its first stage")
    redirect_url: RedirectUrl | None = Field(None, description="where an HTML form post lands (303)")
    allowed_origins: Annotated[list[Origin], Field(max_length=50)] = Field(default_factory=list)
    assignees: Annotated[list[UUID], Field(max_length=200)] | None = Field(
        None, description="round-robin among these (active, not out of office); default: the form's creator")
    sla_minutes: int = Field(15, ge=1, le=10_080, description="the call-back task is due this long after submission")
    escalate_to: UUID | None = Field(None, description="told when the call-back is late; default: the assignee's manager")
    field_map: FieldMap = Field(default_factory=dict, description="site field → lead field or cf.<key>")
    min_fill_seconds: int | None = Field(None, ge=1, le=3600, description="faster submissions are treated as bots")

    @model_validator(mode="after")
    def _deal_needs_pipeline(self) -> FormCreate:
        if self.creates == "deal" and self.pipeline_id is None:
            raise ValueError("pipeline_id is required when the form creates deals")
        return self


class FormUpdate(InputModel):
    name: Name | None = None
    enabled: bool | None = None
    creates: Literal["lead", "deal"] | None = None
    pipeline_id: UUID | None = None
    redirect_url: RedirectUrl | None = None
    allowed_origins: Annotated[list[Origin], Field(max_length=50)] | None = None
    assignees: Annotated[list[UUID], Field(max_length=200)] | None = None
    sla_minutes: int | None = Field(None, ge=1, le=10_080)
    escalate_to: UUID | None = None
    field_map: FieldMap | None = None
    min_fill_seconds: int | None = Field(None, ge=1, le=3600)


class FormRead(ReadModel):
    id: UUID
    name: str
    enabled: bool
    creates: Literal["lead", "deal"]
    pipeline_id: UUID | None
    redirect_url: str | None
    allowed_origins: list[str]
    assignees: list[UUID]
    sla_minutes: int
    escalate_to: UUID | None
    field_map: dict[str, str]
    min_fill_seconds: int | None
    public_key: str = Field(description="goes in the public submission URL; rotate it to cut off a leaked one")
    created_by: UUID
    spam_count: int = Field(0, description="submissions dropped as spam (honeypot, too fast, rate limited); "
                                           "GET /v1/forms/{id}/submissions?status=spam lists those still kept")
    last_spam_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    version: int


class Embed(ReadModel):
    html: str = Field(description="a plain HTML form to paste into a page")
    javascript: str = Field(description="a fetch() example posting JSON")
    action_url: str


class SubmissionRead(ReadModel):
    id: UUID
    form_id: UUID
    received_at: datetime
    fields: dict[str, str] = Field(description="the fields as posted, mapped or not")
    utm: dict[str, str] | None = Field(description="`{source, medium, campaign, term, content}` as far as given, "
                                                   "from the body, the query or the page URL",
                                       examples=[{"source": "google", "medium": "cpc"}])
    gclid: str | None
    fbclid: str | None
    page_url: str | None
    referrer: str | None
    user_agent: str | None
    lead_id: UUID | None
    contact_id: UUID | None
    deal_id: UUID | None
    matched: Literal["none", "contact", "lead"]
    status: Literal["accepted", "spam"] = Field(
        "accepted", description="`spam`: dropped by the intake (nothing was created), kept to be noticed")
    spam_reason: Literal["honeypot", "too_fast", "rate_limited"] | None = None
    invalid_fields: dict[str, dict[str, str]] | None = Field(
        None, description="values that failed validation, kept: `{<field>: {value, reason}}` (also in the note "
                          "on the lead's timeline)")


class Accepted(ReadModel):
    status: Literal["accepted"] = "accepted"
    id: UUID
