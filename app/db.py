"""Engine, session factory and the unit-of-work dependency (one transaction per request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event
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

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = make_engine(settings)
        if not settings.database_replica_url:
            return cls(engine, make_sessionmaker(engine))
        replica = make_engine(settings, settings.database_replica_url, "crm-replica", read_only=True)
        return cls(engine, make_sessionmaker(engine), replica, make_sessionmaker(replica))

    @asynccontextmanager
    async def read_only(self) -> AsyncIterator[AsyncSession]:
        """A read-only session on the replica (its transaction ends when the block does)."""
        assert self.replica_sessions is not None
        async with self.replica_sessions() as session, transaction(session):
            yield session

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        # A context manager, not `async for`: an exception thrown in at `yield` must reach transaction().
        async with self.sessions() as session, transaction(session):
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.dispose()
