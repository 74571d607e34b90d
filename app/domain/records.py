"""What every sales record shares: reads through the registry's one readable rule (`app.domain.kinds`),
merge-patch writes, the identity rule, soft delete, restore and the event row that goes with each write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from itertools import groupby
from types import SimpleNamespace
from typing import Any, Generic, TypeVar
from uuid import UUID

import orjson
from sqlalchemy import Select, bindparam, exists, or_, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import external_refs, kinds
from app.domain.audit import service as audit
from app.domain.auth.models import Role, User
from app.domain.auth.principal import Principal
from app.domain.catalog import rules as reference_lists
from app.domain.concurrency import check_version
from app.domain.contacts.models import NO_CONSENT
from app.domain.custom_fields import service as custom_fields
from app.domain.errors import Forbidden, NotFound, ValidationFailed
from app.domain.events import service as events
from app.domain.kinds import BOUND, Reader, RecordType, reader_params
from app.domain.normalize import normalize_phone
from app.domain.orgs.models import Org
from app.domain.schemas import ReadModel
from app.domain.teams.models import Team, TeamMember
from app.ids import new_id

M = TypeVar("M")

RESTORE_WINDOW = timedelta(days=30)
DEFERRED = "deferred_creates"


def defer_creates(session: AsyncSession) -> None:
    """Batch mode for bulk writers (imports): `Kind.created` only remembers the record;
    `flush_created` then writes all of them and their `created` events in two statements. A failing flush
    fails the whole batch, so callers run it inside a savepoint and redo the batch row by row."""
    session.info[DEFERRED] = []


async def flush_created(session: AsyncSession, stop: bool = False) -> None:
    """Write the records deferred by `defer_creates`, then their events, in the order they were made;
    `stop` leaves batch mode. The records go in one INSERT … RETURNING per kind (no unit of work: they were
    never added to the session); their events are dumped from what the INSERT returned, server defaults
    included. The session does not hold them: a later read in the same session SELECTs them."""
    pending = session.info.pop(DEFERRED, None) if stop else session.info.get(DEFERRED)
    if not pending:
        return
    if not stop:
        session.info[DEFERRED] = []
    written: dict[int, Any] = {}
    for kind, group in groupby(sorted(enumerate(pending), key=lambda p: p[1][0].object_type),
                               key=lambda p: p[1][0]):
        members = list(group)
        rows = await _insert_returning(session, kind.model, [obj for _, (_, _, obj) in members])
        written.update(zip((i for i, _ in members), rows, strict=True))
    made = [(kind, actor, written[i]) for i, (kind, actor, _) in enumerate(pending)]
    for (actor, org_id), group in groupby(made, key=lambda p: (p[1], p[2].org_id)):
        await events.emit_many(session, actor, org_id, [
            (f"{kind.object_type}.created", kind.object_type, row.id, row.version, {"object": kind.dump(row)})
            for kind, _, row in group])


@lru_cache(maxsize=64)
def _shape(model: type) -> tuple[dict[str, Any], tuple[tuple[str, property], ...], dict[str, Any], dict[str, Any]]:
    """A model's columns by attribute name, its computed properties (e.g. `metrics`), what the ORM would set
    on INSERT that the table does not (the first `version`), and the Python-side defaults of its columns."""
    mapper = sa_inspect(model)
    columns = {prop.key: prop.columns[0] for prop in mapper.column_attrs}
    computed = tuple((name, value) for klass in reversed(model.__mro__) for name, value in vars(klass).items()
                     if isinstance(value, property))
    orm_set = {}
    if mapper.version_id_col is not None and callable(mapper.version_id_generator):
        orm_set[mapper.version_id_col.name] = mapper.version_id_generator(None)
    defaults = {c.name: c.default for c in columns.values()
                if c.default is not None and (c.default.is_scalar or c.default.is_callable)}
    return columns, computed, orm_set, defaults


@lru_cache(maxsize=256)
def _insert_statement(table: Any, keys: tuple[str, ...]) -> Any:
    """INSERT of a JSON array of rows (one parameter: prepared once, any number of rows), every column back."""
    q = postgresql.dialect().identifier_preparer.quote
    given = ", ".join(q(k) for k in keys)
    every = ", ".join(q(c.name) for c in table.columns)
    return text(f"INSERT INTO {q(table.name)} ({given}) SELECT {given} "
                f"FROM jsonb_populate_recordset(NULL::{q(table.name)}, CAST(:rows AS jsonb)) RETURNING {every}")


async def _insert_returning(session: AsyncSession, model: type, objs: list[Any]) -> list[SimpleNamespace]:
    """New records in one INSERT per shape of values, read back as plain objects carrying every column (server
    defaults included) and the model's computed properties: what `Kind.dump` reads, without an ORM object or a
    bound parameter per row. Column defaults are the model's own (Python-side ones applied here)."""
    columns, computed, orm_set, defaults = _shape(model)
    table = model.__table__  # type: ignore[attr-defined]
    by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for obj in objs:
        given = obj if isinstance(obj, dict) else obj.__dict__
        row = {**orm_set, **{columns[k].name: v for k, v in given.items() if k in columns}}
        for key, default in defaults.items():
            if key not in row:
                row[key] = default.arg if default.is_scalar else default.arg(None)
        by_keys.setdefault(tuple(sorted(row)), []).append(row)
    made: dict[Any, SimpleNamespace] = {}
    attribute = {column.name: key for key, column in columns.items()}
    names = [attribute.get(c.name, c.name) for c in table.columns]
    for keys, rows in by_keys.items():
        result = await session.execute(_insert_statement(table, keys), {"rows": _rows_json(rows)})
        for returned in result:
            view = SimpleNamespace(**dict(zip(names, returned, strict=True)))
            for name, prop in computed:
                setattr(view, name, prop.fget(view))  # type: ignore[misc]
            made[view.id] = view
    return [made[obj["id"] if isinstance(obj, dict) else obj.id] for obj in objs]


def _rows_json(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


@lru_cache(maxsize=256)
def _get_statement(record_type: RecordType, include_deleted: bool, for_update: bool) -> Select[Any]:
    """`Kind.get`'s SELECT, built once per shape with bound values: building a statement costs more than
    PostgreSQL takes to answer it."""
    model = record_type.model
    stmt = select(model).where(record_type.readable(BOUND, include_deleted), model.id == bindparam("record_id"))
    return stmt.with_for_update() if for_update else stmt


_AUDIT_ACTIONS = {"created": "create", "updated": "update", "deleted": "delete", "restored": "restore"}


@dataclass(frozen=True)
class Kind(Generic[M]):
    """One kind of record: its table, its name in events and URLs, and how it reads. What it is comes from
    the registry (`app.domain.kinds`); a Kind that says otherwise fails at import."""

    model: type[M]
    object_type: str  # "contact", as in events and custom fields
    label: str  # "Contact", for messages
    read: type[ReadModel]

    def __post_init__(self) -> None:
        t = kinds.BY_TYPE.get(self.object_type)
        if t is None or t.model is not self.model or t.label != self.label or t.read not in (None, self.read):
            raise TypeError(f"record kind {self.object_type!r} differs from its entry in app.domain.kinds")

    @classmethod
    def of(cls, record_type: RecordType) -> Kind[Any]:
        assert record_type.read is not None
        return cls(record_type.model, record_type.object_type, record_type.label, record_type.read)

    @property
    def record_type(self) -> RecordType:
        return kinds.BY_TYPE[self.object_type]

    def dump(self, obj: M) -> dict[str, Any]:
        return self.read.model_validate(obj).model_dump(mode="json")

    def readable(self, who: Reader, include_deleted: bool = False) -> Select[Any]:
        """The records of this kind `who` may read (the registry's one rule), as a SELECT to refine."""
        return select(self.model).where(self.record_type.readable(who, include_deleted))

    scoped = readable  # the same query under its older name

    async def get(self, session: AsyncSession, who: Reader, record_id: UUID, include_deleted: bool = False,
                  for_update: bool = False) -> M:
        """One record `who` may read, else 404 (another org's, a deleted one, one that never was)."""
        obj = await session.scalar(_get_statement(self.record_type, include_deleted, for_update),
                                   {**reader_params(who), "record_id": record_id})
        if obj is None:
            raise NotFound(f"{self.label} not found")
        return obj

    def check_identity(self, obj: M) -> None:
        """The kind's identity rule, on a new record and on the result of every update."""
        message = self.record_type.lacks_identity(obj)
        if message:
            raise ValidationFailed(message, loc=("body",))

    async def created(self, session: AsyncSession, actor: Principal | None, obj: M) -> M:
        self.check_identity(obj)
        pending = session.info.get(DEFERRED)
        if pending is not None and not getattr(obj, "external_ids", None):
            # Batch mode: the INSERT and its event wait for `flush_created` (one statement each per batch).
            if obj.id is None:  # type: ignore[attr-defined]
                obj.id = new_id()  # type: ignore[attr-defined]
            pending.append((self, actor, obj))  # not added to the session: `flush_created` INSERTs it
            return obj
        await flush_created(session)  # earlier deferred records first: events stay in write order
        session.add(obj)
        await session.flush()
        if getattr(obj, "external_ids", None):
            await self._sync_refs(session, obj)
        await self.emit(session, actor, obj, "created")
        return obj

    async def created_values(self, session: AsyncSession, actor: Principal | None, values: dict[str, Any]) -> UUID:
        """`created` for a new record's column values (from a kind's `new_values`); in batch mode they wait for
        `flush_created` as they are, without an ORM object. -> the new record's id."""
        message = self.record_type.lacks_identity(values)
        if message:
            raise ValidationFailed(message, loc=("body",))
        pending = session.info.get(DEFERRED)
        if pending is None or values.get("external_ids"):
            return (await self.created(session, actor, self.model(**values))).id  # type: ignore[attr-defined]
        values = {**values, "id": values.get("id") or new_id()}
        pending.append((self, actor, values))
        return values["id"]

    async def _sync_refs(self, session: AsyncSession, obj: M) -> None:
        if hasattr(obj, "external_ids"):
            await external_refs.sync(session, self.object_type, obj)

    async def updated(self, session: AsyncSession, actor: Principal | None, obj: M, before: dict[str, Any],
                      extra: Iterable[tuple[str, dict[str, Any]]] = ()) -> M:
        """Flush an edit and write `<type>.updated` with the old values of what changed (nothing if nothing did)."""
        self.check_identity(obj)
        await flush_created(session)
        await session.flush()
        after = self.dump(obj)
        previous = changed(before, after)
        if "external_ids" in previous:
            await self._sync_refs(session, obj)
        if previous:
            await self.emit(session, actor, obj, "updated", previous=previous, after=after, extra=extra)
        return obj

    async def emit(self, session: AsyncSession, actor: Principal | None, obj: M, action: str,
                   previous: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
                   extra: Iterable[tuple[str, dict[str, Any]]] = ()) -> None:
        await flush_created(session)
        if not self.record_type.feed or (not self.record_type.lifecycle and action in _AUDIT_ACTIONS):
            # not in the event catalogue (mailboxes; a campaign's edits): the audit log still has it
            changes = {k: [v, (after or {}).get(k)] for k, v in previous.items()} if previous else None
            await audit.record(session, actor, _AUDIT_ACTIONS.get(action, action), self.object_type,
                               obj.id, changes, org_id=obj.org_id)  # type: ignore[attr-defined]
            return
        data: dict[str, Any] = {"object": after or self.dump(obj)}
        if previous is not None:
            data["previous"] = previous
        rows = [(f"{self.object_type}.{action}", self.object_type, obj.id, obj.version, data)]  # type: ignore[attr-defined]
        rows += [(type_, self.object_type, obj.id, obj.version, {"object": data["object"], **payload})  # type: ignore[attr-defined]
                 for type_, payload in extra]
        await events.emit_many(session, actor, obj.org_id, rows)  # type: ignore[attr-defined]

    async def delete(self, session: AsyncSession, actor: Principal, record_id: UUID,
                     expected_version: int | None) -> M:
        obj = await self.get(session, actor, record_id, for_update=True)
        check_version(obj.version, expected_version)  # type: ignore[attr-defined]
        owner = getattr(obj, "owner_id", None)
        if owner is not None and not await may_delete(session, actor, owner):
            raise Forbidden(f"Only the owner, their manager or an admin can delete this {self.label.lower()}")
        obj.deleted_at = datetime.now(UTC)  # type: ignore[attr-defined]
        await session.flush()
        await self.emit(session, actor, obj, "deleted")
        return obj

    async def restore(self, session: AsyncSession, actor: Principal, record_id: UUID) -> M:
        obj = await self.get(session, actor, record_id, include_deleted=True, for_update=True)
        if obj.deleted_at is None:  # type: ignore[attr-defined]
            return obj
        if getattr(obj, "erased_at", None) is not None:  # an erased person's tombstone stays one
            raise NotFound(f"{self.label} not found (its personal data was erased)")
        if obj.deleted_at < datetime.now(UTC) - RESTORE_WINDOW:  # type: ignore[attr-defined]
            raise NotFound(f"{self.label} not found (deleted more than {RESTORE_WINDOW.days} days ago)")
        obj.deleted_at = None  # type: ignore[attr-defined]
        await session.flush()
        await self.emit(session, actor, obj, "restored")
        return obj


async def may_delete(session: AsyncSession, actor: Principal, owner_id: UUID) -> bool:
    """Deleting a record needs its owner, their manager (of one of their teams, or their `manager_id`) or an
    admin; org API keys act for the organisation (their scopes decide)."""
    if kinds.sees_all(actor) or owner_id == actor.user_id:
        return True
    if actor.user_id is None or not actor.role.at_least(Role.manager):
        return False
    manages = or_(
        exists().where(TeamMember.org_id == actor.org_id, TeamMember.user_id == owner_id,
                       Team.org_id == TeamMember.org_id, Team.id == TeamMember.team_id,
                       Team.manager_id == actor.user_id, Team.deleted_at.is_(None)),
        exists().where(User.org_id == actor.org_id, User.id == owner_id, User.manager_id == actor.user_id))
    return bool(await session.scalar(select(manages)))


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Old values of the fields that differ (bookkeeping fields excluded)."""
    skip = {"version", "updated_at"}
    return {k: before.get(k) for k in after if k not in skip and before.get(k) != after.get(k)}


def merge(current: Mapping[str, Any] | None, patch: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """RFC 7396 for one level: keys in `patch` replace, `null` removes. `patch=None` clears the whole object."""
    if patch is None:
        return None
    out = dict(current or {})
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out or None


def memo(session: AsyncSession) -> dict[Any, Any]:
    """Lookups that cannot change within one transaction's work (org settings, field definitions, active
    teammates), remembered for the session so a batch does not repeat them per row."""
    return session.info.setdefault("memo", {})


async def org_settings(session: AsyncSession, org_id: UUID) -> Org:
    org = await session.get(Org, org_id)  # the identity map answers repeats
    assert org is not None
    return org


async def require_user(session: AsyncSession, org_id: UUID, user_id: UUID, field: str,
                       active: bool = True) -> None:
    """A reference to a teammate in a body: must be an (active) user of this org, else 422 naming the field."""
    cache = memo(session)
    if ("user", org_id, user_id) in cache:
        row = cache[("user", org_id, user_id)]
    else:
        row = cache[("user", org_id, user_id)] = await session.scalar(select(User.active).where(
            User.org_id == org_id, User.id == user_id, User.deleted_at.is_(None)))
    if row is None or (active and not row):
        raise ValidationFailed(f"{field} must be an active user of your organisation", loc=("body", field))


async def require_ref(session: AsyncSession, kind: Kind[Any], who: Reader, ref_id: UUID, field: str) -> Any:
    """A reference to another record in a body: must be one `who` may read, else 422."""
    try:
        return await kind.get(session, who, ref_id)
    except NotFound:
        raise ValidationFailed(f"{field}: no such {kind.object_type} in your organisation",
                               loc=("body", field)) from None


PHONE_FIELDS = ("phone",)


async def prepare_values(session: AsyncSession, actor: Principal, object_type: str, changes: dict[str, Any],
                         current: Any | None = None) -> dict[str, Any]:
    """Turn validated input (create body, or the set fields of a merge patch) into column values:
    phones to E.164 in the org's region, the owner checked (default: the caller), custom fields and
    address merged key by key and validated. Raises 422 naming the field."""
    values = dict(changes)
    region = None
    if any(values.get(f) for f in PHONE_FIELDS) or "custom_fields" in values:
        region = (await org_settings(session, actor.org_id)).default_phone_region
    for field in PHONE_FIELDS:
        if values.get(field):
            try:
                values[field] = normalize_phone(values[field], region)
            except ValueError as exc:
                raise ValidationFailed(f"{field}: {exc}", loc=("body", field)) from None
    if current is None:
        values["owner_id"] = values.get("owner_id") or actor.user_id
        if values["owner_id"] is None:
            raise ValidationFailed("owner_id is required for this caller", loc=("body", "owner_id"))
        await require_user(session, actor.org_id, values["owner_id"], "owner_id")
    elif "owner_id" in values:
        if values["owner_id"] is None:
            raise ValidationFailed("owner_id cannot be cleared; set another active user", loc=("body", "owner_id"))
        if values["owner_id"] != current.owner_id:
            await require_user(session, actor.org_id, values["owner_id"], "owner_id")
    if "custom_fields" in values or current is None:
        defs = await custom_fields.definitions(session, actor.org_id, object_type)
        patch = values.get("custom_fields")
        if current is not None and patch is None and "custom_fields" in values:
            patch = {k: None for k in (current.custom_fields or {})}  # custom_fields: null clears them all
        values["custom_fields"] = custom_fields.validate(defs, current.custom_fields if current else None,
                                                         patch or {}, region)
    if "address" in values and current is not None:
        values["address"] = merge(current.address, values["address"])
    elif "address" in values and values["address"] is not None:
        values["address"] = {k: v for k, v in values["address"].items() if v is not None} or None
    if "consent" in values:  # channel by channel; null resets both
        given = {k: v for k, v in (values["consent"] or {}).items() if v is not None}
        base = dict(current.consent or NO_CONSENT) if current is not None and values["consent"] is not None \
            else dict(NO_CONSENT)
        values["consent"] = {**base, **given}
    if values.get("utm") is not None:
        values["utm"] = {k: v for k, v in values["utm"].items() if v is not None} or None
    if "tags" in values and values["tags"] is not None:
        values["tags"] = list(dict.fromkeys(values["tags"]))
    if values.get("industry") or values.get("source"):  # reference lists (`app.domain.catalog.rules`)
        await reference_lists.check_values(session, actor, {f: values.get(f) for f in ("industry", "source")})
    return values


def apply(obj: Any, values: Mapping[str, Any], required: Iterable[str] = ()) -> None:
    """Set column values on a record; clearing a required field is a 422."""
    for key, value in values.items():
        if value is None and key in required:
            raise ValidationFailed(f"{key} cannot be cleared", loc=("body", key))
        if key in ("tags", "external_ids") and value is None:
            value = []
        setattr(obj, key, value)


async def reassign_owner(session: AsyncSession, actor: Principal, kind: Kind[Any], where: Any, from_user: UUID,
                         to_user: UUID, column: str = "owner_id") -> int:
    """Hand matching live records to another teammate in one UPDATE, with an `.updated` event for each."""
    model: Any = kind.model
    rows = (await session.execute(
        update(model).where(kind.record_type.readable(actor.org_id), where)  # the org's live records, whoever asks
        .values({column: to_user, "version": model.version + 1})
        .returning(model).execution_options(synchronize_session=False)
    )).scalars().all()
    await events.emit_many(session, actor, actor.org_id, [
        (f"{kind.object_type}.updated", kind.object_type, r.id, r.version,
         {"object": kind.dump(r), "previous": {column: str(from_user)}})
        for r in rows
    ])
    return len(rows)


def same_person(model: Any, email: str | None, phone: str | None) -> Any:
    """Rows whose email (stored lower-case) or E.164 phone matches; None when there is nothing to match on."""
    conditions = []
    if email:
        conditions.append(model.email == email.lower())
    if phone:
        conditions.append(model.phone == phone)
    return or_(*conditions) if conditions else None
