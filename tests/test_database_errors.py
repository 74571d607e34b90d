"""A database failure is answered by what it means (its SQLSTATE class), never by a blanket 503 or a 500.

The routes here are added to a real app for the test and fail in real PostgreSQL: a division by zero, a
constraint, a statement timeout, a raised serialization failure, a real deadlock, a terminated backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB

from app.api.deps import SessionDep
from app.db import Database
from app.main import create_app
from tests.factories import signup
from tests.servers import free_port
from tests.test_errors import assert_problem, assert_validation

Route = Callable[..., Awaitable[Any]]


@pytest.fixture
async def own_db(settings) -> AsyncIterator[Database]:
    """The app's own pool (the real unit of work): a test may break its connections."""
    db = Database.from_settings(settings)
    yield db
    await db.dispose()


@pytest.fixture
def serve(settings, own_db, redis):
    """-> add(path, route, method): a client for the app with that extra route."""

    def add(path: str, route: Route, method: str = "GET") -> httpx.AsyncClient:
        app = create_app(settings, db=own_db, redis=redis)
        app.add_api_route(path, route, methods=[method])
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test")

    return add


def _fails_with(sql: str) -> Route:
    async def route(session: SessionDep) -> dict:
        for statement in sql.split(";"):
            await session.execute(text(statement))
        return {}

    return route


# --- class 22 and 23: the request's data ---------------------------------------------------------------


async def test_a_data_exception_is_422_not_503(serve):
    async with serve("/t", _fails_with("SELECT 1 / 0")) as c:
        r = await c.get("/t")
    assert_validation(r, "/t")
    assert "retry-after" not in r.headers


async def test_a_not_null_violation_is_422_naming_the_column(serve):
    route = _fails_with("CREATE TEMP TABLE t_nn (org_id int, email text NOT NULL); INSERT INTO t_nn VALUES (1, NULL)")
    async with serve("/t", route) as c:
        r = await c.get("/t")
    errors = assert_validation(r, "/t")
    assert ["body", "email"] in [e["loc"] for e in errors]


async def test_a_foreign_key_violation_is_422_naming_the_column_without_the_value(serve):
    route = _fails_with("CREATE TEMP TABLE t_parent (id int PRIMARY KEY);"
                        "CREATE TEMP TABLE t_child (org_id int, parent_id int REFERENCES t_parent (id));"
                        "INSERT INTO t_child VALUES (1, 424242)")
    async with serve("/t", route) as c:
        r = await c.get("/t")
    errors = assert_validation(r, "/t")
    assert ["body", "parent_id"] in [e["loc"] for e in errors]
    assert "424242" not in r.text


async def test_a_unique_violation_is_409_naming_the_fields(serve):
    route = _fails_with("CREATE TEMP TABLE t_uq (org_id int, email text, UNIQUE (org_id, email));"
                        "INSERT INTO t_uq VALUES (1, 'a@example.com'); INSERT INTO t_uq VALUES (1, 'a@example.com')")
    async with serve("/t", route) as c:
        r = await c.get("/t")
    body = assert_problem(r, 409, "/t", "/problems/conflict")
    assert body["fields"] == ["email"] and "a@example.com" not in r.text


@pytest.mark.parametrize("value", ["\udfff", 2**64])
async def test_a_value_the_driver_cannot_encode_is_422_not_500(serve, value):
    async def route(session: SessionDep) -> dict:
        await session.execute(select(bindparam("v", type_=JSONB)), {"v": {"k": value}})
        return {}

    async with serve("/t", route) as c:
        r = await c.get("/t")
    assert_validation(r, "/t")


# --- 40001 / 40P01: lost a race, run again once ----------------------------------------------------------


async def test_a_serialization_failure_is_run_again_once_with_the_same_body(serve):
    attempts: list[dict] = []

    async def route(session: SessionDep, body: dict) -> dict:
        attempts.append(body)
        if len(attempts) == 1:
            await session.execute(text("DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '40001'; END $$"))
        return {"attempts": len(attempts), "echo": body}

    async with serve("/t", route, "POST") as c:
        r = await c.post("/t", json={"n": 1})
    assert r.status_code == 200, r.text
    assert r.json() == {"attempts": 2, "echo": {"n": 1}}
    assert attempts == [{"n": 1}, {"n": 1}]


async def test_a_second_serialization_failure_is_409(serve):
    attempts = 0

    async def route(session: SessionDep) -> dict:
        nonlocal attempts
        attempts += 1
        await session.execute(text("DO $$ BEGIN RAISE EXCEPTION 'lost' USING ERRCODE = '40P01'; END $$"))
        return {}

    async with serve("/t", route, "POST") as c:
        r = await c.post("/t", json={})
    assert_problem(r, 409, "/t", "/problems/transaction-conflict")
    assert attempts == 2


async def test_a_real_deadlock_is_resolved_by_running_the_loser_again(serve):
    holding = {1: asyncio.Event(), 2: asyncio.Event()}
    runs: list[int] = []

    async def route(session: SessionDep, first: int) -> dict:
        second = 3 - first
        runs.append(first)
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 880_000 + first})
        holding[first].set()
        await asyncio.wait_for(holding[second].wait(), 30)
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 880_000 + second})
        return {"first": first}

    async with serve("/t", route) as c:
        one, two = await asyncio.gather(c.get("/t", params={"first": 1}), c.get("/t", params={"first": 2}))
    assert (one.status_code, two.status_code) == (200, 200), (one.text, two.text)
    assert sorted(runs) in ([1, 1, 2], [1, 2, 2])  # the deadlock's victim ran twice


# --- timeouts and connection loss: 503 with Retry-After -------------------------------------------------


async def test_a_statement_timeout_is_503_with_retry_after(serve):
    async with serve("/t", _fails_with("SET LOCAL statement_timeout = '20ms'; SELECT pg_sleep(30)")) as c:
        r = await c.get("/t")
    assert_problem(r, 503, "/t", "/problems/timeout")
    assert int(r.headers["retry-after"]) >= 1


async def test_a_connection_terminated_mid_request_is_503_and_the_next_request_works(serve):
    async with serve("/t", _fails_with("SELECT pg_terminate_backend(pg_backend_pid())")) as c:
        r = await c.get("/t")
        assert_problem(r, 503, "/t", "/problems/unavailable")
        assert r.headers["retry-after"] == "1"
        assert (await c.get("/healthz")).status_code == 200
        acct = await signup(c)  # the pool replaced the dead connection
        assert (await c.get("/v1/me", headers=acct.headers)).status_code == 200


@pytest.mark.parametrize("where", ["socket", "tcp"])
async def test_a_stopped_database_is_503_not_500(settings, redis, client, where):
    acct = await signup(client)
    url = (f"postgresql+asyncpg://postgres@/crm_test?host=/nonexistent/{free_port()}" if where == "socket"
           else f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/crm_test")
    db = Database.from_settings(settings.model_copy(update={"database_url": url}))
    app = create_app(settings, db=db, redis=redis)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
            r = await c.get("/v1/contacts", headers=acct.headers)
            created = await c.post("/v1/contacts", headers={**acct.headers, "Idempotency-Key": "k-stopped"},
                                   json={"first_name": "Ana"})
    finally:
        await db.dispose()
    assert_problem(r, 503, "/v1/contacts", "/problems/unavailable")
    assert r.headers["retry-after"] == "1"
    assert_problem(created, 503, "/v1/contacts", "/problems/unavailable")
