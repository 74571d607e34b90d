from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import migrate
from app.api.deps import get_session
from app.db import Database, set_org, transaction
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


APP_ROLE = "crm_app"


@pytest.fixture(scope="session")
def database_url(pg: PostgresCluster) -> str:
    """The admin URL (the superuser: migrations, sweeps, and tests that look behind the app's back)."""
    url = pg.create_database("crm_test")
    migrate.upgrade(url)  # the real migrations, not create_all
    return url


@pytest.fixture(scope="session")
def app_database_url(pg: PostgresCluster, database_url: str) -> str:
    """What the app connects as: a role that neither owns the tables nor bypasses row-level security."""
    pg.create_role(APP_ROLE)
    asyncio.run(migrate.grant(database_url, [APP_ROLE]))
    return make_url(database_url).set(username=APP_ROLE).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def settings(database_url: str, app_database_url: str, redis_server: RedisServer,
             tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="test",
        database_url=app_database_url,
        database_admin_url=database_url,
        redis_url=redis_server.url,
        data_dir=tmp_path_factory.mktemp("data"),
        jwt_secret="test-secret-that-is-long-enough-to-sign-hs256",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        log_json=True,
        log_level="WARNING",
        allow_private_networks=True,
        # the suite signs up hundreds of organisations from one address; tests/test_rate_limits.py lowers these
        rate_limit_auth_per_ip=1_000_000,
        rate_limit_per_credential=1_000_000,
    )


@pytest.fixture(scope="session")
async def app_database(settings: Settings) -> AsyncIterator[Database]:
    """The app's connections: the limited role, which row-level security holds to the org it acts for."""
    db = Database.from_settings(settings)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def database(settings: Settings, database_url: str) -> AsyncIterator[Database]:
    """Behind the app's back: the admin role (tests that inspect or plant rows across orgs, and the worker's
    context, whose sweeps cross orgs)."""
    db = Database.from_settings(settings.model_copy(update={"database_url": database_url}), sweeps=True)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def redis(redis_server: RedisServer) -> AsyncIterator[ArqRedis]:
    """The queue the API enqueues into (arq's Redis client)."""
    client = await create_pool(RedisSettings.from_dsn(redis_server.url))
    yield client
    await client.aclose()


@pytest.fixture
async def connection(database: Database) -> AsyncIterator[AsyncConnection]:
    """One outer transaction per test, rolled back at the end: what a test writes never leaks. It acts as the
    app's limited role (`SET ROLE`, undone by the rollback); `as_sweeper` steps out of it for a worker sweep."""
    async with database.engine.connect() as conn:
        outer = await conn.begin()
        await conn.execute(text(f'SET ROLE "{APP_ROLE}"'))
        try:
            yield conn
        finally:
            await outer.rollback()


@asynccontextmanager
async def as_sweeper(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """The test's transaction as the worker's sweep role (the admin, which row-level security does not limit),
    for sweeps over every org and for reading what they wrote in any org; the app's role again afterwards."""
    await session.execute(text("RESET ROLE"))
    try:
        yield session
    finally:
        await session.execute(text(f'SET ROLE "{APP_ROLE}"'))


def savepoint_session(conn: AsyncConnection) -> AsyncSession:
    """A session inside the test's transaction: its commit releases a savepoint, its rollback undoes it."""
    return AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False, autoflush=False)


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    async with savepoint_session(connection) as s:
        yield s


@pytest.fixture
def app(settings: Settings, app_database: Database, redis: Redis, connection: AsyncConnection):
    application = create_app(settings, db=app_database, redis=redis)

    async def test_session() -> AsyncIterator[AsyncSession]:
        # A fresh session per request, as in production, all inside the test's outer transaction.
        async with savepoint_session(connection) as s, transaction(s):
            yield s

    async def test_snapshot(db: Database, org_id: object) -> AsyncSession:
        # An export's snapshot session, reading inside the test's transaction too (no REPEATABLE READ of its own,
        # no savepoint: it only reads, while the request's own session may still hold one).
        s = AsyncSession(bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False,
                         autoflush=False)
        await set_org(s, org_id)
        return s

    application.dependency_overrides[get_session] = test_session
    application.state.snapshot_session = test_snapshot
    return application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as c:
        yield c


@pytest.fixture
async def committed_client(settings: Settings, app_database: Database, redis: Redis
                           ) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its real unit of work: every request commits (for tests that need other connections)."""
    application = create_app(settings, db=app_database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://crm.test") as c:
        yield c


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """Worker timings short enough for tests (see tests/workers.py)."""
    from tests.workers import FAST

    return settings.model_copy(update=FAST)


@pytest.fixture
async def api(fast_settings: Settings, app_database: Database, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its real unit of work (every request commits) and fast worker timings."""
    application = create_app(fast_settings, db=app_database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://crm.test") as c:
        yield c
