from __future__ import annotations

from datetime import datetime
from uuid import UUID

from app.domain.schemas import ReadModel


class ImportRead(ReadModel):
    id: UUID
    object: str
    status: str
    filename: str
    file_format: str
    encoding: str | None
    delimiter: str | None
    mapping: dict[str, str]
    dedupe_by: str
    external_source: str | None
    on_duplicate: str
    dry_run: bool
    total: int | None
    processed: int
    created: int
    updated: int
    skipped: int
    failed: int
    error: str | None
    created_by: UUID
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: int
