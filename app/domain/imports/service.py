"""Imports: a file becomes records, deduplicated against itself and the database, in a worker.

Rows stream from the file in batches (app/workers/importer.py); each batch commits with the import's progress
and its events, so a crashed or restarted worker resumes after the last committed batch. Duplicates inside the
file are caught with a table of the keys seen, so memory stays flat however long the file is.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds, records
from app.domain.activities import service as activities
from app.domain.activities.schemas import ActivityCreate, ActivityUpdate
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.companies import service as companies
from app.domain.companies.schemas import CompanyCreate, CompanyUpdate
from app.domain.contacts import service as contacts
from app.domain.contacts.schemas import ContactCreate, ContactUpdate
from app.domain.custom_fields import service as custom_fields
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate, DealUpdate
from app.domain.errors import Conflict, CRMError, NotFound, ValidationFailed
from app.domain.events import service as events
from app.domain.flows.upsert import Writers
from app.domain.imports import reader
from app.domain.imports.models import Import, ImportKey
from app.domain.imports.schemas import ImportRead
from app.domain.leads import service as leads
from app.domain.leads.schemas import LeadCreate, LeadUpdate
from app.domain.normalize import normalize_phone
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, org_settings
from app.domain.schemas import normalize_email
from app.ids import new_id
from app.settings import Settings

BATCH = 500
OBJECTS = tuple(k.plural for k in kinds.having("importable"))


IMPORT = Kind(Import, "import", "Import", ImportRead)
SORTS = {"created_at": Import.created_at}


def writers(object_name: str) -> Any:
    """The record kind's services."""
    return {
        "contacts": Writers(contacts.CONTACT, contacts.create, contacts.update, ContactCreate, ContactUpdate),
        "companies": Writers(companies.COMPANY, companies.create, companies.update, CompanyCreate, CompanyUpdate),
        "leads": Writers(leads.LEAD, leads.create, leads.update, LeadCreate, LeadUpdate),
        "deals": Writers(deals.DEAL, deals.create, deals.update, DealCreate, DealUpdate),
        "activities": Writers(activities.ACTIVITY, activities.create, activities.update, ActivityCreate,
                              ActivityUpdate),
    }[object_name]


def targets(object_name: str) -> set[str]:
    w = writers(object_name)
    return {f for f in w.create_schema.model_fields if f not in ("custom_fields", "external_ids", "utm", "address",
                                                                 "value")}


def file_path(settings: Settings, org_id: UUID, import_id: UUID, suffix: str = "") -> Path:
    return settings.data_dir.resolve() / "imports" / str(org_id) / f"{import_id}{suffix}"


async def preview(session: AsyncSession, org_id: UUID, object_name: str, path: Path, filename: str) -> dict[str, Any]:
    sheet, headers, sample = await asyncio.to_thread(_sample, path, filename)
    defs = await custom_fields.definitions(session, org_id, kinds.BY_PLURAL[object_name].object_type)
    return {"format": sheet.format, "encoding": sheet.encoding, "delimiter": sheet.delimiter, "headers": headers,
            "sample": sample, "suggested_mapping": reader.suggest_mapping(
                headers, targets(object_name), {k: f.label for k, f in defs.items()})}


def _sample(path: Path, filename: str) -> tuple[reader.Sheet, list[str], list[list[str]]]:
    sheet = reader.sniff(path, filename)
    return (sheet, *reader.decode_sample(path, sheet))


def object_type(object_name: str) -> str:
    return {"contacts": "contact", "companies": "company", "leads": "lead", "deals": "deal",
            "activities": "activity"}[object_name]


def store_upload(settings: Settings, upload: BinaryIO) -> Path:
    """Copy an upload into the data dir (blocking: run it in a thread, before the request's transaction
    starts) -> where it waits to become an import."""
    incoming = settings.data_dir.resolve() / "imports" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    path = incoming / str(new_id())
    with path.open("wb") as out:
        shutil.copyfileobj(upload, out, 1024 * 1024)
    return path


async def create(session: AsyncSession, settings: Settings, actor: Principal, stored: Path, filename: str,
                 object_name: str, mapping: dict[str, str] | None, dedupe_by: str, external_source: str | None,
                 on_duplicate: str, dry_run: bool) -> Import:
    """Queue an import of a file that `store_upload` put in the data dir (moved, not copied, into place)."""
    if actor.user_id is None:
        raise ValidationFailed("imports are made on behalf of a user")
    if dedupe_by == "external_id" and not external_source:
        raise ValidationFailed("dedupe_by=external_id needs external_source", loc=("body", "external_source"))
    import_id = new_id()
    sheet, headers, size = await asyncio.to_thread(_inspect, stored, filename)
    record = await _register(session, actor, import_id, sheet, headers, size, filename, object_name, mapping,
                             dedupe_by, external_source, on_duplicate, dry_run)
    await asyncio.to_thread(_move, stored, file_path(settings, actor.org_id, import_id))
    session.info.setdefault("import_ids", []).append((record.org_id, record.id))
    return record


def _move(stored: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.replace(path)  # a rename: the upload is in the same data dir


def _inspect(path: Path, filename: str) -> tuple[reader.Sheet, list[str], int]:
    sheet = reader.sniff(path, filename)
    headers, _ = reader.decode_sample(path, sheet, 0)
    return sheet, headers, path.stat().st_size


async def _register(session: AsyncSession, actor: Principal, import_id: UUID, sheet: reader.Sheet,
                    headers: list[str], size: int, filename: str, object_name: str, mapping: dict[str, str] | None,
                    dedupe_by: str, external_source: str | None, on_duplicate: str, dry_run: bool) -> Import:
    if not headers or not any(h.strip() for h in headers):
        raise ValidationFailed("the file has no header row", loc=("body", "file"))
    if mapping is None:
        defs = await custom_fields.definitions(session, actor.org_id, object_type(object_name))
        mapping = reader.suggest_mapping(headers, targets(object_name), {k: f.label for k, f in defs.items()})
    unknown = [h for h in mapping if h not in headers]
    if unknown:
        raise ValidationFailed(f"mapping names columns the file does not have: {', '.join(unknown[:5])}",
                               loc=("body", "mapping"))
    allowed = targets(object_name) | {"external_id", "tags"}
    bad = [t for t in mapping.values() if t not in allowed and not re.fullmatch(r"cf\.[a-z][a-z0-9_]*", t)]
    if bad:
        raise ValidationFailed(f"cannot map to {', '.join(bad[:5])}", loc=("body", "mapping"))
    if dedupe_by == "external_id" and "external_id" not in mapping.values():
        raise ValidationFailed("dedupe_by=external_id needs a column mapped to external_id", loc=("body", "mapping"))
    record = Import(org_id=actor.org_id, id=import_id, object=object_name, status="queued", filename=filename[:300],
                    file_format=sheet.format, size_bytes=size, mapping=mapping, dedupe_by=dedupe_by,
                    external_source=external_source, on_duplicate=on_duplicate, dry_run=dry_run,
                    encoding=sheet.encoding, delimiter=sheet.delimiter, created_by=actor.user_id)
    return await IMPORT.created(session, actor, record)


def committed_import_ids(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    return session.info.pop("import_ids", [])


async def unfinished(session: AsyncSession, older_than_seconds: float) -> list[tuple[UUID, UUID]]:
    """Queued imports nobody started, and running ones whose worker's lease ran out."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    now = datetime.now(UTC)
    rows = await session.execute(select(Import.org_id, Import.id).where(
        Import.status.in_(("queued", "running")), Import.created_at <= cutoff,
        (Import.leased_until.is_(None)) | (Import.leased_until < now)).order_by(Import.created_at).limit(100))
    return [(r.org_id, r.id) for r in rows]


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest) -> Page[Import]:
    return await keyset_page(session, IMPORT.scoped(org_id), page, SORTS, Import.id)


async def cancel(session: AsyncSession, actor: Principal, import_id: UUID) -> Import:
    record = await IMPORT.get(session, actor.org_id, import_id, for_update=True)
    if record.status in ("queued", "running"):
        before = IMPORT.dump(record)
        record.status, record.finished_at = "cancelled", datetime.now(UTC)
        await IMPORT.updated(session, actor, record, before)
    return record


# --- the job ------------------------------------------------------------------------------------------


@dataclass
class Counts:
    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0


def _split_tags(value: str) -> list[str]:
    return [t.strip() for t in re.split(r"[,;|]", value) if t.strip()][:50]


def _coerce_custom(field_type: str, value: str) -> Any:
    if field_type == "number":
        try:
            return int(value) if re.fullmatch(r"-?\d+", value) else float(value.replace(",", "."))
        except ValueError:
            return value
    if field_type == "boolean":
        lowered = value.strip().lower()
        return lowered in ("true", "yes", "1", "y", "ja", "x") if lowered in (
            "true", "yes", "1", "y", "ja", "x", "false", "no", "0", "n", "nein", "") else value
    if field_type == "multiselect":
        return _split_tags(value)
    return value


def parse_row(mapping_idx: list[tuple[int, str, str]], row: list[str], defs: dict[str, Any]) -> tuple[dict, str | None]:
    """-> (field values, external id) from one row's cells; empty cells are left out."""
    values: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    external = None
    for index, _header, target in mapping_idx:
        cell = row[index].strip() if index < len(row) else ""
        if not cell:
            continue
        if target == "external_id":
            external = cell[:200]
        elif target == "tags":
            values["tags"] = _split_tags(cell)
        elif target.startswith("cf."):
            key = target[3:]
            field = defs.get(key)
            custom[key] = _coerce_custom(field.type, cell) if field else cell
        else:
            values[target] = cell
    if custom:
        values["custom_fields"] = custom
    return values, external


def dedupe_key(values: dict[str, Any], external: str | None, dedupe_by: str, region: str | None) -> str | None:
    try:
        if dedupe_by == "email" and values.get("email"):
            return "e:" + normalize_email(values["email"])
        if dedupe_by == "phone" and values.get("phone"):
            return "p:" + normalize_phone(values["phone"], region)
    except ValueError:
        return None
    if dedupe_by == "external_id" and external:
        return "x:" + external
    return None


# A batch's keys against the live records, in one statement per key type: each key is looked up through the
# (org_id, email|phone) index whatever the planner believes of the table's size (right after a big import,
# its statistics still say "empty", and a filter over the org's rows grew with every batch).
_BY_COLUMN = """
SELECT k.value, r.id FROM unnest(CAST(:values AS text[])) AS k(value)
CROSS JOIN LATERAL (SELECT id FROM {table} WHERE org_id = CAST(:org_id AS uuid) AND {column} = k.value AND deleted_at IS NULL
                    LIMIT 1) AS r"""
_BY_EXTERNAL_ID = text("""
SELECT k.value, r.record_id FROM unnest(CAST(:values AS text[])) AS k(value)
JOIN external_refs AS r ON r.org_id = CAST(:org_id AS uuid) AND r.object_type = :object_type AND r.source = :source
                       AND r.external_id = k.value""")


@lru_cache(maxsize=32)
def _by_column(table: str, column: str) -> Any:
    return text(_BY_COLUMN.format(table=table, column=column))


async def _existing(session: AsyncSession, org_id: UUID, kind: Kind[Any], keys: list[str],
                    source: str | None) -> dict[str, UUID]:
    model: Any = kind.model
    table = model.__table__.name
    found: dict[str, UUID] = {}
    emails = list(dict.fromkeys(k[2:] for k in keys if k.startswith("e:")))
    phones = list(dict.fromkeys(k[2:] for k in keys if k.startswith("p:")))
    externals = list(dict.fromkeys(k[2:] for k in keys if k.startswith("x:")))
    if emails and hasattr(model, "email"):
        for email, rid in await session.execute(_by_column(table, "email"), {"values": emails, "org_id": org_id}):
            found.setdefault("e:" + email, rid)
    if phones and hasattr(model, "phone"):
        for phone, rid in await session.execute(_by_column(table, "phone"), {"values": phones, "org_id": org_id}):
            found.setdefault("p:" + phone, rid)
    if externals and source:
        for ext, rid in await session.execute(_BY_EXTERNAL_ID, {
                "values": externals, "org_id": org_id, "object_type": kind.object_type, "source": source}):
            found["x:" + ext] = rid
    return found


def _errors_of(exc: Exception, header_of: dict[str, str]) -> list[tuple[str, str]]:
    if isinstance(exc, ValidationError):
        return [(header_of.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"] else "", e["msg"]) for e in exc.errors()]
    if isinstance(exc, ValidationFailed):
        return [(_column(tuple(e["loc"]), header_of), e["msg"]) for e in exc.errors]
    assert isinstance(exc, CRMError)
    return [("", exc.detail)]


def _column(loc: tuple[Any, ...], header_of: dict[str, str]) -> str:
    """("body", "custom_fields", "seats") -> the column mapped to cf.seats; ("body", "phone") -> to phone."""
    if len(loc) > 2 and loc[1] == "custom_fields":
        return header_of.get(f"cf.{loc[2]}", "")
    return header_of.get(str(loc[1]), "") if len(loc) > 1 else ""


# --- the rules of one batch (the worker, app/workers/importer.py, runs the slices and holds the lease) -----


def start(record: Import) -> dict[str, Any]:
    """The import a worker now holds is running. -> its snapshot for the batches."""
    record.status, record.started_at = "running", record.started_at or datetime.now(UTC)
    return IMPORT.dump(record)


async def set_total(session: AsyncSession, org_id: UUID, import_id: UUID, total: int) -> None:
    await session.execute(update(Import).where(Import.org_id == org_id, Import.id == import_id).values(total=total))


@dataclass(frozen=True)
class Plan:
    """What every batch of one import needs: its snapshot, the writers of its record kind, the creator as the
    actor, and the mapping resolved against the file's header row."""

    snap: dict[str, Any]
    writers: Any
    actor: Principal
    mapping_idx: list[tuple[int, str, str]]
    header_of: dict[str, str]

    @property
    def org_id(self) -> UUID:
        return self.actor.org_id

    @property
    def import_id(self) -> UUID:
        return UUID(self.snap["id"])

    def counts(self) -> Counts:
        return Counts(**{k: self.snap[k] for k in ("processed", "created", "updated", "skipped", "failed")})


def plan(org_id: UUID, snap: dict[str, Any], header: list[str]) -> Plan:
    creator = UUID(snap["created_by"])
    mapping_idx = [(header.index(h), h, t) for h, t in snap["mapping"].items() if h in header]
    return Plan(snap, writers(snap["object"]), Principal(org_id, "user", creator, _role_member(), frozenset(["*"]),
                                                         creator),
                mapping_idx, {t: h for _, h, t in mapping_idx})


async def apply_batch(session: AsyncSession, plan: Plan, batch: list[list[str]], first_line: int,
                      counts: Counts) -> list[tuple[int, str, str]] | None:
    """Write one batch of rows with the import's progress. -> the failed rows (line, column, reason), or None
    when the import was cancelled (nothing written)."""
    status = await session.scalar(select(Import.status).where(Import.org_id == plan.org_id,
                                                              Import.id == plan.import_id))
    if status == "cancelled":
        return None
    failures = await _batch(session, plan.writers, plan.actor, plan.snap, plan.mapping_idx, plan.header_of, batch,
                            first_line, counts)
    await session.execute(update(Import).where(Import.org_id == plan.org_id, Import.id == plan.import_id)
                          .values(**counts.__dict__))
    return failures


async def finish(session: AsyncSession, org_id: UUID, import_id: UUID) -> None:
    """Every row is done: forget the dedupe keys; a running import succeeds (`import.finished`)."""
    record = await session.scalar(select(Import).where(Import.org_id == org_id, Import.id == import_id)
                                  .with_for_update())
    await session.execute(delete(ImportKey).where(ImportKey.org_id == org_id, ImportKey.import_id == import_id))
    if record.status == "running":
        before = IMPORT.dump(record)
        record.status, record.finished_at = "succeeded", datetime.now(UTC)
        await IMPORT.updated(session, None, record, before)
        await events.emit(session, None, "import.finished", "import", record.id, org_id,
                          {"object": IMPORT.dump(record)}, record.version)


async def fail(session: AsyncSession, org_id: UUID, import_id: UUID, error: str) -> None:
    """The import fails visibly instead of being retried forever."""
    await session.execute(update(Import).where(Import.org_id == org_id, Import.id == import_id).values(
        status="failed", error=error[:500], finished_at=datetime.now(UTC), leased_until=None))


def _role_member() -> Any:
    return Role.member


_REMEMBER = text("""
INSERT INTO import_keys (org_id, import_id, key)
SELECT CAST(:org_id AS uuid), CAST(:import_id AS uuid), k FROM unnest(CAST(:keys AS text[])) AS k
ON CONFLICT DO NOTHING RETURNING key""")


async def _remember(session: AsyncSession, org_id: UUID, import_id: UUID, keys: list[str | None]) -> set[str]:
    """Record the batch's dedupe keys for this import; -> the ones not seen before (earlier in the file).
    One statement with one array parameter: prepared once, whatever the batch's size."""
    keys = list(dict.fromkeys(k for k in keys if k))
    if not keys:
        return set()
    result = await session.execute(_REMEMBER, {"org_id": org_id, "import_id": import_id, "keys": keys})
    return {r[0] for r in result}


# Kinds whose create is "validate, then add one row": a batch of them is written in one INSERT and one
# INSERT of events. The others (deals add stage history, activities touch their parents) go row by row.
BATCHED_KINDS = ("contact", "company", "lead")


async def _batch(session: AsyncSession, w: Any, actor: Principal, snap: dict[str, Any],
                 mapping_idx: list[tuple[int, str, str]], header_of: dict[str, str], batch: list[list[str]],
                 first_line: int, counts: Counts) -> list[tuple[int, str, str]]:
    org = await org_settings(session, actor.org_id)
    defs = await custom_fields.definitions(session, actor.org_id, w.kind.object_type)
    parsed = [parse_row(mapping_idx, row, defs) for row in batch]
    keys = [dedupe_key(values, ext, snap["dedupe_by"], org.default_phone_region) for values, ext in parsed]
    fresh = await _remember(session, actor.org_id, UUID(snap["id"]), keys)
    existing = await _existing(session, actor.org_id, w.kind, [k for k in keys if k], snap["external_source"])
    rows = list(zip(parsed, keys, strict=True))
    if not snap["dry_run"] and w.kind.object_type in BATCHED_KINDS:
        before = Counts(**counts.__dict__)
        try:
            async with session.begin_nested():
                records.defer_creates(session)
                try:
                    failures = await _rows(session, w, actor, snap, header_of, rows, first_line, counts, existing,
                                           fresh, each_in_savepoint=False)
                    await records.flush_created(session, stop=True)
                finally:
                    session.info.pop(records.DEFERRED, None)
            return failures
        except DBAPIError:  # the database refused a row: redo the batch row by row to find it
            counts.__dict__.update(before.__dict__)
    return await _rows(session, w, actor, snap, header_of, rows, first_line, counts, existing, fresh,
                       each_in_savepoint=True)


async def _rows(session: AsyncSession, w: Any, actor: Principal, snap: dict[str, Any], header_of: dict[str, str],
                rows: list[tuple[tuple[dict, str | None], str | None]], first_line: int, counts: Counts,
                existing: dict[str, UUID], fresh: set[str], each_in_savepoint: bool) -> list[tuple[int, str, str]]:
    """Create or update each row. A failing row changes nothing: it runs in its own savepoint, except batched
    creates, which validate everything before they add their one row."""
    made_here: dict[str, UUID | None] = {}
    failures: list[tuple[int, str, str]] = []
    source = snap["external_source"]
    for offset, ((values, external), key) in enumerate(rows):
        line = first_line + offset + 1  # +1: the header is line 1
        counts.processed += 1
        if not values and not external:
            counts.skipped += 1
            continue
        if external and source:
            values["external_ids"] = [{"source": source, "id": external}]
        target = (existing.get(key) or made_here.get(key)) if key else None
        duplicate = key is not None and (target is not None or key in made_here or key not in fresh)
        if duplicate and snap["on_duplicate"] == "skip":
            counts.skipped += 1
            continue
        if duplicate and target is not None:  # the records waiting for the batch's INSERT first: it may be one
            await records.flush_created(session)  # of them, and a failing update's savepoint keeps them
        try:
            savepoint = await session.begin_nested() if each_in_savepoint or duplicate else None
            try:
                if duplicate and target is not None:
                    await w.update(session, actor, target, w.update_schema.model_validate(values), None)
                    counts.updated += 1
                elif duplicate:  # a repeat of an earlier row in a dry run: it would update that one
                    w.update_schema.model_validate(values)
                    counts.updated += 1
                else:
                    made = await _create(session, actor, w, values, UUID(snap["id"]))
                    counts.created += 1
                    if key:  # a dry run rolls the record back: later repeats only validate
                        made_here[key] = None if snap["dry_run"] else made
                if savepoint is not None:
                    await (savepoint.rollback() if snap["dry_run"] else savepoint.commit())
            except BaseException:
                if savepoint is not None:
                    await savepoint.rollback()
                raise
        except (CRMError, ValidationError, Conflict) as exc:
            counts.failed += 1
            failures += [(line, column, reason) for column, reason in _errors_of(exc, header_of)]
        except DBAPIError as exc:
            if savepoint is None:  # a batched row: the caller redoes the batch row by row
                raise
            counts.failed += 1  # rolled back to the row's savepoint: the rest of the batch goes on
            failures.append((line, "", _refusal(exc)))
    return failures


def _refusal(exc: DBAPIError) -> str:
    """Why PostgreSQL refused a row, by constraint name or SQLSTATE; never the SQL or the values."""
    cause = getattr(exc.orig, "__cause__", None)
    what = getattr(cause, "constraint_name", None) or getattr(exc.orig, "sqlstate", None) or type(cause).__name__
    return f"the database refused this row ({what})"


async def _create(session: AsyncSession, actor: Principal, w: Any, values: dict[str, Any], import_id: UUID) -> UUID:
    """-> the new record's id. Contacts, companies and leads go as column values (no ORM object), written with the
    rest of the batch by `records.flush_created`."""
    body = w.create_schema.model_validate(values)
    if w.kind.object_type in NEW_VALUES:
        new = NEW_VALUES[w.kind.object_type]
        if w.kind.object_type == "company":
            fields = await new(session, actor, body, import_id=import_id)
        else:
            fields = await new(session, actor, {**body.model_dump(mode="python"), "import_id": import_id})
        return await w.kind.created_values(session, actor, fields)
    data = {**body.model_dump(mode="python"), "import_id": import_id}
    if w.kind.object_type == "activity":
        return (await w.create(session, actor, data)).id
    return (await w.create(session, actor, body, import_id=import_id)).id


NEW_VALUES = {"contact": contacts.new_values, "company": companies.new_values, "lead": leads.new_values}


async def get(session: AsyncSession, org_id: UUID, import_id: UUID) -> Import:
    try:
        return await IMPORT.get(session, org_id, import_id)
    except NotFound:
        raise NotFound("Import not found") from None
