"""Reference lists (`/v1/lists`): the values an organisation allows for lost reasons, industries and lead
sources (the keys `lost_reasons`, `industries`, `lead_sources`), and any other list it keeps for its own forms.
Readable with `custom_fields:read`, written by admins (`custom_fields:write`). A list is addressed by its key
or its id."""

from typing import Annotated
from uuid import UUID

import orjson
from fastapi import Path, Request, Response, status

from app.api.deps import IfMatch, SessionDep, conditional, require
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.catalog import lists as service
from app.domain.catalog.schemas import (
    RefListCreate,
    RefListItemCreate,
    RefListItemRead,
    RefListItemUpdate,
    RefListRead,
    RefListUpdate,
)

router = Router(prefix="/v1/lists", tags=["catalog"])
Reader = Annotated[Principal, require("custom_fields:read")]
Admin = Annotated[Principal, require("custom_fields:write", Role.admin)]
Key = Annotated[str, Path(min_length=1, max_length=64, description="the list's key (e.g. `lost_reasons`) or its id")]


def _dump(ref: object) -> dict:
    return RefListRead.model_validate(ref).model_dump(mode="json")


@router.get("", response_model=ListPage[RefListRead], operation_id="listReferenceLists", responses=AUTHED)
async def list_lists(session: SessionDep, who: Reader) -> JSONBytes:
    """The organisation's reference lists, by key."""
    found = await service.all_lists(session, who)
    return JSONBytes(orjson.dumps({"data": [_dump(r) for r in found], "next_cursor": None}))


@router.post("", status_code=201, response_model=RefListRead, operation_id="createReferenceList",
             responses={**AUTHED, **CONFLICT})
async def create_list(body: RefListCreate, session: SessionDep, who: Admin) -> Response:
    """Create a list (409 when the key is taken). `lost_reasons`, `industries` and `lead_sources` constrain
    deals' `lost_reason`, companies' `industry` and contacts' and leads' `source` as soon as they hold items:
    a value outside the list's active items is then a 422 naming the field (the sources the system gives,
    `web_form`, `email`, `phone`, `import` and `api`, always pass)."""
    ref = await service.create(session, who, body)
    return one(_dump(ref), ref.version, None, 201, {"Location": f"/v1/lists/{ref.key}"})


@router.get("/{key}", response_model=RefListRead, operation_id="getReferenceList",
            responses={**AUTHED, **NOT_FOUND})
async def get_list(key: Key, request: Request, session: SessionDep, who: Reader) -> Response:
    """One list, by key or id."""
    ref = await service.get(session, who, key)
    conditional(request, ref.version)
    return one(_dump(ref), ref.version, None)


@router.patch("/{key}", response_model=RefListRead, operation_id="updateReferenceList",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_list(key: Key, body: RefListUpdate, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Rename a list (its key is fixed)."""
    ref = await service.update(session, who, key, body, expected)
    return one(_dump(ref), ref.version, None)


@router.delete("/{key}", status_code=204, response_class=Response, operation_id="deleteReferenceList",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_list(key: Key, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Delete a list and its items: the field it constrained is free text again. Values already stored stay."""
    await service.remove(session, who, key, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{key}/items", response_model=ListPage[RefListItemRead], operation_id="listReferenceListItems",
            responses={**AUTHED, **NOT_FOUND})
async def list_items(key: Key, session: SessionDep, who: Reader) -> JSONBytes:
    """The list's items, by position then value; inactive ones included (`active: false`)."""
    found = await service.items(session, who, key)
    return JSONBytes(orjson.dumps({"data": [service.dump_item(i) for i in found], "next_cursor": None}))


@router.post("/{key}/items", status_code=201, response_model=RefListItemRead, operation_id="createReferenceListItem",
             responses={**AUTHED, **NOT_FOUND, **CONFLICT})
async def create_item(key: Key, body: RefListItemCreate, session: SessionDep, who: Admin) -> Response:
    """Add a value (409 when the list holds it already). An inactive value stays on the records that have it
    but is refused on new writes."""
    item = await service.add_item(session, who, key, body)
    return one(service.dump_item(item), item.version, None, 201)


@router.get("/{key}/items/{item_id}", response_model=RefListItemRead, operation_id="getReferenceListItem",
            responses={**AUTHED, **NOT_FOUND})
async def get_item(key: Key, item_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """One item of the list."""
    item = await service.get_item(session, who, key, item_id)
    conditional(request, item.version)
    return one(service.dump_item(item), item.version, None)


@router.patch("/{key}/items/{item_id}", response_model=RefListItemRead, operation_id="updateReferenceListItem",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION, **CONFLICT})
async def update_item(key: Key, item_id: UUID, body: RefListItemUpdate, session: SessionDep, who: Admin,
                      expected: IfMatch) -> Response:
    """Change a value, its label, whether it is active, or its position."""
    item = await service.update_item(session, who, key, item_id, body, expected)
    return one(service.dump_item(item), item.version, None)


@router.delete("/{key}/items/{item_id}", status_code=204, response_class=Response,
               operation_id="deleteReferenceListItem", responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_item(key: Key, item_id: UUID, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Remove a value (records holding it keep it)."""
    await service.remove_item(session, who, key, item_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
