"""The HTTP face every sales record shares: list, create, read, merge-patch, delete, restore, with
ETags, sparse `fields=` and the common filters. Each area's router adds its own filters and extras."""

import csv
import hashlib
import inspect
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, Field, PlainValidator, TypeAdapter, create_model
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from app.api import expand
from app.api.deps import AnyCaller, IfMatch, SessionDep, conditional, etag_of, require
from app.api.paging import sorted_page_request
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION, Problem
from app.api.schemas import ListPage
from app.api.user_filter import ME_DOC, UserRef, user_id_of
from app.db import Database, set_org
from app.domain import bulk
from app.domain.audit import service as audit
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.errors import ValidationFailed
from app.domain.events import feed
from app.domain.flows.upsert import Writers, upsert
from app.domain.listing import ListQuery, list_records
from app.domain.pagination import Page, PageRequest
from app.domain.records import Kind
from app.domain.schemas import MAX_EXTERNAL_IDS, Instant
from app.domain.text import spreadsheet_safe
from app.logging import log

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


def shape(data: dict[str, Any], fields: set[str] | None, related: Sequence[str] = ()) -> dict[str, Any]:
    """The fields asked for (`fields=`), and `expanded` when `expand=` asked for relations."""
    if fields is None:
        return data
    return {k: v for k, v in data.items() if k in fields or (related and k == "expanded")}


def page_json(rows: TypeAdapter[Any], items: Sequence[Any], next_cursor: str | None) -> bytes:
    """A list page's JSON, `{"data": [...], "next_cursor": ...}`: the records read from their entities and written
    by the read model in one pass each (the same values as `kind.dump` per record, without a dict per record)."""
    return (b'{"data":' + rows.dump_json(rows.validate_python(items, from_attributes=True))
            + b',"next_cursor":' + orjson.dumps(next_cursor) + b"}")


def one(data: dict[str, Any], version: int, fields: set[str] | None, status_code: int = 200,
        headers: dict[str, str] | None = None, related: Sequence[str] = ()) -> Response:
    return JSONBytes(orjson.dumps(shape(data, fields, related)), status_code=status_code,
                     headers={"ETag": etag_of(version), **(headers or {})})


FieldsQuery = Annotated[str | None, Query(max_length=1000, description="comma-separated fields to return, e.g. `id,title`")]


def search_doc(kind: Kind[Any], searches: str) -> str:
    """What `q` finds on this kind, said once per list: its words, plus exact email and phone where it has them."""
    doc = f"search {searches}: every word as a prefix, in any order"
    if hasattr(kind.model, "email"):
        doc += "; an email address matches exactly"
    if hasattr(kind.model, "phone"):
        doc += ("; a phone number matches in any notation (`+49 30 1234567`, `0049301234567`), and national "
                "numbers (`030 1234567`) are read in the organisation's `default_phone_region`")
    return doc


MAX_IDS = 200


def parse_ids(raw: list[str] | None) -> tuple[UUID, ...] | None:
    """`ids=a,b&ids=c` -> (a, b, c); 422 for a value that is no UUID or more than MAX_IDS of them."""
    if raw is None:
        return None
    parts = [p.strip() for part in raw for p in part.split(",") if p.strip()]
    if len(parts) > MAX_IDS:
        raise ValidationFailed(f"at most {MAX_IDS} ids", loc=("query", "ids"), type="too_long")
    try:
        return tuple(dict.fromkeys(UUID(p) for p in parts))
    except ValueError:
        raise ValidationFailed("ids must be UUIDs, comma-separated", loc=("query", "ids"), type="uuid_parsing") from None


def filter_query(kind: Kind[Any], searches: str) -> Callable[..., Awaitable[ListQuery]]:
    """The common list filters as a dependency (no paging: lists add it, aggregates over a list do not), with
    `q` described for this kind."""

    async def common_filters(
        request: Request,
        who: AnyCaller,
        q: Annotated[str | None, Query(max_length=200, description=search_doc(kind, searches))] = None,
        owner_id: Annotated[UserRef | None, Query(description=ME_DOC)] = None,
        created_after: Annotated[Instant | None, Query(description="inclusive")] = None,
        created_before: Annotated[Instant | None, Query(description="exclusive")] = None,
        updated_since: Annotated[Instant | None, Query(description="inclusive")] = None,
        import_id: Annotated[UUID | None, Query(description="records created by this import")] = None,
        ids: Annotated[list[str] | None, Query(
            description=f"only these {kind.label.lower()} ids, comma-separated (or repeated), at most {MAX_IDS}: a "
                        "batch read in one request (the other filters and the sort still apply)")] = None,
    ) -> ListQuery:
        """Also `cf.<key>=<value>` for custom fields (typed by the field's definition)."""
        cf = {k[3:]: v for k, v in request.query_params.items() if k.startswith("cf.")}
        if len(cf) > 20:
            raise ValidationFailed("at most 20 custom field filters", loc=("query",))
        return ListQuery(q=q,
                         owner_id=user_id_of(owner_id, who, "owner_id"), created_after=created_after,
                         created_before=created_before, updated_since=updated_since, cf=cf, import_id=import_id,
                         ids=parse_ids(ids))

    common_filters.query_prefixes = ("cf.",)  # type: ignore[attr-defined]  # app/api/query_check.py
    # kinds without an owner or imports (products) take neither filter
    absent = {name for name in ("owner_id", "import_id") if not hasattr(kind.model, name)}
    if absent:
        signature = inspect.signature(common_filters)
        common_filters.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for p in signature.parameters.values() if p.name not in absent])
    return common_filters


def list_query(kind: Kind[Any], searches: str, sorts: Iterable[str]) -> Callable[..., Awaitable[ListQuery]]:
    """The common list parameters (filters and paging, `sort` typed by this list's fields) as a dependency."""
    filters_of = filter_query(kind, searches)
    paged = sorted_page_request(sorts)

    async def common_query(page: Annotated[PageRequest, Depends(paged)],
                           query: Annotated[ListQuery, Depends(filters_of)]) -> ListQuery:
        return replace(query, page=PageRequest(page.limit, page.cursor, page.sort))

    return common_query


async def no_filters() -> list[ColumnElement[bool]]:
    return []


EXPORT_PAGE = 200


def _trimmed(value: str) -> str:
    """Path parts of an external id are stored as the body's are: trimmed, never blank."""
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


ExternalSource = Annotated[str, Path(min_length=1, max_length=64, description="the partner system, e.g. erp"),
                           AfterValidator(_trimmed)]
ExternalKey = Annotated[str, Path(min_length=1, max_length=200, description="the record's id in that system"),
                        AfterValidator(_trimmed)]


class BatchRequest(BaseModel):
    model_config = {"extra": "forbid"}

    mode: Literal["create", "update", "upsert"] = "create"
    items: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=bulk.MAX_BATCH)]


def _an_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("each item is a JSON object")
    return value


def batch_request(name: str, create_schema: type[BaseModel], update_schema: type[BaseModel]) -> type[BatchRequest]:
    """The batch body of one kind, typed in the document: `create` and `upsert` items are the create body,
    `update` items the merge-patch body plus `id`. Items are checked one by one when the batch runs (one bad
    item fails alone, in `results`), so the request itself only requires objects."""
    update_item = create_model(f"{name}BatchUpdate", __base__=update_schema,
                               id=(UUID, Field(description="the record to update")))
    item = Annotated[dict[str, Any], PlainValidator(_an_object, json_schema_input_type=create_schema | update_item)]
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{name}BatchRequest", __base__=BatchRequest,
        items=(Annotated[list[item], Field(min_length=1, max_length=bulk.MAX_BATCH, description=(  # type: ignore[valid-type]
            "`create`: the create body; `update`: the patch body with `id`; `upsert`: the create body, matched by "
            "its first `external_ids` entry"))], ...))


class ItemProblem(Problem):
    instance: str | None = Field(None, description="absent: an item has no URL of its own")  # type: ignore[assignment]


class BatchResult(BaseModel):
    status: Literal["created", "updated", "failed"]
    id: UUID | None = None
    error: ItemProblem | None = Field(None, description="the problem the single-item route would answer "
                                                        "(`errors[].loc` starts with `body, items, <index>`)")


class BatchResponse(BaseModel):
    results: list[BatchResult]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if isinstance(value, str):
        return spreadsheet_safe(value)
    return value


def room_for_path_ref(ids: list[dict[str, str]] | None, source: str, external_id: str) -> None:
    """An upsert adds the path's external id to the body's list: together they stay within the limit."""
    ids = ids or []
    if len(ids) >= MAX_EXTERNAL_IDS and not any(e["source"] == source and e["id"] == external_id for e in ids):
        raise ValidationFailed(f"at most {MAX_EXTERNAL_IDS} external ids, counting {source}/{external_id} from the "
                               "path", loc=("body", "external_ids"), type="too_long")


# The last line of an export that failed after its first byte: an unterminated quoted field, which strict CSV
# readers refuse and lenient ones read as a row whose id is this sentence.
TRUNCATED = b'"EXPORT FAILED: the server stopped before the end, this file is incomplete'


async def _export_stream(session: AsyncSession, first: bytes, cursor: str | None,
                         page: Callable[[AsyncSession, str], Awaitable[Page[Any]]],
                         lines: Callable[[Sequence[Any]], bytes]) -> AsyncIterator[bytes]:
    """The first page, then the others, all from one REPEATABLE READ snapshot (`session`, closed at the end):
    the export is the state at its `X-Changes-Cursor`. Once bytes are out the status cannot change any more: on a
    failure the stream ends with TRUNCATED and the error propagates, so the server drops the connection without
    the chunked encoding's last chunk, which every HTTP/1.1 client reports as an incomplete body."""
    try:
        yield first
        while cursor is not None:
            next_page = await page(session, cursor)
            yield lines(next_page.items)
            cursor = next_page.next_cursor
    except Exception:
        log.error("export_failed", exc_info=True)
        yield TRUNCATED  # every chunk ends a row: this starts a line of its own
        raise
    finally:
        await session.close()


async def snapshot_session(db: Database, org_id: UUID) -> AsyncSession:
    """A session of its own in one REPEATABLE READ snapshot acting for `org_id`: every statement sees the same
    committed state, whatever commits meanwhile (an export's pages, and the feed position they reflect)."""
    session = db.sessions()
    try:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await set_org(session, org_id)
    except BaseException:
        await session.close()
        raise
    return session


CHANGES_CURSOR = "X-Changes-Cursor"


async def read_at_feed_position(session: AsyncSession, who: Principal,
                                read: Callable[[], Awaitable[Page[Any]]]) -> tuple[Page[Any], feed.Position]:
    """A read and the changes-feed position it reflects exactly: the head before and after it are the same, so
    no commit of the org fell between (each statement sees what was committed when it started). After three
    races the head taken before is kept: a change may then be both in the read and after the cursor (its event
    carries the record's `version`), never missed."""
    for _ in range(3):
        before = await feed.head(session, who.org_id)
        page = await read()
        if await feed.head(session, who.org_id) == before:
            break
    return page, before


def conditional_list(request: Request, body: bytes) -> Response:
    """A weak ETag over the page: a polling client gets 304 while nothing on it changed."""
    etag = 'W/"' + hashlib.sha1(body, usedforsecurity=False).hexdigest() + '"'
    if request.headers.get("if-none-match") in (etag, etag[2:]):
        return Response(status_code=304, headers={"ETag": etag})
    return JSONBytes(body, headers={"ETag": etag})


def record_routes(router: APIRouter, *, kind: Kind[Any], plural: str, area: str, create_schema: type,
                  update_schema: type, create: Callable[..., Any], update: Callable[..., Any],
                  sorts: dict[str, Any], searches: str,
                  filters: Callable[..., list[ColumnElement[bool]]] = no_filters, sort_doc: str = "",
                  write_role: Role = Role.viewer) -> None:
    """Add `GET /`, `POST /`, `GET /{id}`, `PATCH /{id}`, `DELETE /{id}`, `POST /{id}/restore` to `router`.
    `searches` names what `q` looks in (the fields of the kind's `search` column)."""
    common_query = list_query(kind, searches, sorts)
    read = kind.read
    related = kind.object_type in expand.RELATIONS
    expander = expand.expand_query(kind.object_type) if related else expand.nothing
    shown = expand.read_with_expanded(kind.object_type, read) if related else read
    Reader = Annotated[Principal, require(f"{area}:read")]
    Writer = Annotated[Principal, require(f"{area}:write", write_role)]
    rows = TypeAdapter(list[read])  # type: ignore[valid-type]
    Name = kind.label.replace(" ", "")
    Names = plural[0].upper() + plural[1:]

    async def list_(request: Request, session: SessionDep, who: Reader,
                    query: Annotated[ListQuery, Depends(common_query)],
                    where: Annotated[list[ColumnElement[bool]], Depends(filters)],
                    related: Annotated[tuple[str, ...], Depends(expander)], fields: FieldsQuery = None) -> Any:
        wanted = parse_fields(read, fields)
        page, position = await read_at_feed_position(session, who, lambda: list_records(session, kind, who, query,
                                                                                        sorts, where))
        if wanted is None and not related:  # the whole rows: validated and written as JSON in one pass each
            body = page_json(rows, page.items, page.next_cursor)
        else:
            data = [kind.dump(r) for r in page.items]
            await expand.embed(session, who, related, page.items, data)
            body = orjson.dumps({"data": [shape(d, wanted, related) for d in data], "next_cursor": page.next_cursor})
        response = conditional_list(request, body)
        response.headers[CHANGES_CURSOR] = position.encode()
        return response

    list_.__doc__ = (f"List {plural}, newest first by default; keyset-paginated. {sort_doc} "
                     "A weak `ETag` lets mobile clients poll with `If-None-Match` (304 when unchanged).")
    router.add_api_route("", list_, methods=["GET"], response_model=ListPage[shown], operation_id=f"list{Names}",
                         summary=f"List {plural}", responses=AUTHED)

    async def export_csv(request: Request, session: SessionDep, who: Reader,
                         query: Annotated[ListQuery, Depends(common_query)],
                         where: Annotated[list[ColumnElement[bool]], Depends(filters)]) -> StreamingResponse:
        columns = list(read.model_fields)

        def lines(records: Sequence[Any], header: bool = False) -> bytes:
            out = io.StringIO()
            writer = csv.writer(out)
            if header:
                writer.writerow(columns)
            for record in records:
                data = kind.dump(record)
                writer.writerow([_cell(data.get(c)) for c in columns])
            return out.getvalue().encode()

        async def page(s: AsyncSession, cursor: str | None) -> Page[Any]:
            return await list_records(s, kind, who, replace(
                query, page=PageRequest(EXPORT_PAGE, cursor, query.page.sort)), sorts, where)

        # The first page is read (and every parameter checked) before anything is sent: a bad sort, cursor or
        # filter is a 422, never a 200 with a header row and then a cut.
        await page(session, query.page.cursor)
        await audit.record(session, who, "export", kind.object_type, None)
        opener = getattr(request.app.state, "snapshot_session", None)  # the tests' shared transaction, if any
        snapshot = await (opener or snapshot_session)(request.app.state.db, who.org_id)
        try:
            position = await feed.head(snapshot, who.org_id)
            first = await page(snapshot, query.page.cursor)
        except BaseException:
            await snapshot.close()
            raise
        return StreamingResponse(
            _export_stream(snapshot, lines(first.items, header=True), first.next_cursor, page, lines),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{plural}.csv"',
                     CHANGES_CURSOR: position.encode()})

    export_csv.__doc__ = (f"All {plural} matching the list filters as CSV, streamed (constant memory on the "
                          "server, any size), in the list's `sort`, after `cursor` when one is given. Objects and "
                          "lists are JSON in their cells; a text cell that starts with `=`, `+`, `-`, `@`, tab or "
                          "carriage return gets a leading `'` so that spreadsheets never run it as a formula (plain "
                          "numbers such as `-5` stay as they are). Every parameter is checked before the first "
                          "byte (422). A failure after it ends the body with the line "
                          f"`{TRUNCATED.decode()}` (an unterminated quoted field) and drops the connection "
                          "before the response's end, which HTTP clients report as an incomplete body: an export "
                          "is complete only when the response ended normally.")
    router.add_api_route("/export.csv", export_csv, methods=["GET"], operation_id=f"export{Names}",
                         summary=f"Export {plural} as CSV", response_class=StreamingResponse,
                         responses={200: {"content": {"text/csv": {}}, "description": "CSV, header row first"},
                                    **AUTHED})

    writers = Writers(kind, create, update, create_schema, update_schema)

    if "external_ids" in create_schema.model_fields:  # kinds without external ids have no such routes
        async def get_by_external_id(source: ExternalSource, external_id: ExternalKey, request: Request,
                                     session: SessionDep, who: Reader) -> Any:
            obj = await bulk.get_by_ref(session, who, kind, source, external_id)
            conditional(request, obj.version)
            return one(kind.dump(obj), obj.version, None)

        get_by_external_id.__doc__ = f"Read a {kind.label.lower()} by a partner system's id."
        router.add_api_route("/by-external-id/{source}/{external_id}", get_by_external_id, methods=["GET"],
                             response_model=read, operation_id=f"get{Name}ByExternalId",
                             summary=f"Get a {kind.label.lower()} by external id", responses={**AUTHED, **NOT_FOUND})

        async def put_by_external_id(source: ExternalSource, external_id: ExternalKey, body: create_schema,  # type: ignore[valid-type]
                                     session: SessionDep, who: Writer) -> Any:
            data = body.model_dump(mode="python", exclude_unset=True)
            room_for_path_ref(data.get("external_ids"), source, external_id)
            obj, created = await upsert(session, who, writers, source, external_id, data)
            return one(kind.dump(obj), obj.version, None, 201 if created else 200,
                       {"Location": f"{router.prefix}/{obj.id}"} if created else None)

        put_by_external_id.__doc__ = (f"Upsert: create the {kind.label.lower()} (201) or merge these fields into the one "
                                      "holding this external id (200; a deleted one is restored). Safe to retry.")
        router.add_api_route("/by-external-id/{source}/{external_id}", put_by_external_id, methods=["PUT"],
                             response_model=read, operation_id=f"upsert{Name}ByExternalId",
                             summary=f"Upsert a {kind.label.lower()} by external id",
                             responses={201: {"model": read, "description": "created"}, **AUTHED, **CONFLICT})

    Batch = batch_request(Name, create_schema, update_schema)

    async def batch_(body: Batch, session: SessionDep, who: Writer) -> Any:  # type: ignore[valid-type]
        results = await bulk.batch(session, who, writers, body.mode, body.items)
        return JSONBytes(orjson.dumps({"results": results}))

    batch_.__doc__ = (f"Up to {bulk.MAX_BATCH} {plural} in one call: `create`, `update` (items carry `id`) or "
                      "`upsert` (items carry `external_ids: [{source, id}]` like the records, the first one being the key; "
                      "the older `external_id: {source, id}` still works). One bad item fails alone; results "
                      "come back in order.")
    router.add_api_route("/batch", batch_, methods=["POST"], response_model=BatchResponse,
                         operation_id=f"batch{Names}", summary=f"Write {plural} in a batch", responses=AUTHED)

    async def create_(body: create_schema, session: SessionDep, who: Writer) -> Any:  # type: ignore[valid-type]
        obj = await create(session, who, body)
        return one(kind.created_dump(session, obj), obj.version, None, status.HTTP_201_CREATED,
                   {"Location": f"{router.prefix}/{obj.id}"})

    create_.__doc__ = f"Create a {kind.label.lower()}. Writes a `{kind.object_type}.created` event."
    router.add_api_route("", create_, methods=["POST"], response_model=read, status_code=201,
                         operation_id=f"create{Name}", summary=f"Create a {kind.label.lower()}",
                         responses={**AUTHED, **CONFLICT})

    async def get_one(request: Request, session: SessionDep, who: Reader, record_id: UUID,
                      related: Annotated[tuple[str, ...], Depends(expander)],
                      include_deleted: Annotated[bool, Query(description="also find a soft-deleted record")] = False,
                      fields: FieldsQuery = None) -> Any:
        wanted = parse_fields(read, fields)
        obj = await kind.get(session, who, record_id, include_deleted=include_deleted)
        if not related:  # the ETag is the record's version: it does not cover the related records
            conditional(request, obj.version)
        data = kind.dump(obj)
        await expand.embed(session, who, related, [obj], [data])
        return one(data, obj.version, wanted, related=related)

    get_one.__doc__ = f"Read one {kind.label.lower()}. `ETag` carries its version; `If-None-Match` gives 304."
    router.add_api_route("/{record_id}", get_one, methods=["GET"], response_model=shown, operation_id=f"get{Name}",
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
