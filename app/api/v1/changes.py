"""GET /v1/changes: the changes feed, with its long poll."""

import asyncio
import time
from typing import Annotated, Literal

import orjson
from fastapi import Depends, Query
from pydantic import BaseModel, Field

from app.api import scoping
from app.api.deps import SessionDep, SettingsDep, get_database, require
from app.api.problems import AUTHED, problem_doc
from app.api.records import JSONBytes
from app.api.routing import Router
from app.db import Database, set_org
from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.errors import ValidationFailed
from app.domain.events import catalog, feed
from app.domain.events.schemas import Envelope

FEED_OBJECT_TYPES = tuple(dict.fromkeys(t.split(".")[0] for t in catalog.types()))
router = Router(prefix="/v1/changes", tags=["sync"])
POLL_SECONDS = 0.5
_ONE = "(?:" + "|".join(FEED_OBJECT_TYPES) + ")"
TYPES_PATTERN = rf"^ *(?:{_ONE} *)?(?:, *(?:{_ONE} *)?)*$"  # documents what `types` takes (checked below, with a message naming them)
ObjectType = Literal[kinds.names("feed")]  # type: ignore[valid-type]


class ChangesPage(BaseModel):
    data: list[Envelope]
    next_cursor: str = Field(description="always present: poll again with it")


@router.get("", response_model=ChangesPage, operation_id="listChanges",
            responses={**AUTHED, **problem_doc(410, "The cursor is older than the retention; resync from an export")})
async def changes(
    session: SessionDep,
    settings: SettingsDep,
    db: Annotated[Database, Depends(get_database)],
    who: Annotated[Principal, require("changes:read")],
    cursor: Annotated[str | None, Query(max_length=200, description=(
        "absent: from the oldest kept event; `now`: an empty page whose `next_cursor` is the head of the feed, "
        "to follow from here on without reading the past (docs/sync.md)"))] = None,
    types: Annotated[str | None, Query(max_length=300, json_schema_extra={"pattern": TYPES_PATTERN}, description=(
        "comma-separated object types, e.g. contact,deal; one of " + ", ".join(FEED_OBJECT_TYPES)))] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[float, Query(ge=0, le=30, description="long-poll up to this many seconds when nothing is new")] = 0,
) -> JSONBytes:
    """Every change in commit order: created/updated/deleted (tombstones)/restored and the other events,
    each with its actor (skip your own writes) and the record's version. No event is skipped or repeated
    between pages, even when transactions commit out of order. Events are kept
    `CRM_EVENTS_RETENTION_DAYS` (30); an older cursor answers 410. A credential without `*` sees only the
    object types whose read scope it holds (`contacts:read` for contact changes, ...); asking for others in
    `types` → 403 naming the scopes."""
    wanted = [t.strip() for t in types.split(",") if t.strip()] if types else None
    unknown = sorted(set(wanted or ()) - set(FEED_OBJECT_TYPES))
    if unknown:
        raise ValidationFailed(f"unknown object type {', '.join(unknown)}; the feed carries "
                               f"{', '.join(FEED_OBJECT_TYPES)}", loc=("query", "types"),
                               type="enum")
    if cursor == "now":
        return JSONBytes(b'{"data":[],"next_cursor":' + orjson.dumps((await feed.head(session, who.org_id)).encode())
                         + b"}")
    after = feed.start(cursor, settings.events_retention_days)
    readable = scoping.readable_feed_types(who)
    if readable is not None:  # a credential limited to some scopes sees the kinds it may read, nothing else
        if wanted:
            scoping.refuse_unreadable(who, wanted, "Reading these changes")
        wanted = [t for t in (wanted or readable) if t in readable]
        if not wanted:  # nothing it may read will ever come: the long poll just waits, as for an idle org
            if wait > 0:
                await session.commit()
                await asyncio.sleep(min(wait, settings.changes_max_wait_seconds))
            return JSONBytes(b'{"data":[],"next_cursor":' + orjson.dumps((after or feed.START).encode()) + b"}")
    data, count, last = await feed.page(session, who, after, wanted, limit)
    wait = min(wait, settings.changes_max_wait_seconds)
    if not count and wait > 0:
        # Nothing new yet: the request's own work is done, so it commits (what it did, such as recording an
        # API key's use, is kept, and its connection goes back to the pool); the waiting is done with short
        # sessions of its own, one fresh snapshot per look.
        await session.commit()
        data, count, last = await _wait_for_events(db, who, after, wanted, limit, wait)
    return JSONBytes(b'{"data":[' + data.encode() + b'],"next_cursor":' + orjson.dumps(last.encode()) + b"}")


async def _wait_for_events(db: Database, who: Principal, after: feed.Position, wanted: list[str] | None, limit: int,
                           wait: float) -> tuple[str, int, feed.Position]:
    deadline = time.monotonic() + wait
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(POLL_SECONDS, remaining))
        async with db.sessions() as session:
            await set_org(session, who.org_id)
            data, count, last = await feed.page(session, who, after, wanted, limit)
        if count:
            return data, count, last
    return "", 0, after
