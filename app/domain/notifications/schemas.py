from __future__ import annotations

from datetime import datetime
from uuid import UUID

from app.domain.schemas import ReadModel


class NotificationRead(ReadModel):
    id: UUID
    kind: str
    title: str
    object_type: str | None
    object_id: UUID | None
    created_at: datetime
    read_at: datetime | None
