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
from uuid import UUID

import orjson
from sqlalchemy import Text, cast, func, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import Gone, ValidationFailed
from app.domain.events.models import Event, Xid8

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


# PostgreSQL renders each envelope (the same fields as webhooks.service.envelope): a page of a thousand events
# is then joined, not decoded and encoded again. Times are UTC with microseconds, as the envelope writes them.
_ENVELOPE = text("""json_build_object(
    'id', events.id, 'type', events.type, 'object_type', events.object_type, 'object_id', events.object_id,
    'action', events.action, 'occurred_at', to_char(events.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
    'actor', events.actor, 'version', events.version, 'data', events.data)::text""")


async def page(session: AsyncSession, org_id: UUID, after: Position | None, object_types: list[str] | None,
               limit: int) -> tuple[list[str], Position | None]:
    """Up to `limit` events after `after`, each as its JSON envelope."""
    horizon = select(func.pg_snapshot_xmin(func.pg_current_snapshot())).scalar_subquery()
    stmt = select(cast(Event.txid, Text), Event.id, _ENVELOPE).where(Event.org_id == org_id, Event.txid < horizon)
    if after is not None:
        # A bound parameter (not a literal in the SQL text): every page is the same prepared statement.
        stmt = stmt.where(tuple_(Event.txid, Event.id) > tuple_(cast(literal(str(after.txid)), Xid8()), after.event_id))
    if object_types:
        stmt = stmt.where(Event.object_type.in_(object_types))
    rows = (await session.execute(stmt.order_by(Event.txid, Event.id).limit(limit))).all()
    last = Position(int(rows[-1][0]), rows[-1][1]) if rows else after
    return [r[2] for r in rows], last


async def read(session: AsyncSession, org_id: UUID, cursor: str | None, object_types: list[str] | None, limit: int,
               wait_seconds: float, retention_days: int, poll_seconds: float = 0.5) -> tuple[list[str], str]:
    """A page after `cursor` (each event as JSON text); with `wait_seconds`, hold the request until something
    arrives (long poll)."""
    after = Position.decode(cursor) if cursor else None
    if after is not None:
        check_retention(after, retention_days)
    deadline = time.monotonic() + wait_seconds
    while True:
        data, last = await page(session, org_id, after, object_types, limit)
        if data or time.monotonic() >= deadline:
            break
        await session.rollback()  # a fresh snapshot (and horizon) for the next look
        await asyncio.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))
    return data, (last or Position(0, ZERO)).encode()
