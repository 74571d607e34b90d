from typing import Annotated, Literal
from uuid import UUID

from fastapi import Query
from sqlalchemy import ColumnElement, func

from app.api.deps import AnyCaller, IfMatch, SessionDep, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one, record_routes
from app.api.routing import Router
from app.api.user_filter import ME_DOC, UserRef, user_id_of
from app.domain import kinds
from app.domain.activities import service
from app.domain.activities.models import Activity
from app.domain.activities.schemas import ActivityCreate, ActivityRead, ActivityUpdate
from app.domain.auth.principal import Principal
from app.domain.listing import belongs_to
from app.domain.schemas import Instant

router = Router(prefix="/v1/activities", tags=["activities"])
SORTS = {"created_at": Activity.created_at, "updated_at": Activity.updated_at, "due_at": Activity.due_at}


async def filters(
    who: AnyCaller,
    assignee_id: Annotated[UserRef | None, Query(description=ME_DOC)] = None,
    type: Annotated[list[Literal["task", "call", "meeting", "note", "email"]] | None, Query()] = None,
    due_after: Annotated[Instant | None, Query(description=(
        "inclusive; with `due_before`, a day's tasks (`due_after=now` leaves out the overdue ones)"))] = None,
    due_before: Annotated[Instant | None, Query(description="exclusive")] = None,
    done: Annotated[bool | None, Query(description="true: completed only; false: open only")] = None,
    overdue: Annotated[bool | None, Query(description="true: open and past due")] = None,
    contact_id: UUID | None = None,
    company_id: UUID | None = None,
    deal_id: UUID | None = None,
    lead_id: UUID | None = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if assignee_id is not None:
        where.append(Activity.assignee_id == user_id_of(assignee_id, who, "assignee_id"))
    for parent, value in ((kinds.CONTACT, contact_id), (kinds.COMPANY, company_id), (kinds.DEAL, deal_id),
                          (kinds.LEAD, lead_id)):
        if value is not None:
            where.append(belongs_to(getattr(Activity, f"{parent.object_type}_id"), parent, value, who))
    if type:
        where.append(Activity.type.in_(type))
    if due_after is not None:
        where.append(Activity.due_at >= due_after)
    if due_before is not None:
        where.append(Activity.due_at < due_before)
    if done is not None:
        where.append(Activity.done_at.is_not(None) if done else Activity.done_at.is_(None))
    if overdue:
        where.append(Activity.done_at.is_(None))
        where.append(Activity.due_at < func.now())
    elif overdue is False:
        where.append((Activity.due_at >= func.now()) | Activity.due_at.is_(None) | Activity.done_at.is_not(None))
    return where


record_routes(router, kind=service.ACTIVITY, plural="activities", area="activities", create_schema=ActivityCreate,
              update_schema=ActivityUpdate, create=service.create, update=service.update, sorts=SORTS,
              searches="subjects",
              filters=filters, sort_doc="Sorts: created_at, updated_at, due_at. My open tasks due before X: "
                                        "`?assignee_id=me&done=false&due_before=X&sort=due_at`; the rest of "
                                        "today's: `?assignee_id=me&done=false&due_after=<now>"
                                        "&due_before=<midnight>&sort=due_at`.")


@router.post("/{record_id}/complete", response_model=ActivityRead, operation_id="completeActivity",
             responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def complete(record_id: UUID, session: SessionDep, expected: IfMatch,
                   who: Annotated[Principal, require("activities:write")]) -> JSONBytes:
    """Mark done now (`activity.completed`). Completing a done activity changes nothing."""
    obj = await service.complete(session, who, record_id, expected)
    return one(service.ACTIVITY.dump(obj), obj.version, None)


