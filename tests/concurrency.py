"""Deterministic races: a transaction of the test's own holds a lock while requests run into it, and the test
waits on what PostgreSQL reports (who waits behind whom), never on time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database

DEADLINE = 30.0


async def until(condition: Callable[[], Awaitable[bool]], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` until it holds; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not await condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.01)


class Gate:
    """An open transaction holding the locks its statements took; `waiting()` counts the backends queued
    behind it, directly or behind one that is (row locks, table locks and advisory locks alike)."""

    def __init__(self, conn: AsyncConnection, observer: AsyncConnection, pid: int) -> None:
        self.conn, self.observer, self.pid = conn, observer, pid

    async def hold(self, sql: str, **params: Any) -> None:
        await self.conn.execute(text(sql), params)

    async def waiting(self) -> int:
        rows = (await self.observer.execute(text(
            "SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"))).all()
        behind = {self.pid}
        grew = True
        while grew:
            grew = False
            for pid, blockers in rows:
                if pid not in behind and behind & set(blockers):
                    behind.add(pid)
                    grew = True
        return len(behind) - 1

    async def until_queued(self, count: int, *tasks: asyncio.Task[Any]) -> None:
        """Until `count` backends wait behind the gate, or one of `tasks` has already finished (it did not
        have to wait: the race that the lock rule forbids went through)."""
        async def ready() -> bool:
            return any(t.done() for t in tasks) or await self.waiting() >= count

        await until(ready, f"{count} transaction(s) queued behind the gate")


@asynccontextmanager
async def gate(database: Database) -> AsyncIterator[Gate]:
    """A gate that opens (rolls back, releasing its locks) when the block ends."""
    async with database.engine.connect() as observer, database.engine.connect() as conn:
        await observer.execution_options(isolation_level="AUTOCOMMIT")
        transaction = await conn.begin()
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        try:
            yield Gate(conn, observer, pid)
        finally:
            await transaction.rollback()
