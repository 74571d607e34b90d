"""The engine from settings: CRM_DB_STATEMENT_CACHE_SIZE reaches asyncpg and SQLAlchemy's asyncpg dialect."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.db import make_engine
from app.settings import Settings


@pytest.fixture(scope="module")
def bare_database(pg) -> str:
    return pg.create_database("engine_settings")


async def _named_statements(url: str, cache_size: int | None) -> int:
    """Run a few statements on one connection; -> how many named prepared statements that session holds."""
    overrides = {} if cache_size is None else {"db_statement_cache_size": cache_size}
    settings = Settings(env="test", database_url=url, redis_url="redis://unused", **overrides)
    engine = make_engine(settings)
    try:
        async with engine.connect() as conn:
            for _ in range(2):
                await conn.execute(text("SELECT 1"))
                await conn.execute(text("SELECT CAST(:n AS integer) + 1"), {"n": 1})
            return await conn.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
    finally:
        await engine.dispose()


async def test_statements_are_cached_by_default(bare_database):
    assert Settings(env="test").db_statement_cache_size == 100
    assert await _named_statements(bare_database, None) > 0


async def test_cache_size_zero_leaves_no_named_statement_on_the_server(bare_database):
    """What a transaction-mode pooler needs: nothing prepared by name outlives a statement."""
    assert await _named_statements(bare_database, 0) == 0


async def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(bare_database):
    """No round trip per checkout (no pool_pre_ping), yet a connection whose backend was terminated (a restart,
    an idle timeout, an administrator) is not handed out: the next request just works on a fresh one."""
    import asyncio
    import time

    import asyncpg

    engine = make_engine(Settings(env="test", database_url=bare_database, redis_url="redis://unused",
                                  db_pool_size=1, db_max_overflow=0))
    try:
        async with engine.connect() as conn:
            before = await conn.scalar(text("SELECT pg_backend_pid()"))
        admin = await asyncpg.connect(bare_database.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", before)
            deadline = time.monotonic() + 60
            while _alive(before):  # exited: the kernel has closed its end of the idle connection
                assert time.monotonic() < deadline, "the terminated backend did not exit"
                await asyncio.sleep(0.02)
        finally:
            await admin.close()
        async with engine.connect() as conn:
            after = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert after != before
    finally:
        await engine.dispose()


def _alive(pid: int) -> bool:
    """Whether the process exists (the backend runs on this machine: the test cluster is local)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
