from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field

from app.domain.schemas import InputModel, ReadModel

Name = Annotated[str, Field(min_length=1, max_length=200, examples=["Field sales North"])]
Members = Annotated[list[UUID], Field(max_length=500, description="user ids; a user may be in several teams")]


class TeamCreate(InputModel):
    model_config = {"json_schema_extra": {"examples": [
        {"name": "Field sales North", "manager_id": "0190f5a0-0000-7000-8000-000000000001",
         "member_ids": ["0190f5a0-0000-7000-8000-000000000002"]}]}}

    name: Name
    manager_id: UUID | None = Field(None, description="sees the records owned by the team's members")
    member_ids: Members = []


class TeamUpdate(InputModel):
    model_config = {"json_schema_extra": {"examples": [{"member_ids": []}]}}

    name: Name | None = None
    manager_id: UUID | None = None
    member_ids: Members | None = Field(None, description="replaces the whole membership")


class TeamRead(ReadModel):
    id: UUID
    name: str
    manager_id: UUID | None
    member_ids: list[UUID] = []
    created_at: datetime
    updated_at: datetime
    version: int
