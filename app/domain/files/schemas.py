from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from app.domain.schemas import ReadModel

ParentType = Literal["contact", "company", "lead", "deal", "activity"]


class FileRead(ReadModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [{
        "id": "0193a1c2-7d4e-7f00-8a1b-2c3d4e5f6a7b", "filename": "offer-signed.pdf",
        "content_type": "application/pdf", "size": 48213,
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "object_type": "deal",
        "object_id": "0190a8f4-6c2e-7d4b-9a1f-3e5b2c7d8e91", "created_by": "0192b7a0-7c1e-7d8a-9a51-5d7e6f1c2b3a",
        "created_at": "2026-12-04T10:00:00Z", "deleted_at": None, "version": 1}]})

    id: UUID
    filename: str = Field(description=(
        "the uploaded name, without any directory part, control characters, or dots and blanks at either end"))
    content_type: str = Field(description=(
        "found from the file's first bytes (a PNG is image/png whatever the client said); the type the client "
        "declared is used only for text that no signature identifies, else application/octet-stream"))
    size: int = Field(description="bytes")
    sha256: str = Field(description="hex SHA-256 of the content")
    object_type: ParentType = Field(description="the kind of record the file is attached to")
    object_id: UUID
    created_by: UUID | None = Field(description="the user who uploaded it (null for an API key)")
    created_at: datetime
    deleted_at: datetime | None = None
    version: int
