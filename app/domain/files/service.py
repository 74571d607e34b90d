"""Files attached to records (`POST /v1/files`): the metadata rows, read through the registry's rule (a file
follows its parent record), and their bytes in the storage (`app.domain.files.storage`).

The bytes are stored before the row is written (the upload streams; the row needs its size and hash), and are
removed again when anything after that fails. A deleted file is a tombstone for 30 days (restore); its bytes
go when its row does: `purge_deleted` after that window, or at once on a contact's erasure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, delete, false, or_
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.errors import Forbidden, NotFound
from app.domain.events import service as events
from app.domain.files.content import Intake, safe_filename, sniff
from app.domain.files.models import PARENTS, StoredFile, storage_key
from app.domain.files.storage import Storage
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import RESTORE_WINDOW, Kind, may_delete
from app.ids import new_id

FILE: Kind[StoredFile] = Kind.of(kinds.FILE)
SORTS = {"created_at": StoredFile.created_at}


def dump(obj: StoredFile) -> dict[str, Any]:
    return FILE.dump(obj)


async def parent(session: AsyncSession, who: Principal, object_type: str, object_id: UUID) -> Any:
    """The record a file is (to be) attached to, if `who` may read it; else 404 (another org's, deleted, not
    visible to them, or none)."""
    assert object_type in PARENTS
    return await Kind.of(kinds.named(object_type)).get(session, who, object_id)


async def store(storage: Storage, org_id: UUID, file_id: UUID, chunks: AsyncIterator[bytes], limit: int) -> Intake:
    """Stream `chunks` into the storage under the file's key, counting and hashing them on the way; over `limit`
    bytes: 413, and nothing is kept."""
    intake = Intake(limit)

    async def counted() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield intake.take(chunk)

    await storage.put(storage_key(org_id, file_id), counted())
    return intake


async def create(session: AsyncSession, who: Principal, file_id: UUID, object_type: str, object_id: UUID,
                 filename: str | None, declared_type: str | None, intake: Intake) -> StoredFile:
    """The row of a file whose bytes are stored (`store`), once its parent is known to be readable."""
    await parent(session, who, object_type, object_id)
    name = safe_filename(filename)
    obj = StoredFile(org_id=who.org_id, id=file_id, object_type=object_type, object_id=object_id, filename=name,
                     content_type=sniff(bytes(intake.head), name, declared_type), size=intake.size,
                     sha256=intake.sha256, created_by=who.user_id)
    session.add(obj)
    await session.flush()
    await _emit(session, who, obj, "created")
    return obj


def new_file_id() -> UUID:
    return new_id()


async def _emit(session: AsyncSession, who: Principal | None, obj: StoredFile, action: str) -> None:
    await events.emit_many(session, who, obj.org_id, [
        (f"file.{action}", "file", obj.id, obj.version, {"object": dump(obj)})])


def filters(object_type: str | None, object_id: UUID | None, created_after: datetime | None = None,
            created_before: datetime | None = None, ids: tuple[UUID, ...] | None = None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if created_after is not None:
        where.append(StoredFile.created_at >= created_after)
    if created_before is not None:
        where.append(StoredFile.created_at < created_before)
    if ids is not None:
        where.append(StoredFile.id.in_(ids))
    if object_type is not None:
        where.append(StoredFile.object_type == object_type)
    if object_id is not None:
        where.append(StoredFile.object_id == object_id)
    return where


async def list_files(session: AsyncSession, who: Principal, page: PageRequest, where: Iterable[ColumnElement[bool]],
                     object_types: Iterable[str] = PARENTS) -> Page[StoredFile]:
    """Files `who` may read, of parents of `object_types` (those whose read scope the caller holds)."""
    types = list(object_types)
    scoped = StoredFile.object_type.in_(types) if types else false()
    return await keyset_page(session, FILE.readable(who).where(scoped, *where), page, SORTS, StoredFile.id)


async def delete_file(session: AsyncSession, who: Principal, file_id: UUID, expected_version: int | None) -> StoredFile:
    """Soft delete: the file leaves every read at once and can be restored for RESTORE_WINDOW; the uploader,
    the owner of its record, their manager or an admin may delete it."""
    obj = await FILE.get(session, who, file_id, for_update=True)
    check_version(obj.version, expected_version)
    if obj.created_by != who.user_id:
        owner = getattr(await parent(session, who, obj.object_type, obj.object_id), "owner_id", None)
        if owner is not None and not await may_delete(session, who, owner):
            raise Forbidden("Only the uploader, the record's owner, their manager or an admin can delete this file")
    obj.deleted_at = datetime.now(UTC)
    await session.flush()
    await _emit(session, who, obj, "deleted")
    return obj


async def restore(session: AsyncSession, who: Principal, file_id: UUID) -> StoredFile:
    obj = await FILE.get(session, who, file_id, include_deleted=True, for_update=True)
    if obj.deleted_at is None:
        return obj
    if obj.deleted_at < datetime.now(UTC) - RESTORE_WINDOW:
        raise NotFound(f"File not found (deleted more than {RESTORE_WINDOW.days} days ago)")
    obj.deleted_at = None
    await session.flush()
    await _emit(session, who, obj, "restored")
    return obj


# --- rows really gone: their bytes go too ---------------------------------------------------------------


async def remove_rows(session: AsyncSession, org_id: UUID, where: ColumnElement[bool]) -> list[StoredFile]:
    """Delete these rows for good (no event: what removes them says why); -> the removed files, whose bytes the
    caller deletes once the transaction has committed (`forget_bytes`)."""
    return list(await session.scalars(delete(StoredFile).where(StoredFile.org_id == org_id, where)
                                      .returning(StoredFile).execution_options(synchronize_session=False)))


async def forget_bytes(storage: Storage, keys: Iterable[str]) -> None:
    for key in keys:
        await storage.delete(key)


def of_person(contact_id: UUID, lead_ids: list[UUID]) -> ColumnElement[bool]:
    """Files attached to a contact or to one of its leads (GDPR export and erasure)."""
    return or_(and_(StoredFile.object_type == "contact", StoredFile.object_id == contact_id),
               and_(StoredFile.object_type == "lead", StoredFile.object_id.in_(lead_ids)) if lead_ids else false())


async def purge_deleted(session: AsyncSession, before: datetime) -> list[str]:
    """Files deleted before `before` (past the restore window), over every org (the sweep role): their rows
    removed; -> their storage keys, to delete once committed."""
    rows = (await session.execute(delete(StoredFile).where(StoredFile.deleted_at < before)
                                  .returning(StoredFile.org_id, StoredFile.id))).all()
    return [storage_key(org_id, file_id) for org_id, file_id in rows]
