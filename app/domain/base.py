"""Declarative base shared by every table: naming convention, tenant key, audit columns."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, MetaData, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from app.ids import new_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), UUID: PGUUID(as_uuid=True)}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Versioned:
    """`version` bumps on every UPDATE and guards it (optimistic concurrency; it is the ETag)."""

    version: Mapped[int] = mapped_column(Integer, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, object]:
        # eager_defaults: server-set columns (updated_at) come back with RETURNING, no lazy load later.
        return {"version_id_col": cls.version, "eager_defaults": True}


class TenantRecord(Timestamps, Versioned):
    """A record owned by one organisation: `PRIMARY KEY (org_id, id)`, soft-deletable."""

    org_id: Mapped[UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True, sort_order=-10
    )
    id: Mapped[UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-9)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class SalesRecord(TenantRecord):
    """Contacts, companies, leads, deals, activities: owned by a teammate, with custom fields."""

    owner_id: Mapped[UUID] = mapped_column()
    custom_fields: Mapped[dict] = mapped_column(JSONB, default=dict, server_default="{}")
    import_id: Mapped[UUID | None] = mapped_column(default=None)  # the import that created it


def owner_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["org_id", "owner_id"], ["users.org_id", "users.id"], name=f"fk_{table}_owner")


def ref_fk(table: str, column: str, target: str, ondelete: str | None = None) -> ForeignKeyConstraint:
    """A same-org reference: `(org_id, column) -> target(org_id, id)`."""
    return ForeignKeyConstraint(["org_id", column], [f"{target}.org_id", f"{target}.id"],
                                name=f"fk_{table}_{column}", ondelete=ondelete)


def jsonb_gin(table: str, column: str) -> Index:
    """A GIN index for containment filters (`@>`) on a jsonb column."""
    return Index(f"ix_{table}_{column}", column, postgresql_using="gin", postgresql_ops={column: "jsonb_path_ops"})
