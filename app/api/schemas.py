"""HTTP envelopes shared by routers."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class ListPage(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
