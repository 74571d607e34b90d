"""The worker's side of click-to-call: one JSON request to the settings' `originate_url`, with `auth_header` as
`Authorization`, asking the provider to ring the user's phone and then dial the customer. Leasing, retries and
the record are those of every outgoing message (`app.domain.outgoing`: 2xx took it; 408, 425, 429, 5xx,
timeouts and broken connections are tried again on `CRM_MAIL_RETRY_SCHEDULE`; other answers fail it). At least
once: the request carries the request's `id` for providers that deduplicate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.domain import outgoing
from app.domain.auth.models import User
from app.domain.outgoing import Handed
from app.domain.sealing import Unsealable
from app.domain.telephony import service
from app.domain.telephony.models import CallOrigination
from app.logging import log
from app.settings import Settings


async def due(session: AsyncSession, limit: int = 1000) -> list[tuple[UUID, UUID]]:
    return await outgoing.due(session, CallOrigination, limit)


async def send(db: Database, settings: Settings, http: httpx.AsyncClient, org_id: UUID, origination_id: UUID,
               lease_seconds: float) -> tuple[str, list[tuple[UUID, UUID]]]:
    """-> (outcome, events written): `skipped`, `sent`, `retry in <s>` or `failed`."""
    row = await outgoing.lease(db, CallOrigination, org_id, origination_id, lease_seconds)
    if row is None:
        return "skipped", []
    async with db.for_org(org_id) as session:
        configured = await service.settings_of(session, org_id)
        user = (await session.execute(select(User.id, User.email, User.name).where(
            User.org_id == org_id, User.id == row.user_id))).first()
    secrets: dict[str, Any] | None = None
    if configured is None or not configured.originate_url:
        handed = Handed("refused", "click-to-call is not configured any more")
    else:
        try:
            secrets = service.secrets_of(settings, configured)
        except Unsealable as exc:
            handed = Handed("refused", f"the provider's settings: {exc.detail}")
    if configured is not None and configured.originate_url and secrets is not None:
        headers = {"content-type": "application/json", "user-agent": "headless-crm-telephony/1"}
        if secrets.get("auth_header"):
            headers["authorization"] = str(secrets["auth_header"])
        body = orjson.dumps({"id": str(row.id), "to": row.to_phone, "user": {
            "id": str(row.user_id), "email": user.email if user else None, "name": user.name if user else None}})
        handed = await outgoing.hand_over(http, "POST", configured.originate_url, body, headers,
                                          settings.mail_timeout_seconds, settings.allow_private_networks)
    values: dict[str, Any]
    if handed.outcome == "sent":
        outcome, values = "sent", {"status": "sent", "sent_at": datetime.now(UTC),
                                   "provider_answer": handed.detail[:500], "error": None, "next_attempt_at": None,
                                   "attempts": row.attempts + 1}
    else:
        outcome, values = outgoing.not_sent(row.attempts + 1, settings.mail_retry_schedule,
                                            handed.outcome == "refused", handed.detail)
    log.info("call_originate_attempt", origination_id=str(origination_id), outcome=outcome,
             detail=handed.detail[:200])
    return outcome, await outgoing.record(db, CallOrigination, "call_origination", org_id, origination_id, outcome,
                                          values, None)
