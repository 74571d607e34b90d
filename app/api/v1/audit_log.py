from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Query

from app.api.deps import PageDep, SessionDep, require
from app.api.problems import AUTHED
from app.api.routing import Router
from app.api.schemas import ListPage
from app.api.user_filter import UserRef, user_id_of
from app.domain.audit import service
from app.domain.audit.models import AuditEntry
from app.domain.audit.schemas import AuditActor, AuditEntryRead
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.schemas import Instant

router = Router(prefix="/v1/audit-log", tags=["audit log"])
AuditRead = Annotated[Principal, require("audit:read", Role.admin)]


def entry_read(row: AuditEntry) -> AuditEntryRead:
    return AuditEntryRead(id=row.id, actor=AuditActor(type=row.actor_type, id=row.actor_id), action=row.action,
                          object_type=row.object_type, object_id=row.object_id, changes=row.changes or {},
                          ip=row.ip, user_agent=row.user_agent, occurred_at=row.occurred_at)


@router.get("", response_model=ListPage[AuditEntryRead], operation_id="listAuditLog", summary="List the audit log",
            responses=AUTHED)
async def list_audit_log(
    session: SessionDep, who: AuditRead, page: PageDep,
    actor_id: Annotated[UserRef | None, Query(description="the acting user's or API key's id, or `me`")] = None,
    object_type: Annotated[str | None, Query(max_length=32, description="e.g. `contact`, `user`, `api_key`")] = None,
    object_id: Annotated[UUID | None, Query()] = None,
    action: Annotated[list[str] | None, Query(description="one or more actions, e.g. `update` or `login.failed` "
                                                          "(repeat the parameter)")] = None,
    occurred_from: Annotated[Instant | None, Query(alias="from", description="at or after this instant")] = None,
    occurred_to: Annotated[Instant | None, Query(alias="to", description="before this instant")] = None,
) -> ListPage[AuditEntryRead]:
    """Who did what, when and from where, in your organisation (admins; API keys need `audit:read`): every
    record write (`create`, `update`, `delete`, `restore`, with `changes` as `{field: [before, after]}`),
    `export`, `erase`, `login.succeeded`, `login.failed`, `token.refreshed`, `api_key.created`,
    `api_key.revoked`, `role.changed` and `settings.changed`. Newest first (`sort=occurred_at` for oldest
    first); keyset-paginated. Rows are kept `CRM_AUDIT_RETENTION_DAYS` days."""
    query = service.AuditQuery(actor_id=user_id_of(actor_id, who, "actor_id"), object_type=object_type, object_id=object_id,
                               actions=tuple(action or ()), occurred_from=occurred_from, occurred_to=occurred_to)
    result = await service.list_page(session, who.org_id, query, page)
    return ListPage(data=[entry_read(r) for r in result.items], next_cursor=result.next_cursor)

