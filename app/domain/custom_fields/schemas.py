from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, model_validator

from app.domain import kinds
from app.domain.schemas import InputModel, ReadModel

ObjectName = Literal[kinds.names("custom_fields")]  # type: ignore[valid-type]
FieldType = Literal["text", "number", "date", "boolean", "select", "multiselect", "url", "email", "phone"]
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["industry_segment"],
                           description="lower_snake_case; values live in `custom_fields.<key>`")]
Option = Annotated[str, Field(min_length=1, max_length=200)]


class CustomFieldCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [
        {"object": "deal", "key": "contract_type", "label": "Contract type", "type": "select",
         "options": ["annual", "monthly"], "required": False}]}}

    object: ObjectName
    key: Key
    label: Annotated[str, Field(min_length=1, max_length=200)]
    type: FieldType
    options: list[Option] = Field(default_factory=list, max_length=500)
    required: bool = False
    position: int = Field(0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _options_for_selects(self) -> CustomFieldCreate:
        if self.type in ("select", "multiselect") and not self.options:
            raise ValueError("select and multiselect fields need options")
        if self.type not in ("select", "multiselect") and self.options:
            raise ValueError("only select and multiselect fields take options")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be unique")
        return self


class CustomFieldUpdate(InputModel):
    """`object`, `key` and `type` are fixed once created (stored values depend on them)."""

    label: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    options: list[Option] | None = Field(None, max_length=500)
    required: bool | None = None
    position: int | None = Field(None, ge=0, le=10_000)


class CustomFieldRead(ReadModel):
    id: UUID
    object: ObjectName
    key: str
    label: str
    type: FieldType
    options: list[str]
    required: bool
    position: int
    created_at: datetime
    updated_at: datetime
    version: int
