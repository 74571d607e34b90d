"""The changes feed: every event of an org in commit order, never skipping a late commit, never repeating.

Each commit that wrote events of an org holds a position in the org's commit order (`event_commits.seq`,
handed out at commit under the org's counter row: see events.service). Positions become visible in order,
so a page simply reads what is committed after the cursor, ordered by (seq, event id); no reader waits for
transactions still in flight, in this org or any other. A cursor is base64 JSON [seq, event id]; cursors
issued before commit positions existed ([txid, event id]) read on unchanged, since each earlier commit got
its txid as its position.

The wait (long poll) is the API's: it keeps looking with fresh short sessions (app/api/v1/changes.py).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from uuid import UUID

import orjson
from sqlalchemy import ARRAY, BigInteger, Boolean, Integer, String, Text, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds
from app.domain.errors import Gone, ValidationFailed
from app.domain.kinds import Reader

ZERO = UUID(int=0)
_MAX_SEQ = 2**63 - 1


@dataclass(frozen=True)
class Position:
    seq: int
    event_id: UUID

    def encode(self) -> str:
        raw = orjson.dumps([self.seq, str(self.event_id)])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            seq, event_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            position = cls(int(seq), UUID(event_id))
        except (ValueError, TypeError, AttributeError, binascii.Error, orjson.JSONDecodeError):
            position = None
        if position is None or not 0 <= position.seq <= _MAX_SEQ:
            raise ValidationFailed("invalid cursor; start again without one", loc=("query", "cursor"))
        return position


START = Position(0, ZERO)
_AFTER_ALL = UUID(int=2**128 - 1)  # a position after every event of its commit

_HEAD = text("SELECT coalesce(max(seq), 0) FROM event_commits WHERE org_id = :org_id").bindparams(
    bindparam("org_id", type_=PGUUID(as_uuid=True)))


async def head(session: AsyncSession, org_id: UUID) -> Position:
    """The end of the org's feed as this transaction sees it: every event committed so far lies before it, every
    later one after it (positions are handed out at commit, in commit order). `GET /v1/changes?cursor=now`, and
    the `X-Changes-Cursor` of lists and exports."""
    return Position(int(await session.scalar(_HEAD, {"org_id": org_id}) or 0), _AFTER_ALL)


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


def start(cursor: str | None, retention_days: int) -> Position:
    """Where a read begins: the cursor's position (422 when malformed, 410 when older than the retention),
    or the start of the feed."""
    if not cursor:
        return START
    position = Position.decode(cursor)
    check_retention(position, retention_days)
    return position


# PostgreSQL renders the page: each envelope (the same fields as webhooks.service.envelope, times in UTC with
# microseconds) joined into one JSON text, plus the position of the last event. Python then handles one row,
# not a thousand. The org's commits are walked in position order from the cursor's on (the fenced, ordered
# subquery: an index scan that stops once the page is full); each brings at most `limit` of its events in id
# order, from after the cursor's event inside the cursor's own commit (an index range, however large that
# commit). Built once per shape; every value is a bound parameter.
_PAGE = """
SELECT string_agg(body, ',' ORDER BY seq, id) AS bodies, count(*) AS n,
       (array_agg(seq ORDER BY seq DESC, id DESC))[1] AS last_seq,
       (array_agg(id ORDER BY seq DESC, id DESC))[1] AS last_id
FROM (
    SELECT c.seq, e.id, json_build_object(
        'id', e.id, 'type', e.type, 'object_type', e.object_type, 'object_id', e.object_id, 'action', e.action,
        'occurred_at', to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
        'actor', e.actor, 'version', e.version, 'data', e.data)::text AS body
    FROM (
        SELECT seq, txid FROM event_commits
        WHERE org_id = :org_id AND seq >= CAST(:after_seq AS bigint)
        ORDER BY seq OFFSET 0
    ) c CROSS JOIN LATERAL (
        SELECT * FROM events e
        WHERE e.org_id = :org_id AND e.txid = c.txid
          AND e.id > CASE WHEN c.seq = CAST(:after_seq AS bigint) THEN CAST(:after_id AS uuid) ELSE :zero END
          {types}{visible}
        ORDER BY e.id
        LIMIT :limit
    ) e
    ORDER BY c.seq, e.id
    LIMIT :limit
) page"""


def _visible_sql() -> str:
    """Events of kinds under record visibility show only when the reader may read their record (deleted ones
    included: a tombstone reaches those who saw the record)."""
    cases = " ".join(f"WHEN '{k.object_type}' THEN EXISTS (SELECT 1 FROM {k.model.__tablename__} r "
                     f"WHERE {k.readable_sql('r', include_deleted=True)} AND r.id = e.object_id)"
                     for k in kinds.having("owners"))
    return f"\n          AND CASE e.object_type {cases} ELSE true END"


@lru_cache(maxsize=4)
def _page_statement(types: bool, visible: bool = False) -> TextClause:
    stmt = text(_PAGE.format(types="AND e.object_type = ANY(:types)" if types else "",
                             visible=_visible_sql() if visible else ""))
    uuid = PGUUID(as_uuid=True)
    params = [bindparam("org_id", type_=uuid), bindparam("limit", type_=Integer),
              bindparam("after_seq", type_=String), bindparam("after_id", type_=uuid),
              bindparam("zero", value=ZERO, type_=uuid)]
    if types:
        params.append(bindparam("types", type_=ARRAY(String)))
    if visible:
        params += [bindparam("reader_id", type_=uuid), bindparam("sees_all", type_=Boolean)]
    return stmt.bindparams(*params).columns(bodies=Text, n=Integer, last_seq=BigInteger, last_id=uuid)


async def page(session: AsyncSession, who: Reader, after: Position | None, object_types: list[str] | None,
               limit: int) -> tuple[str, int, Position]:
    """Up to `limit` events after `after` that `who` may read (record visibility applies to the events of
    the kinds it covers): -> (their JSON envelopes joined by commas, how many, last position)."""
    after = after or START
    params: dict[str, object] = {**kinds.reader_params(who), "limit": limit, "after_seq": str(after.seq),
                                 "after_id": after.event_id}
    if object_types:
        params["types"] = object_types
    row = (await session.execute(_page_statement(bool(object_types), not kinds.sees_all(who)), params)).one()
    if not row.n:
        return "", 0, after
    return row.bodies, row.n, Position(row.last_seq, row.last_id)
