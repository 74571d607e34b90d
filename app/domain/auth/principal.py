"""Who is calling: a user (JWT) or an API key, always inside one org."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from app.domain.auth.models import Role
from app.domain.auth.scopes import ALL, grants


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: UUID
    type: Literal["user", "api_key", "form", "system", "automation"]
    id: UUID
    role: Role
    scopes: frozenset[str]
    user_id: UUID | None  # the acting user; for an API key, its creator (default owner of what it creates)
    depth: int = 0  # an automation's writes: how many automation writes led to them (loop protection)

    @classmethod
    def for_user(cls, org_id: UUID, user_id: UUID, role: str) -> Principal:
        return cls(org_id, "user", user_id, Role(role), frozenset([ALL]), user_id)

    def allows(self, scope: str, role: Role = Role.viewer) -> bool:
        if not self.role.at_least(role):
            return False
        if scope.endswith(":write") and self.role is Role.viewer:
            return False
        return grants(self.scopes, scope)

    @property
    def actor(self) -> dict[str, Any]:
        if self.type == "automation":
            return {"type": self.type, "id": str(self.id), "depth": self.depth}
        return {"type": self.type, "id": str(self.id)}
