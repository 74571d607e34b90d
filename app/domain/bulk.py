"""Writes partners can retry blindly: batches where one bad item fails alone (creates, updates or upserts by
external id, the flow in `app.domain.flows.upsert`), and reads by external id."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import external_refs
from app.domain.auth.principal import Principal
from app.domain.errors import Conflict, CRMError, NotFound, ValidationFailed
from app.domain.flows.upsert import Writers, upsert
from app.domain.kinds import Reader, org_of
from app.domain.records import Kind

MAX_BATCH = 100


async def get_by_ref(session: AsyncSession, who: Reader, kind: Kind[Any], source: str, external_id: str) -> Any:
    """The record holding this external id, if `who` may read it (else 404)."""
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
                    ref = upsert_key(item)
                    record, created = await upsert(session, actor, w, str(ref["source"])[:64], str(ref["id"])[:200],
                                                   item)
                    status = "created" if created else "updated"
            results.append({"status": status, "id": str(record.id)})
        except (CRMError, ValidationError, IntegrityError) as exc:
            results.append({"status": "failed", "error": problem_of(exc, index)})
    return results


def upsert_key(item: dict[str, Any]) -> dict[str, Any]:
    """The external id an upsert item is matched by: `external_ids: [{source, id}, ...]` as on the records (the
    first one; all are kept on the record), or the older `external_id: {source, id}` (removed from the item)."""
    ref = item.pop("external_id", None)
    loc: tuple[str, ...] = ("body", "external_id")
    if ref is None and isinstance(item.get("external_ids"), list) and item["external_ids"]:
        ref, loc = item["external_ids"][0], ("body", "external_ids", "0")
    if not isinstance(ref, dict) or not ref.get("source") or not ref.get("id"):
        raise ValidationFailed("upsert items carry external_ids: [{source, id}] (the first is the key), or "
                               "external_id: {source, id}", loc=loc)
    return ref


def _uuid(value: Any, index: int) -> UUID:
    try:
        return UUID(str(value))
    except (TypeError, ValueError):
        raise ValidationFailed("update items carry the record's id", loc=("body", "id")) from None
