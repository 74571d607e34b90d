"""Writes partners can retry blindly: upsert by external id, and batches where one bad item fails alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import external_refs
from app.domain.auth.principal import Principal
from app.domain.errors import Conflict, CRMError, ValidationFailed
from app.domain.kinds import Reader, org_of
from app.domain.records import Kind

MAX_BATCH = 100


class Writers:
    """One record kind's create and update services and their input schemas."""

    def __init__(self, kind: Kind[Any], create: Callable[..., Awaitable[Any]], update: Callable[..., Awaitable[Any]],
                 create_schema: type[BaseModel], update_schema: type[BaseModel]) -> None:
        self.kind, self.create, self.update = kind, create, update
        self.create_schema, self.update_schema = create_schema, update_schema


def _with_ref(ids: list[dict[str, str]] | None, source: str, external_id: str) -> list[dict[str, str]]:
    ids = [dict(e) for e in ids or []]
    if not any(e.get("source") == source and e.get("id") == external_id for e in ids):
        ids.append({"source": source, "id": external_id})
    return ids


async def upsert(session: AsyncSession, actor: Principal, w: Writers, source: str, external_id: str,
                 body: dict[str, Any]) -> tuple[Any, bool]:
    """-> (record, created). An existing record (even a deleted one, which is restored) is merge-patched."""
    record_id = await external_refs.find(session, actor.org_id, w.kind.object_type, source, external_id)
    if record_id is None:
        data = {**body, "external_ids": _with_ref(body.get("external_ids"), source, external_id)}
        return await w.create(session, actor, w.create_schema.model_validate(data)), True
    record = await w.kind.get(session, actor.org_id, record_id, include_deleted=True)
    if record.deleted_at is not None:
        await w.kind.restore(session, actor, record_id)
    patch = dict(body)
    if "external_ids" in patch:
        patch["external_ids"] = _with_ref(patch["external_ids"], source, external_id)
    return await w.update(session, actor, record_id, w.update_schema.model_validate(patch), None), False


async def get_by_ref(session: AsyncSession, who: Reader, kind: Kind[Any], source: str, external_id: str) -> Any:
    """The record holding this external id, if `who` may read it (else 404)."""
    from app.domain.errors import NotFound

    record_id = await external_refs.find(session, org_of(who), kind.object_type, source, external_id)
    if record_id is None:
        raise NotFound(f"No {kind.object_type} with external id {source}/{external_id}")
    return await kind.get(session, who, record_id)


def problem_of(exc: Exception, index: int) -> dict[str, Any]:
    """An item's failure, shaped like the problem+json the single-item route would answer."""
    if isinstance(exc, ValidationError):
        errors = [{"loc": ["body", "items", index, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors()]
        return {"type": "/problems/validation", "title": "Validation failed", "status": 422,
                "detail": "Invalid item", "errors": errors}
    if isinstance(exc, IntegrityError):
        exc = Conflict("The item conflicts with existing data")
    assert isinstance(exc, CRMError)
    problem = {"type": exc.type, "title": exc.title, "status": exc.status, "detail": exc.detail, **exc.extensions}
    if isinstance(exc, ValidationFailed):
        problem["errors"] = [{**e, "loc": ["body", "items", index, *e["loc"][1:]]} for e in exc.errors]
    return problem


async def batch(session: AsyncSession, actor: Principal, w: Writers, mode: Literal["create", "update", "upsert"],
                items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item in its own savepoint: one bad item fails alone; results come back in order."""
    results: list[dict[str, Any]] = []
    for index, raw in enumerate(items):
        item = dict(raw)
        try:
            async with session.begin_nested():
                if mode == "create":
                    record = await w.create(session, actor, w.create_schema.model_validate(item))
                    status = "created"
                elif mode == "update":
                    record_id = _uuid(item.pop("id", None), index)
                    record = await w.update(session, actor, record_id, w.update_schema.model_validate(item), None)
                    status = "updated"
                else:
                    ref = item.pop("external_id", None)
                    if not isinstance(ref, dict) or not ref.get("source") or not ref.get("id"):
                        raise ValidationFailed("upsert items carry external_id: {source, id}",
                                               loc=("body", "external_id"))
                    record, created = await upsert(session, actor, w, str(ref["source"])[:64], str(ref["id"])[:200],
                                                   item)
                    status = "created" if created else "updated"
            results.append({"status": status, "id": str(record.id)})
        except (CRMError, ValidationError, IntegrityError) as exc:
            results.append({"status": "failed", "error": problem_of(exc, index)})
    return results


def _uuid(value: Any, index: int) -> UUID:
    try:
        return UUID(str(value))
    except (TypeError, ValueError):
        raise ValidationFailed("update items carry the record's id", loc=("body", "id")) from None
