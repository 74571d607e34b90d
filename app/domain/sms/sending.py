"""The worker's side of SMS: a text is handed to the org's HTTP gateway (the request built from the gateway's
templates), then recorded `sent` or, for a refusal or after the last retry, `failed`
(`CRM_MAIL_RETRY_SCHEDULE`).

The gateway's answer decides as for every provider (`app.domain.outgoing.hand_over`): 2xx took it; 408, 425, 429
and 5xx, a timeout or a broken connection are worth another try here; any other answer is a refusal. Leasing,
retries and the record are email's (`app.domain.outgoing`): at least once (the request carries the message's `id` for gateways that
deduplicate)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.domain import outgoing
from app.domain.outgoing import Handed
from app.domain.sealing import Unsealable
from app.domain.sms import service
from app.domain.sms.models import Sms, SmsGateway
from app.domain.templates.render import render_one
from app.logging import log
from app.settings import Settings


def _now() -> datetime:
    return datetime.now(UTC)


async def hand_over(settings: Settings, http: httpx.AsyncClient, gw: SmsGateway, message_id: UUID, to: str,
                    text: str) -> Handed:
    """One request to the gateway for one text."""
    context = {"to": to, "sender": gw.sender, "text": text, "id": str(message_id)}
    try:
        url = render_one(gw.url, context)
        body = render_one(gw.body_template, context).encode() if gw.method != "GET" else None
    except ValueError as exc:
        return Handed("refused", f"the gateway settings do not render: {exc}")
    try:
        headers = service.headers_of(settings, gw)
    except Unsealable as exc:
        return Handed("refused", f"the gateway's headers: {exc.detail}")
    return await outgoing.hand_over(http, gw.method, url, body, headers,
                                    settings.mail_timeout_seconds, settings.allow_private_networks, "the gateway")


async def due(session: AsyncSession, limit: int = 1000) -> list[tuple[UUID, UUID]]:
    return await outgoing.due(session, Sms, limit)


async def send(db: Database, settings: Settings, http: httpx.AsyncClient, org_id: UUID, sms_id: UUID,
               lease_seconds: float) -> tuple[str, list[tuple[UUID, UUID]]]:
    """-> (outcome, events written): `skipped`, `sent`, `retry in <s>` or `failed`."""
    sms = await outgoing.lease(db, Sms, org_id, sms_id, lease_seconds)
    if sms is None:
        return "skipped", []
    async with db.for_org(org_id) as session:
        gw = await service.gateway(session, org_id)
    handed = Handed("refused", "SMS is not configured any more") if gw is None else \
        await hand_over(settings, http, gw, sms.id, sms.to_phone, sms.text)
    outcome: str
    values: dict[str, Any]
    if handed.outcome == "sent":
        outcome, values = "sent", {"status": "sent", "sent_at": _now(), "gateway_answer": handed.detail[:500],
                                   "error": None, "next_attempt_at": None, "attempts": sms.attempts + 1}
    else:
        outcome, values = outgoing.not_sent(sms.attempts + 1, settings.mail_retry_schedule,
                                            handed.outcome == "refused", handed.detail)
    log.info("sms_attempt", sms_id=str(sms_id), outcome=outcome, detail=handed.detail[:200])
    return outcome, await outgoing.record(db, Sms, "sms", org_id, sms_id, outcome, values, service.dump)
