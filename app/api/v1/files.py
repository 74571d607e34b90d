"""Files attached to contacts, companies, leads, deals and activities: uploaded as multipart/form-data and
streamed to the storage (disk or an S3-compatible bucket), listed per record, downloaded as attachments, on the
record's timeline as `file`. A file follows its record: whoever may read the record may read its files."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, get_args
from uuid import UUID

import orjson
from fastapi import Query, Request, Response
from fastapi.responses import StreamingResponse

from app.api import scoping
from app.api.deps import IfMatch, PageDep, SessionDep, SettingsDep, conditional, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION, TOO_LARGE
from app.api.records import MAX_IDS, JSONBytes, one, parse_ids
from app.api.routing import Router
from app.api.schemas import ListPage
from app.api.uploads import StreamedForm
from app.db import set_org
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.errors import NotFound, ValidationFailed
from app.domain.files import service
from app.domain.files.content import content_disposition
from app.domain.files.models import PARENTS, storage_key
from app.domain.files.schemas import FileRead, ParentType
from app.domain.files.storage import Missing, storage_for
from app.domain.schemas import Instant

router = Router(prefix="/v1/files", tags=["files"])
Reader = Annotated[Principal, require("files:read")]
Writer = Annotated[Principal, require("files:write", Role.member)]
FIELDS = ("object_type", "object_id")

UPLOAD_BODY = {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["file", "object_type", "object_id"], "additionalProperties": False,
               "properties": {
                   "file": {"type": "string", "format": "binary", "description": (
                       "the content; its part's `filename` is kept (without any directory part)")},
                   "object_type": {"type": "string", "enum": list(get_args(ParentType)),
                                   "description": "the kind of record to attach it to (singular, as in events)"},
                   "object_id": {"type": "string", "format": "uuid", "description": "that record's id"}}},
    "encoding": {"file": {"contentType": "*/*"}}}}}


def _target(fields: dict[str, str], final: bool) -> tuple[str, UUID] | None:
    """The record named by the form's fields: 422 for an unknown field or a bad value; None while one is missing
    (or 422 naming it, once the whole body is read)."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValidationFailed(f"{unknown[0]}: unknown field (send file, object_type, object_id)",
                               loc=("body", unknown[0]))
    object_type = fields.get("object_type")
    if object_type is not None and object_type not in PARENTS:
        raise ValidationFailed(f"object_type must be one of {', '.join(PARENTS)}", loc=("body", "object_type"))
    object_id = None
    if fields.get("object_id") is not None:
        try:
            object_id = UUID(fields["object_id"].strip())
        except ValueError:
            raise ValidationFailed("object_id must be a UUID", loc=("body", "object_id")) from None
    for name, value in (("object_type", object_type), ("object_id", object_id)):
        if value is None and final:
            raise ValidationFailed(f"{name}: field required", loc=("body", name))
    if object_type is None or object_id is None:
        return None
    return object_type, object_id


def _readable_types(who: Principal) -> list[str]:
    return [t for t in PARENTS if not scoping.missing_read_scopes(who, [t])]


@router.post("", status_code=201, response_model=FileRead, operation_id="uploadFile",
             openapi_extra={"requestBody": UPLOAD_BODY},
             responses={**AUTHED, **NOT_FOUND, **TOO_LARGE})
async def upload_file(request: Request, session: SessionDep, settings: SettingsDep, who: Writer) -> Response:
    """Attach a file to a contact, company, lead, deal or activity you may read (another org's, a deleted or an
    invisible record: 404). The body is `multipart/form-data` with `file`, `object_type` and `object_id`; it is
    streamed to the storage as it arrives (send the fields before the file to have them checked before any byte is
    stored). Up to `CRM_MAX_FILE_MB` (413 above, and nothing is kept). `content_type` is found from the file's
    first bytes; `sha256` and `size` are computed on the way. Writes `file.created`."""
    form = StreamedForm(request)
    if not await form.until_file():
        _target(form.fields, final=False)
        raise ValidationFailed("file: field required (a multipart part named `file` with a filename)",
                               loc=("body", "file"))
    early = _target(form.fields, final=False)
    if early is not None:  # the fields came first: refuse a wrong record before storing anything
        scoping.refuse_unreadable(who, [early[0]], f"Attaching a file to a {early[0]}")
        await service.parent(session, who, *early)
    # The request's work so far only read: commit, so that its connection goes back to the pool while the
    # bytes arrive (a new transaction acts for the org again below).
    await session.commit()
    storage = storage_for(settings)
    file_id = service.new_file_id()
    intake = await service.store(storage, who.org_id, file_id, form.file_chunks(), settings.max_file_bytes)
    try:
        await form.rest()
        target = _target(form.fields, final=True)
        assert target is not None
        scoping.refuse_unreadable(who, [target[0]], f"Attaching a file to a {target[0]}")
        await set_org(session, who.org_id)
        assert form.file is not None
        obj = await service.create(session, who, file_id, *target, form.file.filename, form.file.content_type, intake)
        data = service.dump(obj)
        await session.commit()  # here, not after the response: the stored bytes go again if this fails
    except BaseException:
        with contextlib.suppress(Exception):
            await storage.delete(storage_key(who.org_id, file_id))
        raise
    return one(data, obj.version, None, 201, {"Location": f"/v1/files/{obj.id}"})


@router.get("", response_model=ListPage[FileRead], operation_id="listFiles", responses={**AUTHED, **NOT_FOUND})
async def list_files(
    session: SessionDep, who: Reader, page: PageDep,
    object_type: Annotated[ParentType | None, Query(description="files of records of this kind")] = None,
    object_id: Annotated[UUID | None, Query(description="files of this record (with `object_type`); 404 when "
                                                        "you may not read the record")] = None,
    created_after: Annotated[Instant | None, Query(description="inclusive")] = None,
    created_before: Annotated[Instant | None, Query(description="exclusive")] = None,
    ids: Annotated[list[str] | None, Query(
        description=f"only these file ids, comma-separated (or repeated), at most {MAX_IDS}")] = None,
) -> JSONBytes:
    """Files you may read (those of records you may read, of the kinds your credential may read), newest first
    by default (`sort` `created_at` or `-created_at`); keyset pages."""
    if object_id is not None and object_type is None:
        raise ValidationFailed("object_id needs object_type", loc=("query", "object_type"))
    if object_type is not None:
        scoping.refuse_unreadable(who, [object_type], f"Listing the files of {object_type} records")
    if object_id is not None:
        await service.parent(session, who, object_type, object_id)  # 404 for a record you may not read
    types = [object_type] if object_type is not None else _readable_types(who)
    where = service.filters(object_type, object_id, created_after, created_before, parse_ids(ids))
    result = await service.list_files(session, who, page, where, types)
    return JSONBytes(orjson.dumps({"data": [service.dump(f) for f in result.items], "next_cursor": result.next_cursor}))


async def _readable_file(session: Any, who: Principal, file_id: UUID, include_deleted: bool = False) -> Any:
    obj = await service.FILE.get(session, who, file_id, include_deleted=include_deleted)
    if scoping.missing_read_scopes(who, [obj.object_type]):
        raise NotFound("File not found")  # its record's kind is out of the credential's reach
    return obj


@router.get("/{file_id}", response_model=FileRead, operation_id="getFile", responses={**AUTHED, **NOT_FOUND})
async def get_file(file_id: UUID, request: Request, session: SessionDep, who: Reader,
                   include_deleted: Annotated[bool, Query(description="also find a deleted file")] = False) -> Response:
    """One file's metadata, if you may read its record."""
    obj = await _readable_file(session, who, file_id, include_deleted)
    conditional(request, obj.version)
    return one(service.dump(obj), obj.version, None)


@router.get("/{file_id}/content", operation_id="downloadFile", response_class=StreamingResponse,
            responses={**AUTHED, **NOT_FOUND, 200: {
                "description": "the content, streamed, always as an attachment",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                "headers": {"Content-Disposition": {"description": "attachment; filename=...; filename*=UTF-8''...",
                                                    "schema": {"type": "string"}},
                            "X-Content-Type-Options": {"description": "nosniff", "schema": {"type": "string"}}}}})
async def download_file(file_id: UUID, session: SessionDep, settings: SettingsDep, who: Reader) -> Response:
    """The file's bytes with its detected `Content-Type`, as an attachment (`Content-Disposition` with a safe
    name, RFC 6266), `X-Content-Type-Options: nosniff` and a sandboxing CSP: an uploaded page never runs as this
    API's."""
    obj = await _readable_file(session, who, file_id)
    try:
        chunks = await storage_for(settings).open(obj.storage_key)
    except Missing:
        raise NotFound("File content not found") from None
    headers = {"Content-Disposition": content_disposition(obj.filename), "Content-Length": str(obj.size),
               "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
               "Cache-Control": "private, no-cache", "ETag": f'"{obj.sha256}"'}
    return StreamingResponse(chunks, media_type=obj.content_type, headers=headers)


@router.delete("/{file_id}", status_code=204, operation_id="deleteFile",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_file(file_id: UUID, session: SessionDep, who: Writer, expected: IfMatch) -> Response:
    """Delete a file: it leaves every list, timeline and read at once (`file.deleted`); `POST
    /v1/files/{id}/restore` brings it back within 30 days, after which its row and its bytes are removed for
    good. The uploader, the record's owner, their manager or an admin may delete it."""
    await _readable_file(session, who, file_id)
    await service.delete_file(session, who, file_id, expected)
    return Response(status_code=204)


@router.post("/{file_id}/restore", response_model=FileRead, operation_id="restoreFile",
             responses={**AUTHED, **NOT_FOUND})
async def restore_file(file_id: UUID, session: SessionDep, who: Writer) -> Response:
    """Bring back a deleted file (within 30 days of its deletion; `file.restored`)."""
    await _readable_file(session, who, file_id, include_deleted=True)
    obj = await service.restore(session, who, file_id)
    return one(service.dump(obj), obj.version, None)
