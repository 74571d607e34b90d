"""Engine, session factory and the unit-of-work dependency (one transaction per request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.settings import Settings


def make_engine(settings: Settings, url: str | None = None, application_name: str = "crm",
                read_only: bool = False) -> AsyncEngine:
    connect_args: dict[str, object] = {
        "server_settings": {"application_name": application_name,
                            **({"default_transaction_read_only": "on"} if read_only else {})},
        # One number for asyncpg's statement cache and SQLAlchemy's prepared-statement cache: with both at 0
        # every statement is an unnamed one, which a transaction-mode pooler (PgBouncer) can pass through.
        "statement_cache_size": settings.db_statement_cache_size,
        "prepared_statement_cache_size": settings.db_statement_cache_size,
    }
    if settings.db_statement_timeout_ms:
        connect_args["server_settings"]["statement_timeout"] = str(settings.db_statement_timeout_ms)  # type: ignore[index]
    engine = create_async_engine(
        url or settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=3600,
        connect_args=connect_args,
        # jsonb columns (custom fields, event payloads) decode and encode in C.
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )
    event.listen(engine.sync_engine, "checkout", _closed_connections_are_replaced)
    return engine


def _closed_connections_are_replaced(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Instead of `pool_pre_ping` (a round trip on every checkout, a tenth of a cheap request): a connection
    the server has closed (restart, idle timeout, terminated backend) is known to asyncpg without asking;
    the pool then drops it and hands out a fresh one. A connection that dies mid-request is still detected
    by SQLAlchemy, which then invalidates the whole pool."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def _json_dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# Row-level security (migration 0020): every tenant table admits only the rows of the org named by this
# transaction-scoped setting. Unset, a tenant table shows no rows and accepts none.
ORG_SETTING = "crm.org_id"
_SET_ORG = text(f"SELECT set_config('{ORG_SETTING}', :org_id, true)")


async def set_org(session: AsyncSession, org_id: UUID | str) -> None:
    """Name the org this transaction acts for (row-level security). Transaction-scoped (`set_config(...,
    true)`): it ends with the transaction, so a pooled connection never carries it into the next one. Call it
    as soon as the org is known and before touching a tenant table; a new transaction must call it again."""
    await session.execute(_SET_ORG, {"org_id": str(org_id)})


class SweepRoleLimited(RuntimeError):
    pass


async def ensure_sweeps_bypass_rls(db: Database) -> None:
    """Refuse to run sweeps as a role that row-level security limits: they would silently find nothing."""
    assert db.sweeper is not None
    async with db.sweeper.connect() as conn:
        row = (await conn.execute(text(
            "SELECT current_user AS name, rolsuper OR rolbypassrls AS bypasses FROM pg_roles "
            "WHERE rolname = current_user"))).one()
    if not row.bypasses:
        raise SweepRoleLimited(
            f"the worker's sweeps connect as {row.name!r}, which row-level security limits: set "
            "CRM_DATABASE_SWEEP_URL (or CRM_DATABASE_ADMIN_URL) to a role with BYPASSRLS (README, 'Database roles')")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Yield the session; commit if the caller finished, roll back if it raised.

    A domain error may ask to keep what was written before it (`keep_changes`), e.g. a
    refresh-token reuse that revokes the whole token family and still answers 401.
    """
    try:
        yield session
    except BaseException as exc:
        if getattr(exc, "keep_changes", False):
            await session.commit()
        else:
            await session.rollback()
        raise
    else:
        await session.commit()


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # A read replica for reports (CRM_DATABASE_REPLICA_URL); None: reports read the primary.
    replica: AsyncEngine | None = None
    replica_sessions: async_sessionmaker[AsyncSession] | None = None
    # Cross-org sweeps of the worker (CRM_DATABASE_SWEEP_URL): a role that bypasses row-level security.
    sweeper: AsyncEngine | None = None
    sweep_sessions: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, sweeps: bool = False) -> Database:
        """`sweeps`: also connect as the sweep role (the worker; the API never reads across orgs)."""
        engine = make_engine(settings)
        db = cls(engine, make_sessionmaker(engine))
        if settings.database_replica_url:
            db.replica = make_engine(settings, settings.database_replica_url, "crm-replica", read_only=True)
            db.replica_sessions = make_sessionmaker(db.replica)
        if sweeps:
            db.sweeper = make_engine(settings.model_copy(update={"db_pool_size": 2, "db_max_overflow": 2}),
                                     settings.sweep_url, "crm-sweeper")
            db.sweep_sessions = make_sessionmaker(db.sweeper)
        return db

    @asynccontextmanager
    async def for_org(self, org_id: UUID | str) -> AsyncIterator[AsyncSession]:
        """One transaction acting for one org (row-level security set): committed when the block ends,
        rolled back if it raises. What worker jobs use: each job knows its org."""
        async with self.sessions.begin() as session:
            await set_org(session, org_id)
            yield session

    async def call(self, statement: Any, params: dict[str, Any]) -> Any:
        """One statement in a transaction of its own, no BEGIN or COMMIT round trips (autocommit): for a
        function that names its org itself (`record_recipient`). -> its scalar result."""
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            return (await conn.execute(statement, params)).scalar()

    @asynccontextmanager
    async def across_orgs(self) -> AsyncIterator[AsyncSession]:
        """One transaction as the sweep role, which row-level security does not limit: for the worker's
        sweeps over every org (outbox, timers, birthdays, retention). Committed when the block ends."""
        if self.sweep_sessions is None:
            raise RuntimeError("this Database was made without sweeps=True")
        async with self.sweep_sessions.begin() as session:
            yield session

    @asynccontextmanager
    async def read_only(self, org_id: UUID | str) -> AsyncIterator[AsyncSession]:
        """A read-only session on the replica acting for `org_id` (its transaction ends when the block does)."""
        assert self.replica_sessions is not None
        async with self.replica_sessions() as session, transaction(session):
            await set_org(session, org_id)
            yield session

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        # A context manager, not `async for`: an exception thrown in at `yield` must reach transaction().
        async with self.sessions() as session, transaction(session):
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        for other in (self.replica, self.sweeper):
            if other is not None:
                await other.dispose()
