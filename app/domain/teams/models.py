"""Teams: a manager and members. Record visibility (`app.domain.kinds`) reads them."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.base import Base, TenantRecord, ref_fk


class Team(TenantRecord, Base):
    __tablename__ = "teams"
    __table_args__ = (
        ref_fk("teams", "manager_id", "users"),
        Index(None, "org_id", "created_at", "id"),
        Index(None, "org_id", "manager_id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    manager_id: Mapped[UUID | None] = mapped_column()


class TeamMember(Base):
    """A user's place in a team (a user may belong to several teams)."""

    __tablename__ = "team_members"
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "team_id"], ["teams.org_id", "teams.id"], ondelete="CASCADE",
                             name="fk_team_members_team"),
        ForeignKeyConstraint(["org_id", "user_id"], ["users.org_id", "users.id"], ondelete="CASCADE",
                             name="fk_team_members_user"),
        Index(None, "org_id", "user_id"),
    )

    org_id: Mapped[UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[UUID] = mapped_column(primary_key=True)
    user_id: Mapped[UUID] = mapped_column(primary_key=True)
