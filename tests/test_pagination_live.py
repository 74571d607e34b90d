"""Keyset pagination under live writes (real commits): paging through a list while other requests insert
never repeats a row, never skips one that existed before paging began, and keeps the sort order — with
NULLs and ties in the sort column."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.factories import signup

PAGE = 7
ORIGINALS = 60
INSERTED = 30
LAST_NAMES = ["Adams", "Baker", None, "Clark", "Baker", "Diaz", None, "Evans", "Adams"]  # NULLs and ties
CLOSE_DATES = ["2026-03-01", None, "2026-01-15", "2026-03-01", None, "2026-12-31", "2025-06-30"]
AMOUNTS = ["0.00", "100.00", "2500.50", "100.00", "99999.99", "0.00", "7.10"]


async def _create_many(make: Callable[[int], Awaitable[httpx.Response]], counter: itertools.count,
                       n: int) -> list[dict]:
    out: list[dict] = []
    numbers = [next(counter) for _ in range(n)]
    for start in range(0, n, 10):
        for r in await asyncio.gather(*(make(i) for i in numbers[start:start + 10])):
            assert r.status_code == 201, r.text
            out.append(r.json())
    return out


async def _page_through(c: httpx.AsyncClient, headers: dict[str, str], path: str, sort: str | None,
                        insert: Callable[[int], Awaitable[httpx.Response]], counter: itertools.count) -> list[dict]:
    """Every page is fetched together with a few inserts (30 in all), so rows appear while we page."""
    seen: list[dict] = []
    cursor: str | None = None
    to_insert = INSERTED
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if sort:
            params["sort"] = sort
        if cursor:
            params["cursor"] = cursor
        k = min(4, to_insert)
        to_insert -= k
        r, *made = await asyncio.gather(c.get(path, headers=headers, params=params),
                                        *(insert(next(counter)) for _ in range(k)))
        assert r.status_code == 200, r.text
        assert all(m.status_code == 201 for m in made)
        page = r.json()
        assert len(page["data"]) <= PAGE
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["data"]) == PAGE  # only the last page may be short
        assert len(seen) < 10 * (ORIGINALS + 4 * INSERTED), "paging does not end"
    if to_insert:
        await _create_many(insert, counter, to_insert)
    return seen


def _check(seen: list[dict], originals: list[dict], key: Callable[[dict], Any], descending: bool) -> None:
    ids = [row["id"] for row in seen]
    assert len(ids) == len(set(ids)), "a row came twice"
    missing = {o["id"] for o in originals} - set(ids)
    assert not missing, f"{len(missing)} rows that existed before paging were skipped"
    # The rows came in the promised order: the sort key, then id, NULLs last ascending / first descending.
    keys = [(key(row), UUID(row["id"])) for row in seen]
    assert keys == sorted(keys, reverse=descending)


def _nulls_last(value: Any) -> tuple:
    return (value is None, value if value is not None else "")


@pytest.fixture
async def owner(committed_client):
    return await signup(committed_client, "Live paging")  # a fresh org (unique email): committed data stays


async def test_contacts_while_others_insert(committed_client, owner):
    c, h = committed_client, owner.headers
    counter = itertools.count()

    def add(i: int) -> Awaitable[httpx.Response]:
        return c.post("/v1/contacts", headers=h, json={"first_name": f"F{i:03d}",
                                                       "last_name": LAST_NAMES[i % len(LAST_NAMES)]})

    originals = await _create_many(add, counter, ORIGINALS)
    assert sum(o["last_name"] is None for o in originals) >= 10

    for sort, key, descending in (
        (None, lambda row: datetime.fromisoformat(row["created_at"]), True),  # the default: -created_at
        ("last_name", lambda row: _nulls_last(row["last_name"]), False),
        ("-last_name", lambda row: _nulls_last(row["last_name"]), True),
    ):
        seen = await _page_through(c, h, "/v1/contacts", sort, add, counter)
        _check(seen, originals, key, descending)

    total = (await c.get("/v1/contacts", headers=h, params={"limit": 200})).json()["data"]
    assert len(total) == ORIGINALS + 3 * INSERTED


async def test_deals_while_others_insert(committed_client, owner):
    c, h = committed_client, owner.headers
    counter = itertools.count()

    def add(i: int) -> Awaitable[httpx.Response]:
        return c.post("/v1/deals", headers=h, json={
            "title": f"D{i:03d}", "expected_close_date": CLOSE_DATES[i % len(CLOSE_DATES)],
            "value": {"amount": AMOUNTS[i % len(AMOUNTS)]}})

    originals = await _create_many(add, counter, ORIGINALS)
    assert sum(o["expected_close_date"] is None for o in originals) >= 10

    def close(row: dict) -> tuple:
        return _nulls_last(row["expected_close_date"])

    def value(row: dict) -> Decimal:
        return Decimal(row["value"]["amount"])

    for sort, key, descending in (
        ("expected_close_date", close, False),
        ("-expected_close_date", close, True),
        ("value", value, False),
        ("-value", value, True),
    ):
        seen = await _page_through(c, h, "/v1/deals", sort, add, counter)
        _check(seen, originals, key, descending)
