"""Alembic from code: upgrade, the grants of the app's role, and the check that refuses to serve an out-of-date
schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _outside_event_loop(fn: Callable[[], None]) -> None:
    """env.py runs its own event loop; from inside a running one, migrate on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn()
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(fn).result()


def upgrade(url: str, revision: str = "head") -> None:
    _outside_event_loop(lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str) -> None:
    _outside_event_loop(lambda: command.downgrade(alembic_config(url), revision))


def upgrade_and_grant(settings: Settings, revision: str = "head") -> None:
    """Migrate as the admin role (CRM_DATABASE_ADMIN_URL), then grant the app's role (CRM_DATABASE_URL) and the
    sweep role (CRM_DATABASE_SWEEP_URL) what they need on every table, when they are other roles."""
    upgrade(settings.migration_url, revision)
    admin = make_url(settings.migration_url).username
    roles = [make_url(url).username for url in (settings.database_url, settings.database_sweep_url) if url]
    roles = sorted({r for r in roles if r and r != admin})
    if roles:
        _outside_event_loop(lambda: asyncio.run(grant(settings.migration_url, roles)))


def grant_statements(role: str) -> list[str]:
    """Rows of every table (never DDL), sequences; the same for tables created later by the admin role.
    Row-level security still decides which rows (the role must not own the tables, nor bypass RLS)."""
    quoted = '"' + role.replace('"', '""') + '"'
    return [
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {quoted}",
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {quoted}",  # the schema version is read only
    ]


async def grant(admin_url: str, roles: list[str]) -> None:
    engine = create_async_engine(admin_url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            for role in roles:
                for statement in grant_statements(role):
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused"))
    return script.get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        exists = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return None
        return await conn.scalar(text("SELECT version_num FROM alembic_version"))


class SchemaOutOfDate(RuntimeError):
    pass


async def ensure_schema_current(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(f"database schema is at {current or 'nothing'}, the code needs {head}: run `crm migrate`")
