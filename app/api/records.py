"""The HTTP face every sales record shares: list, create, read, merge-patch, delete, restore, with
ETags, sparse `fields=` and the common filters. Each area's router adds its own filters and extras."""

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import AwareDatetime
from sqlalchemy import ColumnElement

from app.api.deps import IfMatch, PageDep, SessionDep, conditional, etag_of, require
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION
from app.api.schemas import ListPage
from app.domain.auth.principal import Principal
from app.domain.errors import ValidationFailed
from app.domain.listing import ListQuery, list_records
from app.domain.pagination import PageRequest
from app.domain.records import Kind

JSON = "application/json"


class JSONBytes(Response):
    media_type = JSON


def parse_fields(model: Any, raw: str | None) -> set[str] | None:
    if not raw:
        return None
    wanted = {f.strip() for f in raw.split(",") if f.strip()}
    unknown = wanted - set(model.model_fields)
    if unknown:
        raise ValidationFailed(f"unknown fields: {', '.join(sorted(unknown))}", loc=("query", "fields"))
    return wanted


def shape(data: dict[str, Any], fields: set[str] | None) -> dict[str, Any]:
    return data if fields is None else {k: v for k, v in data.items() if k in fields}


def one(data: dict[str, Any], version: int, fields: set[str] | None, status_code: int = 200,
        headers: dict[str, str] | None = None) -> Response:
    return JSONBytes(orjson.dumps(shape(data, fields)), status_code=status_code,
                     headers={"ETag": etag_of(version), **(headers or {})})


FieldsQuery = Annotated[str | None, Query(max_length=1000, description="comma-separated fields to return, e.g. `id,title`")]


def common_query(
    request: Request,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200, description="search names, email, phone (word prefixes)")] = None,
    owner_id: UUID | None = None,
    created_after: Annotated[AwareDatetime | None, Query(description="inclusive")] = None,
    created_before: Annotated[AwareDatetime | None, Query(description="exclusive")] = None,
    updated_since: Annotated[AwareDatetime | None, Query(description="inclusive")] = None,
) -> ListQuery:
    """Also `cf.<key>=<value>` for custom fields (typed by the field's definition)."""
    cf = {k[3:]: v for k, v in request.query_params.items() if k.startswith("cf.")}
    if len(cf) > 20:
        raise ValidationFailed("at most 20 custom field filters", loc=("query",))
    return ListQuery(page=PageRequest(page.limit, page.cursor, page.sort), q=q, owner_id=owner_id,
                     created_after=created_after, created_before=created_before, updated_since=updated_since, cf=cf)


def no_filters() -> list[ColumnElement[bool]]:
    return []


def record_routes(router: APIRouter, *, kind: Kind[Any], plural: str, area: str, create_schema: type,
                  update_schema: type, create: Callable[..., Any], update: Callable[..., Any],
                  sorts: dict[str, Any], filters: Callable[..., list[ColumnElement[bool]]] = no_filters,
                  sort_doc: str = "") -> None:
    """Add `GET /`, `POST /`, `GET /{id}`, `PATCH /{id}`, `DELETE /{id}`, `POST /{id}/restore` to `router`."""
    read = kind.read
    Reader = Annotated[Principal, require(f"{area}:read")]
    Writer = Annotated[Principal, require(f"{area}:write")]
    Name = kind.label.replace(" ", "")
    Names = plural[0].upper() + plural[1:]

    async def list_(session: SessionDep, who: Reader, query: Annotated[ListQuery, Depends(common_query)],
                    where: Annotated[list[ColumnElement[bool]], Depends(filters)], fields: FieldsQuery = None,
                    ) -> Any:
        wanted = parse_fields(read, fields)
        page = await list_records(session, kind, who.org_id, query, sorts, where)
        body = {"data": [shape(kind.dump(r), wanted) for r in page.items], "next_cursor": page.next_cursor}
        return JSONBytes(orjson.dumps(body))

    list_.__doc__ = f"List {plural}, newest first by default; keyset-paginated. {sort_doc}"
    router.add_api_route("", list_, methods=["GET"], response_model=ListPage[read], operation_id=f"list{Names}",
                         summary=f"List {plural}", responses=AUTHED)

    async def create_(body: create_schema, session: SessionDep, who: Writer) -> Any:  # type: ignore[valid-type]
        obj = await create(session, who, body)
        return one(kind.dump(obj), obj.version, None, status.HTTP_201_CREATED,
                   {"Location": f"{router.prefix}/{obj.id}"})

    create_.__doc__ = f"Create a {kind.label.lower()}. Writes a `{kind.object_type}.created` event."
    router.add_api_route("", create_, methods=["POST"], response_model=read, status_code=201,
                         operation_id=f"create{Name}", summary=f"Create a {kind.label.lower()}",
                         responses={**AUTHED, **CONFLICT})

    async def get_one(request: Request, session: SessionDep, who: Reader, record_id: UUID,
                      include_deleted: Annotated[bool, Query(description="also find a soft-deleted record")] = False,
                      fields: FieldsQuery = None) -> Any:
        wanted = parse_fields(read, fields)
        obj = await kind.get(session, who.org_id, record_id, include_deleted=include_deleted)
        conditional(request, obj.version)
        return one(kind.dump(obj), obj.version, wanted)

    get_one.__doc__ = f"Read one {kind.label.lower()}. `ETag` carries its version; `If-None-Match` gives 304."
    router.add_api_route("/{record_id}", get_one, methods=["GET"], response_model=read, operation_id=f"get{Name}",
                         summary=f"Get a {kind.label.lower()}", responses={**AUTHED, **NOT_FOUND})

    async def patch_one(record_id: UUID, body: update_schema, session: SessionDep, who: Writer,  # type: ignore[valid-type]
                        expected: IfMatch) -> Any:
        obj = await update(session, who, record_id, body, expected)
        return one(kind.dump(obj), obj.version, None)

    patch_one.__doc__ = (f"Change a {kind.label.lower()} (JSON Merge Patch: absent = unchanged, null = cleared; "
                         "custom_fields and address merge key by key). `If-Match` guards against lost updates.")
    router.add_api_route("/{record_id}", patch_one, methods=["PATCH"], response_model=read,
                         operation_id=f"update{Name}", summary=f"Update a {kind.label.lower()}",
                         responses={**AUTHED, **NOT_FOUND, **PRECONDITION, **CONFLICT})

    async def delete_one(record_id: UUID, session: SessionDep, who: Writer, expected: IfMatch) -> Response:
        await kind.delete(session, who, record_id, expected)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    delete_one.__doc__ = (f"Soft-delete a {kind.label.lower()}: it leaves lists and becomes a tombstone in the "
                          "changes feed; `restore` brings it back within 30 days.")
    router.add_api_route("/{record_id}", delete_one, methods=["DELETE"], status_code=204,
                         operation_id=f"delete{Name}", summary=f"Delete a {kind.label.lower()}",
                         responses={**AUTHED, **NOT_FOUND, **PRECONDITION}, response_class=Response)

    async def restore_one(record_id: UUID, session: SessionDep, who: Writer) -> Any:
        obj = await kind.restore(session, who, record_id)
        return one(kind.dump(obj), obj.version, None)

    restore_one.__doc__ = f"Bring back a soft-deleted {kind.label.lower()} (within 30 days)."
    router.add_api_route("/{record_id}/restore", restore_one, methods=["POST"], response_model=read,
                         operation_id=f"restore{Name}", summary=f"Restore a {kind.label.lower()}",
                         responses={**AUTHED, **NOT_FOUND})
