"""The audit log: one row per audited action, written in the caller's transaction.

Other areas call `record(...)` (one action) or `record_rows(...)` (a batch, one INSERT). Record writes
(create, update, delete, restore) are derived from the events written beside them (`audit_events`, called by
`app.domain.events.service.emit_many`), so no write path can skip them. The client's IP address and user agent
come from the request context (`bind_request`, set by the request middleware); work outside a request
(workers) has neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit.models import AuditEntry
from app.domain.auth.principal import Principal
from app.domain.pagination import Page, PageRequest, keyset_page
from app.ids import new_id

ANONYMOUS: dict[str, Any] = {"type": "anonymous", "id": None}
"""The actor of a failed login: nobody proved who they are."""

USER_AGENT_MAX, IP_MAX = 512, 64


@dataclass(frozen=True)
class RequestOrigin:
    ip: str | None = None
    user_agent: str | None = None


_NOWHERE = RequestOrigin()
_ORIGIN: ContextVar[RequestOrigin | None] = ContextVar("audit_request_origin", default=None)


def bind_request(ip: str | None, user_agent: str | None) -> None:
    """Remember where the current request comes from (called once per request by the middleware)."""
    _ORIGIN.set(RequestOrigin(ip[:IP_MAX] if ip else None, user_agent[:USER_AGENT_MAX] if user_agent else None))


def request_origin() -> RequestOrigin:
    return _ORIGIN.get() or _NOWHERE


def _actor(who: Principal | Mapping[str, Any] | None) -> tuple[str, UUID | None]:
    if who is None:
        return "system", None
    if isinstance(who, Principal):
        return who.type, who.id
    raw = who.get("id")
    return str(who.get("type") or "system"), UUID(str(raw)) if raw else None


def _row(org_id: UUID, who: Principal | Mapping[str, Any] | None, action: str, object_type: str,
         object_id: UUID | None, changes: Mapping[str, Any] | None, origin: RequestOrigin) -> dict[str, Any]:
    actor_type, actor_id = _actor(who)
    return {"org_id": org_id, "id": new_id(), "actor_type": actor_type, "actor_id": actor_id, "action": action,
            "object_type": object_type, "object_id": object_id, "changes": dict(changes) if changes else None,
            "ip": origin.ip, "user_agent": origin.user_agent}


async def record(session: AsyncSession, who: Principal | Mapping[str, Any] | None, action: str, object_type: str,
                 object_id: UUID | None, changes: Mapping[str, Sequence[Any]] | None = None, *,
                 org_id: UUID | None = None) -> None:
    """Write one audit row in the caller's transaction (never commits).

    - `who`: the acting `Principal`; a dict `{"type", "id"}` (e.g. `ANONYMOUS`); None = the system.
    - `action`: `create, update, delete, restore, export, erase, login.succeeded, login.failed,
      token.refreshed, api_key.created, api_key.revoked, role.changed, settings.changed` (or a new verb).
    - `object_type`/`object_id`: what was acted on, e.g. `("contact", id)`; the user for `login.*`,
      `token.refreshed` and `role.changed`, the key for `api_key.*`.
    - `changes`: `{field: [before, after]}` (JSON-serialisable values), or None.
    - `org_id`: defaults to `who.org_id`; required when `who` is not a Principal.
    The IP address and user agent are taken from the current request, if any.
    """
    if org_id is None:
        if not isinstance(who, Principal):
            raise ValueError("org_id is required when the actor is not a Principal")
        org_id = who.org_id
    await session.execute(insert(AuditEntry), [_row(org_id, who, action, object_type, object_id, changes,
                                                    request_origin())])


# Event verbs of record writes -> audit actions.
_EVENT_ACTIONS = {"created": "create", "updated": "update", "deleted": "delete", "restored": "restore"}
_BOOKKEEPING = frozenset({"id", "version", "created_at", "updated_at"})


def _event_changes(action: str, data: Mapping[str, Any]) -> dict[str, list[Any]] | None:
    after = data.get("object") or {}
    if action == "update":
        previous = data.get("previous") or {}
        return {k: [v, after.get(k)] for k, v in previous.items()}
    present = {k: v for k, v in after.items() if k not in _BOOKKEEPING and v not in (None, [], {})}
    if action == "delete":
        return {k: [v, None] for k, v in present.items()}
    return {k: [None, v] for k, v in present.items()}


def event_rows(actor: Principal | Mapping[str, Any] | None, org_id: UUID,
               rows: Iterable[tuple[str, str, UUID, int | None, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The audit rows (values for an INSERT into `AuditEntry`) of the record writes among events
    `(type, object_type, object_id, version, data)`; other event types (e.g. `deal.won`) describe the same
    write and get none. `app.domain.events.service.emit_many` writes them with the events."""
    origin = request_origin()
    values = []
    for type_, object_type, object_id, _, data in rows:
        action = _EVENT_ACTIONS.get(type_.rsplit(".", 1)[-1])
        if action is not None:
            values.append(_row(org_id, actor, action, object_type, object_id, _event_changes(action, data), origin))
    return values


@dataclass(frozen=True)
class AuditQuery:
    actor_id: UUID | None = None
    object_type: str | None = None
    object_id: UUID | None = None
    actions: tuple[str, ...] = ()
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


SORTS = {"occurred_at": AuditEntry.occurred_at, "created_at": AuditEntry.occurred_at}


async def list_page(session: AsyncSession, org_id: UUID, query: AuditQuery, page: PageRequest) -> Page[AuditEntry]:
    """The org's audit rows matching `query`, newest first by default (keyset-paginated)."""
    stmt = select(AuditEntry).where(AuditEntry.org_id == org_id)
    if query.actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == query.actor_id)
    if query.object_type is not None:
        stmt = stmt.where(AuditEntry.object_type == query.object_type)
    if query.object_id is not None:
        stmt = stmt.where(AuditEntry.object_id == query.object_id)
    if query.actions:
        stmt = stmt.where(AuditEntry.action.in_(query.actions))
    if query.occurred_from is not None:
        stmt = stmt.where(AuditEntry.occurred_at >= query.occurred_from)
    if query.occurred_to is not None:
        stmt = stmt.where(AuditEntry.occurred_at < query.occurred_to)
    if page.sort is None:
        page = PageRequest(page.limit, page.cursor, "-occurred_at")
    return await keyset_page(session, stmt, page, SORTS, AuditEntry.id)


LOGIN_ACTIONS = ("login.succeeded", "login.failed")


async def logins_page(session: AsyncSession, org_id: UUID, user_id: UUID, page: PageRequest) -> Page[AuditEntry]:
    """A user's login history (succeeded and failed), newest first: the audit rows `login.*` of that user."""
    query = AuditQuery(object_type="user", object_id=user_id, actions=LOGIN_ACTIONS)
    return await list_page(session, org_id, query, page)


async def forget_changes(session: AsyncSession, org_id: UUID, object_ids: Sequence[UUID]) -> int:
    """Drop the before/after values of these objects' rows (erasure of personal data): who, what and when stay."""
    if not object_ids:
        return 0
    result = await session.execute(update(AuditEntry).where(
        AuditEntry.org_id == org_id, AuditEntry.object_id.in_(object_ids), AuditEntry.changes.is_not(None))
        .values(changes=None).execution_options(synchronize_session=False))
    return result.rowcount  # type: ignore[attr-defined]


async def redact_changes(session: AsyncSession, org_id: UUID, object_ids: Sequence[UUID],
                         redact: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """Rewrite the before/after values of these objects' rows with `redact` (e.g. cut a person's name out)."""
    if not object_ids:
        return 0
    rows = await session.scalars(select(AuditEntry).where(
        AuditEntry.org_id == org_id, AuditEntry.object_id.in_(object_ids), AuditEntry.changes.is_not(None)))
    count = 0
    for row in rows:
        changes = redact(row.changes or {})
        if changes != row.changes:
            row.changes, count = changes, count + 1
    await session.flush()
    return count


async def purge_older_than(session: AsyncSession, cutoff: datetime) -> int:
    """Delete rows older than `cutoff` (all orgs): the retention sweep."""
    result = await session.execute(delete(AuditEntry).where(AuditEntry.occurred_at < cutoff))
    return result.rowcount  # type: ignore[attr-defined]
