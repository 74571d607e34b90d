"""Housekeeping jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete

from app.domain.auth.models import RefreshToken
from app.logging import log


async def purge_expired_refresh_tokens(ctx: dict[str, Any]) -> int:
    """Delete refresh tokens that expired more than a day ago (reuse detection no longer needs them)."""
    async with ctx["db"].sessions.begin() as session:
        result = await session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < datetime.now(UTC) - timedelta(days=1))
        )
    log.info("purged_refresh_tokens", count=result.rowcount)
    return result.rowcount
