"""Keyset (cursor) pagination: a page costs the same at row 10 and at row 10 million.

The cursor is opaque to clients: base64url of `[sort, last value, last id]`. Rows are ordered by
the sort column and then by `id` (UUIDv7, unique), in the same direction, so the position is a
row-value comparison `(col, id) < (:v, :id)` that a `(org_id, col, id)` index answers directly.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar
from uuid import UUID

import orjson
from sqlalchemy import Select, and_, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.domain.errors import ValidationFailed
from app.domain.schemas import BIGINT_MAX, BIGINT_MIN, unstorable

T = TypeVar("T")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
DEFAULT_SORT = "-created_at"


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    sort: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


@dataclass(frozen=True)
class Sort:
    key: str  # as the client wrote it, e.g. "-created_at"
    column: InstrumentedAttribute[Any]
    descending: bool


def parse_sort(raw: str | None, allowed: Mapping[str, InstrumentedAttribute[Any]]) -> Sort:
    key = raw or DEFAULT_SORT
    name = key.removeprefix("-")
    if name not in allowed:
        raise ValidationFailed(
            f"cannot sort by {name!r}; allowed: {', '.join(sorted(allowed))} (prefix '-' for descending)",
            loc=("query", "sort"),
        )
    return Sort(key, allowed[name], key.startswith("-"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    return value


def encode_cursor(sort: Sort, value: Any, row_id: UUID) -> str:
    raw = orjson.dumps([sort.key, _jsonable(value), str(row_id)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _invalid() -> ValidationFailed:
    return ValidationFailed("invalid or expired cursor; start again without one", loc=("query", "cursor"))


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, UUID]:
    try:
        key, value, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if key != sort.key:
            raise ValidationFailed("the cursor belongs to another sort order", loc=("query", "cursor"))
        return _position_value(value, sort.column.type.python_type), UUID(row_id)
    except ValidationFailed:
        raise
    except (ValueError, TypeError, OverflowError, InvalidOperation, binascii.Error, orjson.JSONDecodeError):
        raise _invalid() from None


def _position_value(value: Any, python_type: type) -> Any:
    """The cursor's sort value as the column holds it; anything PostgreSQL could not compare raises ValueError."""
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("a cursor value is a string or a number")
    if isinstance(value, str) and unstorable(value):
        raise ValueError(unstorable(value))
    if python_type is datetime:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a cursor time carries its offset")
        return moment.astimezone(UTC)  # OverflowError outside the years 1..9999 in UTC
    if python_type is date:
        return date.fromisoformat(value)
    if python_type is Decimal:
        number = Decimal(str(value))  # InvalidOperation for "x"
        if not number.is_finite():
            raise ValueError("not a finite number")
        return number
    if python_type is int:
        number = int(value)
        if not BIGINT_MIN <= number <= BIGINT_MAX:
            raise ValueError("out of range")
        return number
    if python_type in (UUID, str, float):
        return python_type(value)
    raise ValueError(f"cannot page on a {python_type.__name__} column")


def apply_keyset(stmt: Select[Any], page: PageRequest, sort: Sort, id_column: InstrumentedAttribute[Any]) -> Select[Any]:
    if not 1 <= page.limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", loc=("query", "limit"))
    col = sort.column
    nullable = bool(getattr(getattr(col, "property", None), "columns", [col])[0].nullable)
    if page.cursor:
        value, row_id = decode_cursor(page.cursor, sort)
        stmt = stmt.where(_after(col, id_column, value, row_id, sort.descending, nullable))
    # NULLs sort as PostgreSQL's btree keeps them (last ascending, first descending), so one index serves both.
    if sort.descending:
        stmt = stmt.order_by(col.desc().nulls_first(), id_column.desc())
    else:
        stmt = stmt.order_by(col.asc().nulls_last(), id_column.asc())
    return stmt.limit(page.limit + 1)


def _after(col: Any, id_column: Any, value: Any, row_id: UUID, descending: bool, nullable: bool) -> Any:
    """Rows strictly after the cursor position (value, id) in the page order."""
    if value is None:
        if descending:  # in the leading NULL block: rest of it, then every non-NULL row
            return or_(and_(col.is_(None), id_column < row_id), col.is_not(None))
        return and_(col.is_(None), id_column > row_id)  # in the trailing NULL block
    position, bound = tuple_(col, id_column), tuple_(value, row_id)
    if descending:
        return position < bound
    return or_(position > bound, col.is_(None)) if nullable else position > bound


def cut_page(rows: Sequence[T], page: PageRequest, sort: Sort, value_of: Any = None) -> Page[T]:
    """Trim the look-ahead row and build the next cursor from the last row kept."""
    if len(rows) <= page.limit:
        return Page(rows, None)
    kept = rows[: page.limit]
    last = kept[-1]
    value = value_of(last) if value_of else getattr(last, sort.column.key)
    return Page(kept, encode_cursor(sort, value, last.id))


async def keyset_page(session: AsyncSession, stmt: Select[Any], page: PageRequest,
                      allowed_sorts: Mapping[str, InstrumentedAttribute[Any]],
                      id_column: InstrumentedAttribute[Any]) -> Page[Any]:
    sort = parse_sort(page.sort, allowed_sorts)
    rows = (await session.scalars(apply_keyset(stmt, page, sort, id_column))).all()
    return cut_page(rows, page, sort)
