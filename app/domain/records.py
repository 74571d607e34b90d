"""What every sales record shares: reads through the registry's one readable rule (`app.domain.kinds`),
merge-patch writes, the identity rule, soft delete, restore and the event row that goes with each write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import cache, lru_cache
from itertools import groupby
from types import SimpleNamespace
from typing import Any, Generic, TypeVar
from uuid import UUID

import orjson
from sqlalchemy import ARRAY, Select, String, bindparam, exists, func, or_, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from app.domain import external_refs, kinds
from app.domain.audit import service as audit
from app.domain.auth.models import Role, User
from app.domain.auth.principal import Principal
from app.domain.catalog import rules as reference_lists
from app.domain.concurrency import check_version
from app.domain.contacts.models import NO_CONSENT
from app.domain.custom_fields import service as custom_fields
from app.domain.custom_fields.models import CustomField
from app.domain.errors import Forbidden, NotFound, ValidationFailed
from app.domain.events import service as events
from app.domain.kinds import BOUND, Reader, RecordType, org_of, reader_params
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


_DUMPED = "_dumped_at_create"
HELD = "held_inserts"


def hold_inserts(session: AsyncSession) -> None:
    """Until `write_held`: new records that `Kind.created` writes in one statement wait, to be written together
    with the caller's own rows in one round trip. Nothing may read them meanwhile (`require_ref` knows them)."""
    session.info[HELD] = ([], [])


async def flush_held(session: AsyncSession) -> None:
    """Write what is held now (something is about to read or reference it), and go on holding."""
    held = session.info.get(HELD)
    if held is not None and held[0]:
        session.info[HELD] = ([], [])
        await events.write_with_records(session, held[1][0][0][0]["org_id"], held[0], held[1])


async def write_held(session: AsyncSession, org_id: UUID, records: list[tuple[str, tuple[str, ...], dict[str, Any]]],
                     prepared: list[Any]) -> None:
    """Write the held records and their events, then `records` and the events `prepared` (by
    `events.prepare`), in one statement; leaves hold mode."""
    held_records, held_events = session.info.pop(HELD)
    await events.write_with_records(session, org_id, held_records + records, held_events + prepared)


def row_of(model: Any, obj: Any) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """(table, columns, values) of a new row (for `write_held`): columns left unset on `obj` take their Python
    default (or None), set on `obj` too. For tables without server-side values (timestamps, versions)."""
    columns, defaults = _insertable(model)  # type: ignore[misc]
    state = obj.__dict__
    for _, key, default in defaults:
        if key not in state:
            setattr(obj, key, default(None) if default is not None else None)
    return model.__tablename__, columns, {name: getattr(obj, key) for name, key, _ in defaults}


_NOT_NULL: dict[Any, frozenset[str]] = {}
_TIMESTAMPS = ("created_at", "updated_at")


@cache
def _insertable(model: Any) -> tuple[tuple[str, ...], tuple[tuple[str, str, Any], ...]] | None:
    """For `Kind._insert`: the columns to write and, per column, (column, attribute, Python default); None when
    some column's value would only be known after the INSERT (a server default other than the timestamps, a
    sequence, a relationship to cascade), which keeps the kind on the ORM's flush."""
    from sqlalchemy import inspect as inspect_model

    mapper = inspect_model(model)
    if mapper.relationships:
        return None
    columns, defaults, not_null = [], [], set()
    for col in mapper.local_table.columns:
        if col.computed is not None:
            continue
        key = mapper.get_property_by_column(col).key
        default = col.default
        if default is not None and not (default.is_scalar or default.is_callable):
            return None
        if col.server_default is not None and default is None and col.name not in _TIMESTAMPS:
            return None
        if default is not None and default.is_scalar:
            value = default.arg
            default_fn: Any = (lambda v: (lambda _: v))(value)
        else:
            default_fn = default.arg if default is not None else None
        if col.name in _TIMESTAMPS or col.name == "version":
            default_fn = lambda _: None  # noqa: E731 - set from the transaction (see `_insert`)
        if not col.nullable:
            not_null.add(col.name)
        columns.append(col.name)
        defaults.append((col.name, key, default_fn))
    _NOT_NULL[model] = frozenset(not_null)
    return tuple(columns), tuple(defaults)


def prime_columns() -> list[Any]:
    """What `prime` reads, as columns to add to a statement (`prime`'s own, or another read of the request's),
    with bound values: `prime_params` gives them. Build the statement once (building costs more than running)."""
    org_id = bindparam("prime_org_id", type_=PGUUID(as_uuid=True))
    owner_id = bindparam("prime_owner_id", type_=PGUUID(as_uuid=True))
    object_types = bindparam("prime_objects", type_=ARRAY(String), expanding=False)
    fields = func.jsonb_agg(aggregate_order_by(func.jsonb_build_object(
        "object", CustomField.object, "id", CustomField.id, "key", CustomField.key, "label", CustomField.label,
        "type", CustomField.type, "options", func.to_jsonb(CustomField.options), "required", CustomField.required,
        "position", CustomField.position), CustomField.position, CustomField.key))
    return [
        func.now().label("prime_now"),
        select(Org.default_phone_region).where(Org.id == org_id).scalar_subquery().label("prime_region"),
        select(User.active).where(User.org_id == org_id, User.id == owner_id, User.deleted_at.is_(None))
        .scalar_subquery().label("prime_owner_active"),
        select(fields).where(CustomField.org_id == org_id, CustomField.object == func.any(object_types),
                             CustomField.deleted_at.is_(None)).scalar_subquery().label("prime_fields"),
    ]


def prime_params(org_id: UUID, owner_id: UUID | None, object_types: Iterable[str]) -> dict[str, Any]:
    return {"prime_org_id": org_id, "prime_owner_id": owner_id, "prime_objects": list(object_types)}


_PRIME = select(*prime_columns())


def transaction_now(session: AsyncSession) -> datetime | None:
    """The transaction's `now()` (what a `server_default=func.now()` writes), when `prime` read it in this
    transaction."""
    found = session.info.get("transaction_now")
    if found is None or found[0] is not session.sync_session.get_transaction():
        return None
    return found[1]  # type: ignore[no-any-return]


async def prime(session: AsyncSession, org_id: UUID, owner_id: UUID | None, *object_types: str) -> None:
    """What `prepare_values` reads to create a record, in one statement instead of three: the org's phone
    region, whether the owner is an active user, the kinds' custom field definitions, and the transaction's
    `now()` (the new row's timestamps). Kept in the session's memo like each single lookup."""
    row = (await session.execute(_PRIME, prime_params(org_id, owner_id, object_types))).one()
    apply_prime(session, org_id, owner_id, object_types, row)


def apply_prime(session: AsyncSession, org_id: UUID, owner_id: UUID | None, object_types: Iterable[str],
                row: Any) -> None:
    """Remember what `prime_columns` read (in `row`) in the session's memo."""
    cache = memo(session)
    session.info["transaction_now"] = (session.sync_session.get_transaction(), row.prime_now)
    cache[("region", org_id)] = row.prime_region
    if owner_id is not None:
        cache[("user", org_id, owner_id)] = row.prime_owner_active
    fields = row.prime_fields or []
    for object_type in object_types:
        cache[("custom_fields", org_id, object_type)] = {
            f["key"]: CustomField(id=UUID(f["id"]), org_id=org_id, object=object_type, key=f["key"],
                                  label=f["label"], type=f["type"], options=f["options"] or [],
                                  required=f["required"], position=f["position"])
            for f in fields if f["object"] == object_type}


async def phone_region(session: AsyncSession, org_id: UUID) -> str | None:
    cache = memo(session)
    if ("region", org_id) not in cache:
        cache[("region", org_id)] = (await org_settings(session, org_id)).default_phone_region
    return cache[("region", org_id)]  # type: ignore[no-any-return]


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
        now = transaction_now(session)
        # (not inside a savepoint: rolling one back would leave the object in the session without its row)
        if now is not None and not session.in_nested_transaction() and self.record_type.feed \
                and self.record_type.lifecycle \
                and not getattr(obj, "external_ids", None) and _insertable(self.model) is not None:
            await self._insert(session, actor, obj, now)
            return obj
        await flush_held(session)
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

    async def _insert(self, session: AsyncSession, actor: Principal | None, obj: M, now: datetime) -> None:
        """One statement for the new row, its `created` event and the event's audit row: every column's value
        is known here (Python defaults, the transaction's `now()` for the timestamps, version 1), so the
        event's payload and the response are dumped once, before the INSERT, with nothing to read back. The
        object then joins the session as a loaded (persistent) one, as a flush would have left it. Between
        `hold_inserts` and `write_held` the statement waits, to go with the others held (one round trip)."""
        columns, defaults = _insertable(self.model)  # type: ignore[misc]
        state = obj.__dict__
        row: dict[str, Any] = {}
        not_null = _NOT_NULL[self.model]
        for name, key, default in defaults:
            if key not in state or (state[key] is None and default is not None and name in not_null):
                value = default(None) if default is not None else None
                if name in _TIMESTAMPS:
                    value = now
                elif name == "version":
                    value = 1
                setattr(obj, key, value)
            row[name] = getattr(obj, key)
        data = self.dump(obj)
        org_id = obj.org_id  # type: ignore[attr-defined]
        prepared = events.prepare(actor, org_id, [(f"{self.object_type}.created", self.object_type,
                                                   obj.id, obj.version, {"object": data})])  # type: ignore[attr-defined]
        record = (self.model.__tablename__, columns, row)  # type: ignore[attr-defined]
        held = session.info.get(HELD)
        if held is not None:
            held[0].append(record)
            held[1].append(prepared)
        else:
            await events.write_with_records(session, org_id, [record], [prepared])
        make_transient_to_detached(obj)
        session.add(obj)
        obj.__dict__[_DUMPED] = data
        memo(session)[("created", self.object_type, obj.id)] = obj  # type: ignore[attr-defined]

    def created_dump(self, session: AsyncSession, obj: M) -> dict[str, Any]:
        """The read model of a record `created` just wrote: the dump its event carries, unless it changed since."""
        data = obj.__dict__.pop(_DUMPED, None)
        if data is None or session.is_modified(obj) or data.get("version") != getattr(obj, "version", None):
            return self.dump(obj)
        return data

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
    created = memo(session).get(("created", kind.object_type, ref_id))
    if created is not None and created.org_id == org_of(who) and kind.record_type.visible is None \
            and getattr(created, "deleted_at", None) is None \
            and (kinds.sees_all(who) or getattr(created, "owner_id", None) == getattr(who, "user_id", None)):
        return created  # written by this transaction just now (perhaps not yet sent: `hold_inserts`), live
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
    if current is None and ("custom_fields", actor.org_id, object_type) not in memo(session):
        await prime(session, actor.org_id, values.get("owner_id") or actor.user_id, object_type)
    if any(values.get(f) for f in PHONE_FIELDS) or "custom_fields" in values:
        region = await phone_region(session, actor.org_id)
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
