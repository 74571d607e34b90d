from typing import Annotated
from uuid import UUID

import orjson
from fastapi import Query, Response, status

from app.api.deps import PageDep, SessionDep, require_own
from app.api.problems import AUTHED, NOT_FOUND
from app.api.records import JSONBytes
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.principal import Principal
from app.domain.errors import Forbidden
from app.domain.notifications import service
from app.domain.notifications.schemas import NotificationRead

router = Router(prefix="/v1/me/notifications", tags=["notifications"])
Mine = Annotated[Principal, require_own("notifications:read")]
MineWrite = Annotated[Principal, require_own("notifications:write")]


def _user(who: Principal) -> Principal:
    if who.type != "user":
        raise Forbidden("Notifications belong to users; call with a user's access token")
    return who


def _dump(n: object) -> dict:
    return NotificationRead.model_validate(n).model_dump(mode="json")


@router.get("", response_model=ListPage[NotificationRead], operation_id="listMyNotifications", responses=AUTHED)
async def list_notifications(session: SessionDep, who: Mine, page: PageDep,
                             unread: Annotated[bool | None, Query(description="true: only unread")] = None) -> JSONBytes:
    """Things you must see: tasks assigned to you, reminders due, SLA breaches, disabled webhooks (admins)."""
    me = _user(who)
    result = await service.list_page(session, me.org_id, me.id, page, unread)
    return JSONBytes(orjson.dumps({"data": [_dump(n) for n in result.items], "next_cursor": result.next_cursor}))


@router.post("/read-all", status_code=204, response_class=Response, operation_id="readAllMyNotifications",
             responses=AUTHED)
async def read_all(session: SessionDep, who: MineWrite) -> Response:
    """Mark every notification of the caller as read."""
    me = _user(who)
    await service.mark_all_read(session, me.org_id, me.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{notification_id}/read", response_model=NotificationRead, operation_id="readMyNotification",
             responses={**AUTHED, **NOT_FOUND})
async def read_one(notification_id: UUID, session: SessionDep, who: MineWrite) -> JSONBytes:
    """Mark one of the caller's notifications as read; answers it as it is now."""
    me = _user(who)
    return JSONBytes(orjson.dumps(_dump(await service.mark_read(session, me.org_id, me.id, notification_id))))
