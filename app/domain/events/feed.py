"""The changes feed: every event of an org in commit order, never skipping a late commit, never repeating.

Events carry the writing transaction's id (`txid`, xid8). A page reads only events of transactions older
than the oldest one still running (`pg_snapshot_xmin(pg_current_snapshot())`): everything below that
horizon is finished, so nothing can still appear behind the cursor. Pages are ordered by (txid, id).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from uuid import UUID

import orjson
from sqlalchemy import ARRAY, Integer, String, Text, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import Gone, ValidationFailed

ZERO = UUID(int=0)


@dataclass(frozen=True)
class Position:
    txid: int
    event_id: UUID

    def encode(self) -> str:
        raw = orjson.dumps([self.txid, str(self.event_id)])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            txid, event_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            return cls(int(txid), UUID(event_id))
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise ValidationFailed("invalid cursor; start again without one", loc=("query", "cursor")) from None


def _issued_at(event_id: UUID) -> datetime | None:
    """UUIDv7 ids carry their creation time (ms); older event ids may not."""
    if event_id.version != 7:
        return None
    return datetime.fromtimestamp((event_id.int >> 80) / 1000, tz=UTC)


def check_retention(position: Position, retention_days: int) -> None:
    issued = _issued_at(position.event_id)
    if issued is not None and issued < datetime.now(UTC) - timedelta(days=retention_days):
        raise Gone(f"This cursor points before the {retention_days}-day retention of the changes feed; "
                   "resync from an export (GET /v1/<things>/export.csv), then follow the feed from a fresh cursor",
                   resync=True)


# PostgreSQL renders the page: each envelope (the same fields as webhooks.service.envelope, times in UTC with
# microseconds) joined into one JSON text, plus the position of the last event. Python then handles one row,
# not a thousand. Built once per shape; every value is a bound parameter.
_PAGE = """
SELECT string_agg(body, ',' ORDER BY txid, id) AS bodies, count(*) AS n,
       (array_agg(txid::text ORDER BY txid DESC, id DESC))[1] AS last_txid,
       (array_agg(id ORDER BY txid DESC, id DESC))[1] AS last_id
FROM (
    SELECT txid, id, json_build_object(
        'id', id, 'type', type, 'object_type', object_type, 'object_id', object_id, 'action', action,
        'occurred_at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'actor', actor, 'version', version, 'data', data)::text AS body
    FROM events
    WHERE org_id = :org_id AND txid < pg_snapshot_xmin(pg_current_snapshot()) {after} {types}
    ORDER BY txid, id
    LIMIT :limit
) page"""


@lru_cache(maxsize=4)
def _page_statement(after: bool, types: bool) -> TextClause:
    stmt = text(_PAGE.format(after="AND (txid, id) > (CAST(:after_txid AS xid8), :after_id)" if after else "",
                             types="AND object_type = ANY(:types)" if types else ""))
    params = [bindparam("org_id", type_=PGUUID(as_uuid=True)), bindparam("limit", type_=Integer)]
    if after:
        params += [bindparam("after_txid", type_=String), bindparam("after_id", type_=PGUUID(as_uuid=True))]
    if types:
        params.append(bindparam("types", type_=ARRAY(String)))
    return stmt.bindparams(*params).columns(bodies=Text, n=Integer, last_txid=String,
                                            last_id=PGUUID(as_uuid=True))


async def page(session: AsyncSession, org_id: UUID, after: Position | None, object_types: list[str] | None,
               limit: int) -> tuple[str, int, Position | None]:
    """Up to `limit` events after `after`: -> (their JSON envelopes joined by commas, how many, last position)."""
    params: dict[str, object] = {"org_id": org_id, "limit": limit}
    if after is not None:
        params.update(after_txid=str(after.txid), after_id=after.event_id)
    if object_types:
        params["types"] = object_types
    row = (await session.execute(_page_statement(after is not None, bool(object_types)), params)).one()
    if not row.n:
        return "", 0, after
    return row.bodies, row.n, Position(int(row.last_txid), row.last_id)


async def read(session: AsyncSession, org_id: UUID, cursor: str | None, object_types: list[str] | None, limit: int,
               wait_seconds: float, retention_days: int, poll_seconds: float = 0.5) -> tuple[str, str]:
    """A page after `cursor`: -> (the events' JSON envelopes joined by commas, the next cursor); with
    `wait_seconds`, hold the request until something arrives (long poll)."""
    after = Position.decode(cursor) if cursor else None
    if after is not None:
        check_retention(after, retention_days)
    deadline = time.monotonic() + wait_seconds
    while True:
        data, count, last = await page(session, org_id, after, object_types, limit)
        if count or time.monotonic() >= deadline:
            break
        await session.rollback()  # a fresh snapshot (and horizon) for the next look
        await asyncio.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))
    return data, (last or Position(0, ZERO)).encode()
