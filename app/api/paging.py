"""Paging with a typed `sort` for the record lists (no `from __future__ import annotations` here: the
dependency's annotations name a Literal built at run time, which FastAPI must see as an object)."""

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Literal

from fastapi import Query

from app.domain.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest


def sorted_page_request(sorts: Iterable[str]) -> Callable[..., Awaitable[PageRequest]]:
    """`page_request` (app/api/deps.py) whose `sort` is an enum of these fields, each ascending or with `-`
    descending: the OpenAPI document lists them, generated clients type them."""
    allowed = [v for f in sorts for v in (f, f"-{f}")]
    Sort = Literal[tuple(allowed)]  # type: ignore[valid-type]

    async def paged(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, 1..{MAX_LIMIT}")] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=1024, description="`next_cursor` of the previous page")] = None,
        sort: Annotated[Sort | None, Query(description="field, or -field for descending")] = None,
    ) -> PageRequest:
        return PageRequest(limit=limit, cursor=cursor, sort=sort)

    return paged
