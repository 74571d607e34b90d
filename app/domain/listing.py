"""List filters every sales list shares (`q`, owner, created/updated ranges, `cf.<key>`), applied in SQL to
the records the caller may read (the registry's one rule, through `Kind.readable`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, exists, func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.domain.custom_fields import service as custom_fields
from app.domain.kinds import Reader, RecordType, org_of
from app.domain.normalize import normalize_phone
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, org_settings

_WORD = re.compile(r"[\w@.+-]+", re.UNICODE)


@dataclass(frozen=True)
class ListQuery:
    page: PageRequest = field(default_factory=PageRequest)
    q: str | None = None
    owner_id: UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_since: datetime | None = None
    cf: Mapping[str, str] = field(default_factory=dict)
    include_deleted: bool = False
    import_id: UUID | None = None
    ids: tuple[UUID, ...] | None = None  # `ids=`: only these records


def belongs_to(column: Any, parent: RecordType, parent_id: UUID, who: Reader) -> ColumnElement[bool]:
    """A sub-list filter (`?deal_id=...`): the rows of that parent, if `who` may read it. A deleted parent's
    sub-lists are empty, as its own reads are 404."""
    return (column == parent_id) & exists().where(parent.readable(who), parent.model.id == parent_id)


async def search_clause(session: AsyncSession, org_id: UUID, model: Any, q: str) -> ColumnElement[bool]:
    """`q`: word prefixes over the full-text `search` column (names, email, phone), plus exact email or
    E.164 phone matches served by their own indexes."""
    words = [w.strip(".-") for w in _WORD.findall(q.lower()) if w.strip(".-")][:8]
    clauses: list[ColumnElement[bool]] = []
    if words:
        query = " & ".join(f"'{w.replace(chr(39), '')}':*" for w in words)
        clauses.append(model.search.op("@@")(func.to_tsquery("simple", query)))
    if "@" in q and hasattr(model, "email"):
        clauses.append(model.email == q.strip().lower())
    digits = re.sub(r"\D", "", q)
    if hasattr(model, "phone") and len(digits) >= 6 and re.fullmatch(r"[\d\s+()./-]+", q.strip()):
        try:
            region = (await org_settings(session, org_id)).default_phone_region
            clauses.append(model.phone == normalize_phone(q, region))
        except ValueError:
            pass
    return or_(*clauses) if clauses else model.id.is_(None)


async def list_records(session: AsyncSession, kind: Kind[Any], who: Reader, query: ListQuery,
                       sorts: Mapping[str, InstrumentedAttribute[Any]],
                       where: Sequence[ColumnElement[bool]] = ()) -> Page[Any]:
    stmt = await filtered(session, kind, who, query, where)
    return await keyset_page(session, stmt, query.page, sorts, kind.model.id)


async def filtered(session: AsyncSession, kind: Kind[Any], who: Reader, query: ListQuery,
                   where: Sequence[ColumnElement[bool]] = ()) -> Select[Any]:
    """The records of the list's filters that `who` may read, as a SELECT (a page of it, or an aggregate)."""
    model: Any = kind.model
    org_id = org_of(who)
    stmt = kind.readable(who, query.include_deleted)
    if query.q:
        stmt = stmt.where(await search_clause(session, org_id, model, query.q))
    if query.owner_id is not None:
        stmt = stmt.where(model.owner_id == query.owner_id)
    if query.created_after is not None:
        stmt = stmt.where(model.created_at >= query.created_after)
    if query.created_before is not None:
        stmt = stmt.where(model.created_at < query.created_before)
    if query.updated_since is not None:
        stmt = stmt.where(model.updated_at >= query.updated_since)
    if query.import_id is not None:
        stmt = stmt.where(model.import_id == query.import_id)
    if query.ids is not None:
        stmt = stmt.where(model.id.in_(query.ids))
    if query.cf:
        defs = await custom_fields.definitions(session, org_id, kind.object_type)
        for key, raw in query.cf.items():
            stmt = stmt.where(custom_fields.filter_clause(model.custom_fields, defs, key, raw))
    for clause in where:
        stmt = stmt.where(clause)
    return stmt
