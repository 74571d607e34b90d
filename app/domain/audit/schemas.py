from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from app.domain.schemas import ReadModel

AuditAction = Literal["create", "update", "delete", "restore", "export", "erase", "login.succeeded", "login.failed",
                      "token.refreshed", "api_key.created", "api_key.revoked", "role.changed", "settings.changed"]


class AuditActor(ReadModel):
    type: str = Field(description="`user` or `api_key`; `system` for background work, `anonymous` for a failed "
                                  "login (nobody proved who they are)", examples=["user"])
    id: UUID | None


class AuditEntryRead(ReadModel):
    id: UUID
    actor: AuditActor
    action: str = Field(examples=["update"], description="one of: " + ", ".join(AuditAction.__args__))
    object_type: str = Field(examples=["contact"])
    object_id: UUID | None
    changes: dict[str, list[Any]] = Field(
        description="field -> [before, after]; for `settings.changed` the changed settings",
        examples=[{"email": ["old@example.com", "new@example.com"]}])
    ip: str | None
    user_agent: str | None
    occurred_at: datetime


class LoginRead(ReadModel):
    id: UUID
    succeeded: bool
    reason: str | None = Field(description="why a login failed: `invalid_credentials`, `locked` or "
                                           "`password_expired`; null when it succeeded")
    ip: str | None
    user_agent: str | None
    occurred_at: datetime


def login_read(row: Any) -> LoginRead:
    """A `login.*` audit row as a login-history entry."""
    reason = (row.changes or {}).get("reason")
    return LoginRead(id=row.id, succeeded=row.action == "login.succeeded", reason=reason[1] if reason else None,
                     ip=row.ip, user_agent=row.user_agent, occurred_at=row.occurred_at)
