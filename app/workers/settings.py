"""arq worker configuration: jobs receive ids, open their own session, call domain services."""

from __future__ import annotations

from typing import Any

from arq import cron
from arq.connections import RedisSettings

from app.db import Database
from app.logging import configure_logging
from app.settings import Settings, get_settings
from app.workers import maintenance

HEALTH_CHECK_KEY = "crm:worker:health"


def worker_settings(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker` (also used by `crm dev` to run one in-process)."""

    async def startup(ctx: dict[str, Any]) -> None:
        configure_logging(settings.log_level, settings.log_json)
        ctx["settings"] = settings
        ctx["db"] = Database.from_settings(settings)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "db" in ctx:
            await ctx["db"].dispose()

    return {
        "functions": [maintenance.purge_expired_refresh_tokens],
        "cron_jobs": [cron(maintenance.purge_expired_refresh_tokens, hour={3}, minute={17}, run_at_startup=False)],
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "health_check_key": HEALTH_CHECK_KEY,
        "health_check_interval": 30,
        "max_jobs": 20,
        "job_timeout": 300,
        "keep_result": 3600,
    }


def __getattr__(name: str) -> Any:
    """`arq app.workers.settings.WorkerSettings` works too: the class is built from Settings on first use."""
    if name == "WorkerSettings":
        return type("WorkerSettings", (), worker_settings(get_settings()))
    raise AttributeError(name)
