import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from app.api.deps import PageDep, SessionDep, SettingsDep, conditional, require
from app.api.problems import AUTHED, NOT_FOUND, TOO_LARGE
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.principal import Principal
from app.domain.errors import Forbidden, NotFound, ValidationFailed
from app.domain.imports import service
from app.domain.imports.schemas import ImportRead

router = Router(prefix="/v1/imports", tags=["imports"])
Writer = Annotated[Principal, require("imports:write")]
Reader = Annotated[Principal, require("imports:read")]
ObjectName = Literal[service.OBJECTS]  # type: ignore[valid-type]
IMP = service.IMPORT


class Preview(BaseModel):
    format: Literal["csv", "xlsx", "xls"]
    encoding: str | None
    delimiter: str | None
    headers: list[str]
    sample: list[list[str]]
    suggested_mapping: dict[str, str]


def _mapping(raw: str | None) -> dict[str, str] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationFailed("mapping must be a JSON object {\"<column>\": \"<field>\"}", loc=("body", "mapping")) from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValidationFailed("mapping must be a JSON object of column names to field names", loc=("body", "mapping"))
    return value


async def stored_upload(settings: SettingsDep, file: Annotated[
        UploadFile, File(description="CSV (any delimiter and encoding), XLSX or XLS with a header row")],
) -> AsyncIterator[tuple[Path, str]]:
    """The upload copied into the data dir, in a thread and before the request's transaction begins (a
    1 GiB copy neither blocks the event loop nor holds a database connection); removed afterwards unless an
    import took it. -> (path, file name)."""
    path = await asyncio.to_thread(service.store_upload, settings, file.file)
    try:
        yield path, file.filename or "upload"
    finally:
        await asyncio.to_thread(path.unlink, True)


def may_write(who: Principal, object_name: str) -> None:
    """An import writes records of its kind: the caller needs that kind's write scope too (checked when the
    import is created; the worker then acts as the import's creator)."""
    scope = f"{object_name}:write"
    if not who.allows(scope):
        raise Forbidden(f"Importing {object_name} needs the scope {scope!r} as well", required_scope=scope)


# Declared before the caller (whose authentication opens the transaction), so the copy runs first.
Upload = Annotated[tuple[Path, str], Depends(stored_upload)]


@router.post("/preview", response_model=Preview, operation_id="previewImport", responses={**AUTHED, **TOO_LARGE})
async def preview(upload: Upload, session: SessionDep, who: Writer, object: Annotated[ObjectName, Form()]) -> Preview:
    """What the file looks like to us: format, encoding, delimiter, headers, a few rows, and the mapping we
    suggest (send it back, edited, as `mapping`). Needs the write scope of `object` too, as the import does."""
    may_write(who, object)
    path, filename = upload
    return Preview(**await service.preview(session, who.org_id, object, path, filename))


@router.post("", status_code=202, response_model=ImportRead, operation_id="createImport",
             responses={**AUTHED, **TOO_LARGE})
async def create_import(
    upload: Upload, session: SessionDep, settings: SettingsDep, who: Writer,
    object: Annotated[ObjectName, Form()],
    mapping: Annotated[str | None, Form(description='JSON {"<column>": "<field>|cf.<key>|external_id"}; '
                                                     "absent: the suggested mapping")] = None,
    dedupe_by: Annotated[Literal["email", "phone", "external_id", "none"], Form()] = "email",
    external_source: Annotated[str | None, Form(max_length=64, description="the system external ids come from")] = None,
    on_duplicate: Annotated[Literal["skip", "update"], Form()] = "skip",
    dry_run: Annotated[bool, Form(description="report what would happen; write nothing")] = False,
) -> Response:
    """Queue an import; a worker processes it and `GET /v1/imports/{id}` shows progress and counts. Besides
    `imports:write`, the caller needs the write scope of the records imported (`contacts:write`, ...): 403.
    Duplicates (by `dedupe_by`, within the file and against existing records) are skipped or updated.
    Imported records list with `?import_id=`. Up to `CRM_IMPORT_MAX_BYTES`."""
    may_write(who, object)
    path, filename = upload
    record = await service.create(session, settings, who, path, filename, object, _mapping(mapping), dedupe_by,
                                  external_source, on_duplicate, dry_run)
    return one(IMP.dump(record), record.version, None, 202, {"Location": f"/v1/imports/{record.id}"})


@router.get("", response_model=ListPage[ImportRead], operation_id="listImports", responses=AUTHED)
async def list_imports(session: SessionDep, who: Reader, page: PageDep) -> JSONBytes:
    """CSV imports, newest first, with their status and row counts."""
    result = await service.list_page(session, who.org_id, page)
    return JSONBytes(orjson.dumps({"data": [IMP.dump(r) for r in result.items], "next_cursor": result.next_cursor}))


@router.get("/{import_id}", response_model=ImportRead, operation_id="getImport", responses={**AUTHED, **NOT_FOUND})
async def get_import(import_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """Status (`queued, running, succeeded, failed, cancelled`), `processed` of `total`, and the counts."""
    record = await service.get(session, who.org_id, import_id)
    conditional(request, record.version)
    return one(IMP.dump(record), record.version, None)


@router.get("/{import_id}/errors.csv", operation_id="getImportErrors", response_class=FileResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "row, column, reason"}, **AUTHED,
                       **NOT_FOUND})
async def errors_csv(import_id: UUID, session: SessionDep, settings: SettingsDep, who: Reader) -> Any:
    """Every rejected row: the file's line number, the column, and why."""
    record = await service.get(session, who.org_id, import_id)
    path = service.file_path(settings, record.org_id, record.id, ".errors.csv")
    if not path.exists():
        raise NotFound("No errors file yet: the import has not started")
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=f"import-{record.id}-errors.csv")


@router.post("/{import_id}/cancel", response_model=ImportRead, operation_id="cancelImport",
             responses={**AUTHED, **NOT_FOUND})
async def cancel(import_id: UUID, session: SessionDep, who: Writer) -> Response:
    """Stop after the current batch; records already imported stay."""
    record = await service.cancel(session, who, import_id)
    return one(IMP.dump(record), record.version, None)
