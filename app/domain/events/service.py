"""Write event rows (the outbox) beside every state change, in the same transaction; each commit that wrote
events takes its position in the org's commit order, which the changes feed reads in.

The position is handed out at COMMIT, inside PostgreSQL: a deferred constraint trigger on `events`
(migration "event commit order") takes the next number from the org's counter row (`event_positions`) and
records the commit (`event_commits`, with the transaction id that ties it to its event rows). The counter
row stays locked until the transaction has committed, so an org's positions are handed out in commit order,
and an aborted transaction gives its number back. A reader that sees position n therefore already sees
every position below it: the feed needs no horizon, and a transaction still open (in this org or another,
with or without events) holds no reader back. Being a trigger, it covers every path that writes events,
raw SQL included, and costs no round trip.

The cost: an org's committing transactions queue on its counter row, each for the length of its own COMMIT
(the WAL flush). Other orgs do not queue. A transaction that wrote events of several orgs (the cross-org
timer sweeps) stamps them just before COMMIT, in one order, so that two of them cannot deadlock.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import ARRAY, TextClause, bindparam, event, insert, text
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from app.domain.audit import service as audit
from app.domain.auth.principal import Principal
from app.domain.events.models import Event
from app.ids import new_id

_WRITTEN_FOR = "event_orgs_written_for"
# Events and their audit rows in one statement with two parameters (JSON arrays): one round trip and one
# prepared statement for any batch size.
_WITH_AUDIT = text("""
WITH audit AS (
    INSERT INTO audit_log (org_id, id, actor_type, actor_id, action, object_type, object_id, changes, ip, user_agent)
    SELECT org_id, id, actor_type, actor_id, action, object_type, object_id, changes, ip, user_agent
    FROM jsonb_to_recordset(CAST(:audit AS jsonb)) AS a(org_id uuid, id uuid, actor_type text, actor_id uuid,
        action text, object_type text, object_id uuid, changes jsonb, ip text, user_agent text)
)
INSERT INTO events (org_id, id, type, object_type, object_id, action, actor, version, data)
SELECT org_id, id, type, object_type, object_id, action, actor, version, data
FROM jsonb_to_recordset(CAST(:events AS jsonb)) AS e(org_id uuid, id uuid, type text, object_type text,
    object_id uuid, action text, actor jsonb, version bigint, data jsonb)
""")


def _json(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
_STAMP_IN_ORDER = text("SELECT stamp_event_commits(CAST(:orgs AS uuid[]))").bindparams(
    bindparam("orgs", type_=ARRAY(PGUUID(as_uuid=True))))


def _actor(actor: Principal | dict[str, Any] | None) -> dict[str, Any]:
    if actor is None:
        return {"type": "system", "id": None}
    if isinstance(actor, dict):
        return actor
    return actor.actor


async def emit(session: AsyncSession, actor: Principal | dict[str, Any] | None, type: str, object_type: str,
               object_id: UUID, org_id: UUID, data: dict[str, Any], version: int | None = None) -> None:
    await emit_many(session, actor, org_id, [(type, object_type, object_id, version, data)])


def _rows(actor: Principal | dict[str, Any] | None, org_id: UUID,
          rows: list[tuple[str, str, UUID, int | None, dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events' values and their audit rows' values."""
    who = _actor(actor)
    values = [
        {"org_id": org_id, "id": new_id(), "type": type_, "object_type": object_type, "object_id": object_id,
         "action": type_.split(".", 1)[1], "actor": who, "version": version, "data": data}
        for type_, object_type, object_id, version, data in rows
    ]
    return values, audit.event_rows(actor, org_id, rows)


def _written(session: AsyncSession, org_id: UUID, values: list[dict[str, Any]]) -> None:
    session.info.setdefault(_WRITTEN_FOR, set()).add(org_id)
    # After commit, the caller hands these to the relay (a lost hand-over is caught by the sweeper).
    session.info.setdefault("event_ids", []).extend((v["org_id"], v["id"]) for v in values)


async def emit_many(session: AsyncSession, actor: Principal | dict[str, Any] | None, org_id: UUID,
                    rows: list[tuple[str, str, UUID, int | None, dict[str, Any]]]) -> None:
    """One INSERT for any number of events: `(type, object_type, object_id, version, data)`. The record writes
    among them (created, updated, deleted, restored) also get their audit rows, in the same statement: a write
    costs no extra round trip, and a batch of any size one statement."""
    if not rows:
        return
    values, audit_values = _rows(actor, org_id, rows)
    if audit_values:
        await session.execute(_WITH_AUDIT, {"events": _json(values), "audit": _json(audit_values)})
    else:
        await session.execute(insert(Event), values)
    _written(session, org_id, values)


@lru_cache(maxsize=64)
def _with_records(shapes: tuple[tuple[str, tuple[str, ...]], ...]) -> TextClause:
    ctes = []
    for i, (table, columns) in enumerate(shapes):
        names = ", ".join(columns)
        ctes.append(f"r{i} AS (INSERT INTO {table} ({names}) SELECT {names} "
                    f"FROM jsonb_populate_recordset(NULL::{table}, CAST(:r{i} AS jsonb)))")
    return text("WITH " + ",\n".join(ctes) + ",\n" + _WITH_AUDIT.text.lstrip().removeprefix("WITH "))


Prepared = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def prepare(actor: Principal | dict[str, Any] | None, org_id: UUID,
            rows: list[tuple[str, str, UUID, int | None, dict[str, Any]]]) -> Prepared:
    """Events `(type, object_type, object_id, version, data)` as `write_with_records` takes them (their ids
    given now, in order), with their audit rows."""
    return _rows(actor, org_id, rows)


async def write_with_records(session: AsyncSession, org_id: UUID, records: list[tuple[str, tuple[str, ...],
                             dict[str, Any]]], prepared: list[Prepared]) -> None:
    """New rows (`(table, columns, values)`, every column's value given) with their events and the events'
    audit rows, all in one statement (one round trip): each table's INSERT is a data-modifying CTE of
    `emit_many`'s statement. Events keep the order they were prepared in."""
    shapes: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for table, columns, row in records:
        shapes.setdefault((table, columns), []).append(row)
    values = [v for p in prepared for v in p[0]]
    audit_values = [a for p in prepared for a in p[1]]
    params = {f"r{i}": orjson.dumps(rows, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
              for i, rows in enumerate(shapes.values())}
    await session.execute(_with_records(tuple(shapes)), {**params, "events": _json(values),
                                                         "audit": _json(audit_values)})
    _written(session, org_id, values)


async def forget_purged_commits(session: AsyncSession, before: datetime) -> int:
    """Commit positions older than `before` whose events are all gone (the feed's retention)."""
    result = await session.execute(text(
        "DELETE FROM event_commits c WHERE c.committed_at < :before "
        "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.org_id = c.org_id AND e.txid = c.txid)"), {"before": before})
    return result.rowcount  # type: ignore[attr-defined]


def committed_event_ids(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    return session.info.pop("event_ids", [])


@event.listens_for(Session, "before_commit")
def _stamp_several_orgs_in_order(session: Session) -> None:
    """The last statement before COMMIT, for a transaction that wrote events of more than one org."""
    orgs = session.info.get(_WRITTEN_FOR)
    if session.in_nested_transaction() or not orgs or len(orgs) < 2:
        return
    session.flush()
    session.execute(_STAMP_IN_ORDER, {"orgs": sorted(orgs)})


@event.listens_for(Session, "after_transaction_end")
def _forget_orgs(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WRITTEN_FOR, None)
