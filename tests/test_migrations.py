"""Migrations: a fresh `crm migrate` on an empty database, no drift from the models, and the way back."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from app.migrate import alembic_config, downgrade
from tests.servers import crm_command, crm_env


@pytest.fixture
def fresh_db(pg, request):
    return pg.create_database(f"fresh_{request.node.name[:40]}")


def _tables(url: str) -> set[str]:
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        await engine.dispose()
        return names

    return asyncio.run(run())


def test_crm_migrate_on_empty_database_then_downgrade_to_base(fresh_db, redis_server, tmp_path):
    done = subprocess.run([*crm_command(), "migrate"], env=crm_env(fresh_db, redis_server.url, tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {"orgs", "users", "login_emails", "refresh_tokens", "api_keys", "api_key_prefixes",
            "alembic_version"} <= _tables(fresh_db)
    downgrade(fresh_db, "base")
    assert _tables(fresh_db) == {"alembic_version"}


def test_models_and_migrations_agree(database_url):
    """alembic check: autogenerate finds nothing to add, so every model change has its migration."""
    command.check(alembic_config(database_url))


def test_migration_files_are_dated_and_reversible():
    files = sorted(Path("migrations/versions").glob("*.py"))
    assert files
    for f in files:
        assert re.match(r"\d{4}-\d{2}-\d{2}_[a-z0-9_]+\.py$", f.name), f.name
        text = f.read_text()
        assert "def downgrade() -> None:" in text and "\n    pass\n" not in text.split("def downgrade")[1], f.name
