from typing import Annotated
from uuid import UUID

import orjson
from fastapi import Response, status

from app.api.deps import IfMatch, SessionDep, require
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.custom_fields import service
from app.domain.custom_fields.schemas import CustomFieldCreate, CustomFieldRead, CustomFieldUpdate, ObjectName

router = Router(prefix="/v1/custom-fields", tags=["custom fields"])
Reader = Annotated[Principal, require("custom_fields:read")]
Admin = Annotated[Principal, require("custom_fields:write", Role.admin)]


def _dump(field: object) -> dict:
    return CustomFieldRead.model_validate(field).model_dump(mode="json")


@router.get("", response_model=ListPage[CustomFieldRead], operation_id="listCustomFields", responses=AUTHED)
async def list_fields(session: SessionDep, who: Reader,
                      object: ObjectName | None = None) -> JSONBytes:
    """The organisation's custom field definitions (optionally of one object), in display order."""
    fields = await service.list_all(session, who.org_id, object)
    return JSONBytes(orjson.dumps({"data": [_dump(f) for f in fields], "next_cursor": None}))


@router.post("", status_code=201, response_model=CustomFieldRead, operation_id="createCustomField",
             responses={**AUTHED, **CONFLICT})
async def create_field(body: CustomFieldCreate, session: SessionDep, who: Admin) -> Response:
    """Define a field; values are then validated on every write of that object (422 names the field)."""
    field = await service.create(session, who, body)
    return one(_dump(field), field.version, None, 201)


@router.patch("/{field_id}", response_model=CustomFieldRead, operation_id="updateCustomField",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_field(field_id: UUID, body: CustomFieldUpdate, session: SessionDep, who: Admin,
                       expected: IfMatch) -> Response:
    """Change a custom field's label, options or requirement; its key and type stay (admin)."""
    field = await service.update(session, who, field_id, body, expected)
    return one(_dump(field), field.version, None)


@router.delete("/{field_id}", status_code=204, response_class=Response, operation_id="deleteCustomField",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_field(field_id: UUID, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Remove a custom field (admin); values already stored on records stay in their
    JSON but are no longer validated or shown in the schema; the key is free for a new definition."""
    await service.delete(session, who, field_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
