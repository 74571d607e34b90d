"""`expand=`: related records embedded under `expanded: {<name>: {...}|null}` on gets and lists of contacts,
leads, deals and activities (API.md "Related records").

One statement per expanded relation, whatever the page size: the ids of the page are collected and read with
`id = ANY(...)` through the target kind's readable rule (org, soft delete, record visibility), so a related
record the caller may not read comes back as `null`, exactly like one that was deleted. Expanding a kind takes
its read scope (`contacts:read` for `contact`); a missing one is a 403 naming it."""


from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel, Field, create_model
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload

from app.api import scoping
from app.domain import kinds
from app.domain.auth.models import User
from app.domain.auth.principal import Principal
from app.domain.errors import ValidationFailed
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.pipelines.schemas import StageRead
from app.domain.schemas import ReadModel


class UserBrief(ReadModel):
    """The user a record points at (owner, assignee)."""

    id: UUID
    name: str
    email: str


class PipelineBrief(ReadModel):
    """The pipeline a deal is in (its stages: `GET /v1/pipelines/{id}`)."""

    id: UUID
    name: str
    currency: str
    is_default: bool


@dataclass(frozen=True)
class Target:
    """What a relation points at: a record kind (read through its rule) or a plain org table."""

    read: type[BaseModel]
    kind: kinds.RecordType | None = None  # read through kind.readable(who)
    model: Any = None  # else this org table, soft-deleted rows left out
    scope_of: str | None = None  # the object type whose read scope it takes

    def statement(self, who: Principal, ids: list[UUID]) -> Any:
        if self.kind is not None:
            return select(self.kind.model).where(self.kind.readable(who), self.kind.model.id.in_(ids))
        stmt = (select(self.model).where(self.model.org_id == who.org_id, self.model.id.in_(ids))
                .options(lazyload("*")))  # a pipeline's stages are not part of its brief
        return stmt.where(self.model.deleted_at.is_(None)) if hasattr(self.model, "deleted_at") else stmt


def _kind(k: kinds.RecordType) -> Target:
    assert k.read is not None
    return Target(k.read, kind=k, scope_of=k.object_type)


_USER = Target(UserBrief, model=User)
_TARGETS: dict[str, Target] = {
    "contact": _kind(kinds.CONTACT), "company": _kind(kinds.COMPANY), "deal": _kind(kinds.DEAL),
    "lead": _kind(kinds.LEAD), "owner": _USER, "assignee": _USER,
    "stage": Target(StageRead, model=Stage, scope_of="pipeline"),
    "pipeline": Target(PipelineBrief, model=Pipeline, scope_of="pipeline"),
}

# name -> the column of the record holding the related id, per kind that offers `expand`
RELATIONS: dict[str, tuple[str, ...]] = {
    "contact": ("company", "owner"),
    "lead": ("contact", "company", "deal", "owner"),
    "deal": ("contact", "company", "owner", "stage", "pipeline"),
    "activity": ("contact", "company", "deal", "lead", "owner", "assignee"),
}


def expanded_model(object_type: str) -> type[BaseModel]:
    """`{<name>: <its read model> | null}` for this kind: typed in the OpenAPI document."""
    fields: dict[str, Any] = {
        name: (_TARGETS[name].read | None, Field(None, description=f"the record `{name}_id` points at; null when "
                                                                   "there is none or you may not read it"))
        for name in RELATIONS[object_type]}
    label = kinds.named(object_type).label.replace(" ", "")
    return create_model(f"{label}Expanded", **fields)


def read_with_expanded(object_type: str, read: type[BaseModel]) -> type[BaseModel]:
    """The kind's read model plus `expanded` (present only when `expand=` asked for it)."""
    return create_model(f"{read.__name__}WithRelated", __base__=read,
                        expanded=(expanded_model(object_type) | None,
                                  Field(None, description="the relations named in `expand=`; absent otherwise")))


def expand_query(object_type: str) -> Any:
    names = RELATIONS[object_type]

    async def parse(expand: Annotated[list[str] | None, Query(
            description=f"related records to embed under `expanded`, comma-separated: {', '.join(names)}. One "
                        "extra statement per relation, never one per record")] = None) -> tuple[str, ...]:
        wanted = [n.strip() for part in expand or [] for n in part.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ValidationFailed(f"cannot expand {', '.join(unknown)}; choose from {', '.join(names)}",
                                   loc=("query", "expand"), type="enum")
        return tuple(dict.fromkeys(wanted))

    return parse


async def nothing() -> tuple[str, ...]:
    """Kinds without relations to expand take no `expand` parameter."""
    return ()


async def embed(session: AsyncSession, who: Principal, names: Sequence[str], records: Sequence[Any],
                dumped: Sequence[dict[str, Any]]) -> None:
    """Add `expanded` to each dumped record: one statement per relation in `names`."""
    if not names:
        return
    scoping.refuse_unreadable(who, [t for n in names if (t := _TARGETS[n].scope_of)], "Expanding these relations")
    for out in dumped:
        out["expanded"] = {}
    for name in names:
        target = _TARGETS[name]
        column = f"{name}_id"
        ids = list({v for r in records if (v := getattr(r, column)) is not None})
        found: dict[UUID, dict[str, Any]] = {}
        if ids:
            rows = (await session.scalars(target.statement(who, ids))).all()
            found = {row.id: target.read.model_validate(row).model_dump(mode="json") for row in rows}
        for record, out in zip(records, dumped, strict=True):
            out["expanded"][name] = found.get(getattr(record, column))
