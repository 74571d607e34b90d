"""An upsert by external id: create the record holding a partner's key, or merge into the one that holds it
(restoring it when deleted). Retries and twins are safe: they queue on the key (the locking rule in
`app.domain.flows`), so the first creates and the others update what it created."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import external_refs, locks
from app.domain.auth.principal import Principal
from app.domain.records import Kind


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
    object_type = w.kind.object_type
    await locks.keys(session, locks.external_id(actor.org_id, object_type, source, external_id))
    record_id = await external_refs.find(session, actor.org_id, object_type, source, external_id)
    if record_id is None:
        data = {**body, "external_ids": _with_ref(body.get("external_ids"), source, external_id)}
        return await w.create(session, actor, w.create_schema.model_validate(data)), True
    record = await w.kind.get(session, actor, record_id, include_deleted=True)
    if record.deleted_at is not None:
        await w.kind.restore(session, actor, record_id)
    patch = dict(body)
    if "external_ids" in patch:
        patch["external_ids"] = _with_ref(patch["external_ids"], source, external_id)
    return await w.update(session, actor, record_id, w.update_schema.model_validate(patch), None), False
