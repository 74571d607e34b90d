from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.api.deps import get_session
from app.db import Database, make_engine, make_sessionmaker, transaction
from app.main import create_app
from app.settings import Settings
from tests.servers import PostgresCluster, RedisServer


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(pg: PostgresCluster) -> str:
    url = pg.create_database("crm_test")
    migrate.upgrade(url)  # the real migrations, not create_all
    return url


@pytest.fixture(scope="session")
def settings(database_url: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_server.url,
        data_dir=tmp_path_factory.mktemp("data"),
        jwt_secret="test-secret-that-is-long-enough-to-sign-hs256",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        log_json=True,
        log_level="WARNING",
        allow_private_networks=True,
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database.from_settings(settings)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    """One outer transaction per test, rolled back at the end: what a test writes never leaks."""
    async with database.engine.connect() as conn:
        outer = await conn.begin()
        s = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False,
                         autoflush=False)
        try:
            yield s
        finally:
            await s.close()
            await outer.rollback()


@pytest.fixture
def app(settings: Settings, database: Database, redis: Redis, session: AsyncSession):
    application = create_app(settings, db=database, redis=redis)

    async def test_session() -> AsyncIterator[AsyncSession]:
        async for s in transaction(session):
            yield s

    application.dependency_overrides[get_session] = test_session
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        yield c


@pytest.fixture
async def committed_client(settings: Settings, database: Database, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its real unit of work: every request commits (for tests that need other connections)."""
    application = create_app(settings, db=database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://crm.test") as c:
        yield c
