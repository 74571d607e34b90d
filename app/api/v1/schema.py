from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Path
from pydantic import Field

from app.api.deps import PageDep, SessionDep, require
from app.api.problems import AUTHED, NOT_FOUND
from app.api.records import JSONBytes
from app.api.schemas import ListPage
from app.domain import kinds
from app.domain.activities.schemas import ActivityRead
from app.domain.auth.principal import Principal
from app.domain.custom_fields import service as custom_fields
from app.domain.custom_fields.schemas import ObjectName
from app.domain.deals.schemas import StageMoveRead
from app.domain.documents.schemas import DocumentRead
from app.domain.files.schemas import FileRead
from app.domain.forms.schemas import SubmissionRead
from app.domain.mail.schemas import EmailRead
from app.domain.schemas import Actor, ReadModel
from app.domain.sms.schemas import SmsRead
from app.domain.timeline import service as timeline_service

router = APIRouter(tags=["schema and timeline"])


@router.get("/v1/schema/{object}", operation_id="getObjectSchema", responses=AUTHED,
            response_model=dict[str, Any])
async def object_schema(object: ObjectName, session: SessionDep,
                        who: Annotated[Principal, require("custom_fields:read")]) -> JSONBytes:
    """JSON Schema (2020-12) of the object as the API returns it, including the organisation's custom fields
    (types, options, required) under `custom_fields`, so a front end can render and validate forms."""
    defs = await custom_fields.definitions(session, who.org_id, object)
    read = kinds.named(object).read
    assert read is not None  # every kind with custom fields has its read model in the registry
    return JSONBytes(orjson.dumps(custom_fields.object_schema(read, defs, object)))


class _Entry(ReadModel):
    id: UUID
    occurred_at: datetime
    actor: Actor | None = Field(description="who did it; null for an activity without owner")
    summary: str = Field(examples=["call: Intro call"])
    object_id: UUID


class ActivityEntry(_Entry):
    kind: Literal["activity"]
    object_type: Literal["activity"]
    data: ActivityRead


class StageChangeEntry(_Entry):
    kind: Literal["stage_change"]
    object_type: Literal["deal"]
    data: StageMoveRead


class FormSubmissionEntry(_Entry):
    kind: Literal["form_submission"]
    object_type: Literal["form_submission"]
    data: SubmissionRead


class EmailEntry(_Entry):
    kind: Literal["email"]
    object_type: Literal["email"]
    data: EmailRead


class SmsEntry(_Entry):
    kind: Literal["sms"]
    object_type: Literal["sms"]
    data: SmsRead


class DocumentEntry(_Entry):
    kind: Literal["document"]
    object_type: Literal["document"]
    data: DocumentRead




class FileEntry(_Entry):
    kind: Literal["file"]
    object_type: Literal["file"]
    data: FileRead


TimelineEntry = Annotated[ActivityEntry | StageChangeEntry | FormSubmissionEntry | EmailEntry | SmsEntry
                          | DocumentEntry | FileEntry, Field(discriminator="kind")]
"""One entry of a timeline, typed by its `kind` (calls join as their area arrives)."""


class TimelinePage(ListPage[TimelineEntry]):  # type: ignore[valid-type]
    """A page of a timeline, newest first."""


def _timeline_route(plural: str, object_type: str, area: str) -> None:
    reader = Annotated[Principal, require(f"{area}:read")]

    async def get_timeline(record_id: Annotated[UUID, Path()], session: SessionDep, who: reader,  # type: ignore[valid-type]
                           page: PageDep) -> JSONBytes:
        result = await timeline_service.timeline(session, who, object_type, record_id, page)
        # OPT_UTC_Z: times end in "Z", as pydantic writes them in every other response; default=str: the
        # driver's own UUID type
        return JSONBytes(orjson.dumps({"data": list(result.items), "next_cursor": result.next_cursor},
                                      option=orjson.OPT_UTC_Z, default=str))

    get_timeline.__doc__ = (f"The {object_type}'s history, newest first: activities and stage moves"
                            + (" (a contact's includes its deals' and leads'; a company's its contacts' and deals')"
                               if object_type in ("contact", "company") else "") + ". Keyset-paginated. "
                            "Only entries the credential may read elsewhere are shown, the others are left out "
                            "(not refused): activities need `activities:read`, stage moves `deals:read`, form "
                            "submissions `forms:read`, emails and texts `mail:read`, documents `documents:read`, "
                            "files attached to the record `files:read`, and entries reached through a related deal, "
                            "lead or contact "
                            "need that kind's read scope too.")
    router.add_api_route(f"/v1/{plural}/{{record_id}}/timeline", get_timeline, methods=["GET"],
                         response_model=TimelinePage, operation_id=f"get{object_type.title()}Timeline",
                         tags=[plural], responses={**AUTHED, **NOT_FOUND})


for _kind in kinds.having("timeline"):
    _timeline_route(_kind.plural, _kind.object_type, _kind.plural)

