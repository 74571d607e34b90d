"""Custom field definitions, and the validation of values on every write (422 names the field)."""

from __future__ import annotations

import math
from datetime import date
from typing import Any
from uuid import UUID

from pydantic import AnyHttpUrl, TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import cast

from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.custom_fields.models import CustomField
from app.domain.custom_fields.schemas import CustomFieldCreate, CustomFieldUpdate
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.domain.normalize import normalize_phone
from app.domain.schemas import BIGINT_MAX, BIGINT_MIN, normalize_email

_URL = TypeAdapter(AnyHttpUrl)
MAX_TEXT = 10_000


async def definitions(session: AsyncSession, org_id: UUID, object_name: str) -> dict[str, CustomField]:
    cache = session.info.setdefault("memo", {})
    key = ("custom_fields", org_id, object_name)
    if key not in cache:
        cache[key] = await _definitions(session, org_id, object_name)
    return cache[key]


def forget_definitions(session: AsyncSession) -> None:
    session.info.get("memo", {}).clear()


async def _definitions(session: AsyncSession, org_id: UUID, object_name: str) -> dict[str, CustomField]:
    rows = await session.scalars(
        select(CustomField).where(CustomField.org_id == org_id, CustomField.object == object_name,
                                  CustomField.deleted_at.is_(None)).order_by(CustomField.position, CustomField.key)
    )
    return {f.key: f for f in rows}


async def list_all(session: AsyncSession, org_id: UUID, object_name: str | None) -> list[CustomField]:
    stmt = select(CustomField).where(CustomField.org_id == org_id, CustomField.deleted_at.is_(None))
    if object_name:
        stmt = stmt.where(CustomField.object == object_name)
    return list(await session.scalars(stmt.order_by(CustomField.object, CustomField.position, CustomField.key)))


async def get(session: AsyncSession, org_id: UUID, field_id: UUID) -> CustomField:
    field = await session.scalar(select(CustomField).where(
        CustomField.org_id == org_id, CustomField.id == field_id, CustomField.deleted_at.is_(None)))
    if field is None:
        raise NotFound("Custom field not found")
    return field


async def create(session: AsyncSession, actor: Principal, body: CustomFieldCreate) -> CustomField:
    existing = await definitions(session, actor.org_id, body.object)
    if body.key in existing:
        raise Conflict(f"{body.object} already has a custom field {body.key!r}", field="key")
    field = CustomField(org_id=actor.org_id, **body.model_dump())
    session.add(field)
    await session.flush()
    forget_definitions(session)
    return field


async def update(session: AsyncSession, actor: Principal, field_id: UUID, patch: CustomFieldUpdate,
                 expected_version: int | None) -> CustomField:
    field = await get(session, actor.org_id, field_id)
    check_version(field.version, expected_version)
    changes = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None}
    if "options" in changes:
        if field.type not in ("select", "multiselect"):
            raise ValidationFailed("only select and multiselect fields take options", loc=("body", "options"))
        if not changes["options"] or len(set(changes["options"])) != len(changes["options"]):
            raise ValidationFailed("options must be unique and not empty", loc=("body", "options"))
    for key, value in changes.items():
        setattr(field, key, value)
    await session.flush()
    forget_definitions(session)
    return field


async def delete(session: AsyncSession, actor: Principal, field_id: UUID, expected_version: int | None) -> None:
    """The definition goes; stored values stay in records' JSON but are no longer validated or shown in schema."""
    from datetime import UTC, datetime

    field = await get(session, actor.org_id, field_id)
    check_version(field.version, expected_version)
    field.deleted_at = datetime.now(UTC)
    field.key = f"{field.key}__deleted_{field.id.hex[:8]}"[:64]  # frees the key for a new definition
    await session.flush()
    forget_definitions(session)


def _number(value: Any) -> int | float:
    """A JSON number that PostgreSQL, JSON clients and the reports can all hold: a bigint or a finite float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if isinstance(value, int) and not BIGINT_MIN <= value <= BIGINT_MAX:
        raise ValueError(f"must be an integer between {BIGINT_MIN} and {BIGINT_MAX} (or a decimal number)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _coerce(field: CustomField, value: Any, region: str | None) -> Any:
    t = field.type
    if t == "text":
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ValueError(f"must be text of at most {MAX_TEXT} characters")
        return value
    if t == "number":
        return _number(value)
    if t == "boolean":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if t == "date":
        if not isinstance(value, str):
            raise ValueError("must be a date YYYY-MM-DD")
        return date.fromisoformat(value).isoformat()
    if t == "select":
        if value not in field.options:
            raise ValueError(f"must be one of {field.options}")
        return value
    if t == "multiselect":
        if not isinstance(value, list) or any(v not in field.options for v in value):
            raise ValueError(f"must be a list of {field.options}")
        return list(dict.fromkeys(value))
    if t == "url":
        if not isinstance(value, str):
            raise ValueError("must be an http(s) URL")
        try:
            return str(_URL.validate_python(value))
        except ValidationError:
            raise ValueError("must be an http(s) URL") from None
    if t == "email":
        if not isinstance(value, str):
            raise ValueError("must be an email address")
        return normalize_email(value)
    if t == "phone":
        if not isinstance(value, str):
            raise ValueError("must be a phone number")
        return normalize_phone(value, region)
    raise ValueError("unsupported type")  # pragma: no cover


def validate(defs: dict[str, CustomField], current: dict[str, Any] | None, patch: dict[str, Any] | None,
             region: str | None) -> dict[str, Any]:
    """Merge `patch` into `current` (null removes a key) and validate the result against the definitions."""
    merged = dict(current or {})
    for key, value in (patch or {}).items():
        loc = ("body", "custom_fields", key)
        field = defs.get(key)
        if field is None:
            raise ValidationFailed(f"unknown custom field {key!r}", loc=loc, type="unknown_custom_field")
        if value is None:
            merged.pop(key, None)
            continue
        try:
            merged[key] = _coerce(field, value, region)
        except ValueError as exc:
            raise ValidationFailed(f"custom field {key!r} {exc}", loc=loc) from None
    for key, field in defs.items():
        if field.required and merged.get(key) in (None, "", []):
            raise ValidationFailed(f"custom field {key!r} is required", loc=("body", "custom_fields", key),
                                   type="missing")
    return merged


def filter_clause(column: Any, defs: dict[str, CustomField], key: str, raw: str) -> ColumnElement[bool]:
    """`cf.<key>=<value>`: typed containment, served by the GIN index on custom_fields."""
    loc = ("query", f"cf.{key}")
    field = defs.get(key)
    if field is None:
        raise ValidationFailed(f"unknown custom field {key!r}", loc=loc)
    value: Any = raw
    try:
        if field.type == "number":
            value = _number(float(raw) if any(c in raw for c in ".eEnN") else int(raw))
        elif field.type == "boolean":
            if raw not in ("true", "false"):
                raise ValueError
            value = raw == "true"
        elif field.type == "multiselect":
            value = [raw]
        elif field.type == "date":
            value = date.fromisoformat(raw).isoformat()
        elif field.type == "email":
            value = normalize_email(raw)
    except ValueError:
        raise ValidationFailed(f"invalid value for custom field {key!r} ({field.type})", loc=loc) from None
    return column.op("@>")(cast({key: value}, JSONB))


_JSON_TYPES: dict[str, dict[str, Any]] = {
    "text": {"type": "string", "maxLength": MAX_TEXT},
    "number": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "boolean": {"type": "boolean"},
    "url": {"type": "string", "format": "uri"},
    "email": {"type": "string", "format": "email"},
    "phone": {"type": "string", "pattern": r"^\+[1-9]\d{1,14}$", "description": "E.164"},
}


def object_schema(read_model: Any, defs: dict[str, CustomField], title: str) -> dict[str, Any]:
    """JSON Schema of an object as the API returns it, with the org's custom fields spelled out."""
    schema = read_model.model_json_schema(ref_template="#/$defs/{model}")
    properties: dict[str, Any] = {}
    for key, field in defs.items():
        if field.type == "select":
            prop: dict[str, Any] = {"type": "string", "enum": list(field.options)}
        elif field.type == "multiselect":
            prop = {"type": "array", "items": {"type": "string", "enum": list(field.options)}, "uniqueItems": True}
        else:
            prop = dict(_JSON_TYPES[field.type])
        prop["title"] = field.label
        properties[key] = prop
    schema["properties"]["custom_fields"] = {
        "type": "object", "title": "Custom fields", "properties": properties, "additionalProperties": False,
        "required": [k for k, f in defs.items() if f.required],
    }
    schema["title"] = title
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
