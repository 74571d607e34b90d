"""Users, refresh tokens, API keys and the two global lookups used before the org is known."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord
from app.ids import new_id


class Role(enum.StrEnum):
    owner = "owner"
    admin = "admin"
    manager = "manager"
    member = "member"
    viewer = "viewer"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.viewer: 0, Role.member: 1, Role.manager: 2, Role.admin: 3, Role.owner: 4}
ROLE_VALUES = ", ".join(f"'{r.value}'" for r in Role)


class User(TenantRecord, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN ({ROLE_VALUES})", name="role"),
        ForeignKeyConstraint(["org_id", "manager_id"], ["users.org_id", "users.id"], ondelete="SET NULL (manager_id)"),
        Index(None, "org_id", "manager_id"),
        Index(None, "org_id", "created_at", "id"),
    )

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    manager_id: Mapped[UUID | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    out_of_office: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    deactivated_at: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()
    password_changed_at: Mapped[datetime | None] = mapped_column()  # when the password was last set


class LoginEmail(Base):
    """Global lookup: login email -> (org, user). An email is unique across the instance."""

    __tablename__ = "login_emails"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    org_id: Mapped[UUID] = mapped_column()
    user_id: Mapped[UUID] = mapped_column()
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "user_id"], ["users.org_id", "users.id"], ondelete="CASCADE"),
    )


class RefreshToken(Base):
    """One issued refresh token. Tokens of one login form a family; rotation chains them."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "user_id"], ["users.org_id", "users.id"], ondelete="CASCADE"),
        Index(None, "org_id", "family_id"),
        Index(None, "org_id", "user_id"),
        Index(None, "expires_at"),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[UUID] = mapped_column()
    family_id: Mapped[UUID] = mapped_column()
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    rotated_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


KEY_KINDS = ("org", "personal")


class ApiKey(TenantRecord, Base):
    """An org API key (`kind` org: acts as itself, within its scopes and its creator's current role) or a
    personal access token (`kind` personal: acts as its user, `created_by`, within its scopes)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "created_by"], ["users.org_id", "users.id"]),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in KEY_KINDS)})", name="kind"),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "created_by", "kind"),
    )

    kind: Mapped[str] = mapped_column(String(16), default="org", server_default=text("'org'"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    created_by: Mapped[UUID] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    last_used_ip: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class ApiKeyPrefix(Base):
    """Global lookup: API-key prefix -> (org, key)."""

    __tablename__ = "api_key_prefixes"
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "api_key_id"], ["api_keys.org_id", "api_keys.id"], ondelete="CASCADE"),
    )

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    org_id: Mapped[UUID] = mapped_column()
    api_key_id: Mapped[UUID] = mapped_column()
