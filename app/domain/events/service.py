"""Write event rows (the outbox) beside every state change, in the same transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.events.models import Event
from app.ids import new_id


def _actor(actor: Principal | dict[str, Any] | None) -> dict[str, Any]:
    if actor is None:
        return {"type": "system", "id": None}
    if isinstance(actor, dict):
        return actor
    return actor.actor


async def emit(session: AsyncSession, actor: Principal | dict[str, Any] | None, type: str, object_type: str,
               object_id: UUID, org_id: UUID, data: dict[str, Any], version: int | None = None) -> None:
    await emit_many(session, actor, org_id, [(type, object_type, object_id, version, data)])


async def emit_many(session: AsyncSession, actor: Principal | dict[str, Any] | None, org_id: UUID,
                    rows: list[tuple[str, str, UUID, int | None, dict[str, Any]]]) -> None:
    """One INSERT for any number of events: `(type, object_type, object_id, version, data)`."""
    if not rows:
        return
    who = _actor(actor)
    values = [
        {"org_id": org_id, "id": new_id(), "type": type_, "object_type": object_type, "object_id": object_id,
         "action": type_.split(".", 1)[1], "actor": who, "version": version, "data": data}
        for type_, object_type, object_id, version, data in rows
    ]
    await session.execute(insert(Event), values)
    # After commit, the caller hands these to the relay (a lost hand-over is caught by the sweeper).
    session.info.setdefault("event_ids", []).extend((v["org_id"], v["id"]) for v in values)


def committed_event_ids(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    return session.info.pop("event_ids", [])
