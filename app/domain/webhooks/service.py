"""Webhook endpoints (admin CRUD), fan-out of events into deliveries, and one delivery attempt."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from uuid import UUID

import httpx
import orjson
from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.errors import NotFound
from app.domain.events import service as events
from app.domain.outbound import BlockedDestination, post
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, changed
from app.domain.webhooks import signing
from app.domain.webhooks.models import WebhookDelivery, WebhookEndpoint
from app.domain.webhooks.schemas import DeliveryRead, WebhookCreate, WebhookRead, WebhookUpdate
from app.ids import new_id
from app.settings import Settings

WEBHOOK = Kind(WebhookEndpoint, "webhook", "Webhook", WebhookRead)
SORTS = {"created_at": WebhookEndpoint.created_at}
DELIVERY_SORTS = {"created_at": WebhookDelivery.created_at}


def _now() -> datetime:
    return datetime.now(UTC)


async def create(session: AsyncSession, actor: Principal, body: WebhookCreate) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(org_id=actor.org_id, url=body.url, events=list(dict.fromkeys(body.events)),
                               description=body.description, enabled=body.enabled, secret=signing.new_secret())
    return await WEBHOOK.created(session, actor, endpoint)


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest) -> Page[WebhookEndpoint]:
    return await keyset_page(session, WEBHOOK.scoped(org_id), page, SORTS, WebhookEndpoint.id)


async def update_endpoint(session: AsyncSession, actor: Principal, endpoint_id: UUID, patch: WebhookUpdate,
                          expected_version: int | None) -> WebhookEndpoint:
    endpoint = await WEBHOOK.get(session, actor.org_id, endpoint_id, for_update=True)
    check_version(endpoint.version, expected_version)
    before = WEBHOOK.dump(endpoint)
    for key, value in patch.model_dump(exclude_unset=True).items():
        if value is None and key != "description":
            continue
        setattr(endpoint, key, value)
    if patch.enabled:
        endpoint.disabled_reason, endpoint.failing_since = None, None
    return await WEBHOOK.updated(session, actor, endpoint, before)


async def rotate_secret(session: AsyncSession, actor: Principal, endpoint_id: UUID) -> WebhookEndpoint:
    endpoint = await WEBHOOK.get(session, actor.org_id, endpoint_id, for_update=True)
    before = WEBHOOK.dump(endpoint)
    endpoint.secret = signing.new_secret()
    endpoint.updated_at = _now()
    await session.flush()
    await WEBHOOK.emit(session, actor, endpoint, "updated", previous=changed(before, WEBHOOK.dump(endpoint)) or {})
    return endpoint


def matches(patterns: list[str], event_type: str) -> bool:
    return any(p == "*" or fnmatchcase(event_type, p) for p in patterns)


def envelope(event: Any) -> dict[str, Any]:
    """The event as webhooks and the changes feed show it."""
    return {
        "id": str(event.id), "type": event.type, "object_type": event.object_type, "object_id": str(event.object_id),
        "action": event.action, "occurred_at": event.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"), "actor": event.actor,
        "version": event.version, "data": event.data,
    }


async def fan_out_many(session: AsyncSession, org_id: UUID, events: list[Any]) -> list[tuple[UUID, UUID]]:
    """One pending delivery per enabled endpoint whose filter matches each of a batch of one org's events;
    idempotent. The endpoints are read once, the deliveries written in one executemany (none when nothing
    matches). -> [(org_id, delivery_id)]."""
    endpoints = (await session.execute(WEBHOOK.scoped(org_id).where(WebhookEndpoint.enabled.is_(True))
                                       .with_only_columns(WebhookEndpoint.id, WebhookEndpoint.events))).all()
    if not endpoints:
        return []
    now = _now()
    rows = []
    for event in events:
        targets = [e for e in endpoints if matches(e.events, event.type)]
        if targets:
            body = envelope(event)
            rows += [{"org_id": org_id, "id": new_id(), "endpoint_id": e.id, "event_id": event.id,
                      "event_type": event.type, "payload": body, "status": "pending", "attempts": [],
                      "attempt_count": 0, "next_attempt_at": now, "created_at": now, "updated_at": now}
                     for e in targets]
    if not rows:
        return []
    # executemany (insertmanyvalues): pages of rows, never past the driver's 32,767 parameters
    created = await session.execute(
        insert(WebhookDelivery).on_conflict_do_nothing(
            index_elements=["org_id", "endpoint_id", "event_id"]).returning(WebhookDelivery.org_id, WebhookDelivery.id),
        rows)
    return [(r.org_id, r.id) for r in created]


async def ping(session: AsyncSession, actor: Principal, endpoint_id: UUID) -> WebhookDelivery:
    """A `webhook.test` ping to this endpoint (not written to the changes feed)."""
    endpoint = await WEBHOOK.get(session, actor.org_id, endpoint_id)
    now = _now()
    delivery_id = new_id()
    payload = {"id": str(delivery_id), "type": "webhook.test", "object_type": "webhook", "object_id": str(endpoint.id),
               "action": "test", "occurred_at": now.isoformat(), "actor": actor.actor, "version": endpoint.version,
               "data": {"object": WEBHOOK.dump(endpoint)}}
    delivery = WebhookDelivery(org_id=actor.org_id, id=delivery_id, endpoint_id=endpoint.id, event_id=None,
                               event_type="webhook.test", payload=payload, status="pending", attempts=[],
                               attempt_count=0, next_attempt_at=now, created_at=now, updated_at=now)
    session.add(delivery)
    await session.flush()
    send_after_commit(session, delivery)
    return delivery


async def get_delivery(session: AsyncSession, org_id: UUID, endpoint_id: UUID, delivery_id: UUID) -> WebhookDelivery:
    delivery = await session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.org_id == org_id, WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id == delivery_id))
    if delivery is None:
        raise NotFound("Delivery not found")
    return delivery


async def list_deliveries(session: AsyncSession, org_id: UUID, endpoint_id: UUID, page: PageRequest,
                          status: str | None) -> Page[WebhookDelivery]:
    await WEBHOOK.get(session, org_id, endpoint_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.org_id == org_id, WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    return await keyset_page(session, stmt, page, DELIVERY_SORTS, WebhookDelivery.id)


async def retry(session: AsyncSession, org_id: UUID, endpoint_id: UUID, delivery_id: UUID) -> WebhookDelivery:
    """Manual replay: the delivery becomes pending again and goes out now (same webhook-id)."""
    delivery = await get_delivery(session, org_id, endpoint_id, delivery_id)
    delivery.status, delivery.next_attempt_at, delivery.leased_until = "pending", _now(), None
    delivery.updated_at = _now()
    await session.flush()
    send_after_commit(session, delivery)
    return delivery


def send_after_commit(session: AsyncSession, delivery: WebhookDelivery) -> None:
    """Ask the caller to enqueue this delivery once the transaction has committed."""
    session.info.setdefault("delivery_ids", []).append((delivery.org_id, delivery.id))


def committed_delivery_ids(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    return session.info.pop("delivery_ids", [])


def dump_delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    return DeliveryRead.model_validate(delivery).model_dump(mode="json")


# --- one attempt, run by the worker ------------------------------------------------------------------


async def claim(session: AsyncSession, org_id: UUID, delivery_id: UUID, lease_seconds: float) -> Any:
    """Lease a due, pending delivery so only one worker sends it; None when it is not due or taken."""
    now = _now()
    row = (await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.org_id == org_id, WebhookDelivery.id == delivery_id,
               WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
               or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
        .values(leased_until=now + timedelta(seconds=lease_seconds))
        .returning(WebhookDelivery)
    )).scalar_one_or_none()
    if row is None:
        return None
    endpoint = await session.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.org_id == org_id, WebhookEndpoint.id == row.endpoint_id))
    if endpoint is None or endpoint.deleted_at is not None or not endpoint.enabled:
        # Switched off or deleted since the delivery was written: no further attempts.
        row.status, row.next_attempt_at, row.leased_until, row.updated_at = "failed", None, None, now
        await session.flush()
        return None
    return row, endpoint


async def send(settings: Settings, client: httpx.AsyncClient, delivery: WebhookDelivery,
               endpoint: WebhookEndpoint) -> dict[str, Any]:
    """POST the payload, signed; -> the attempt record. Never raises for network trouble."""
    body = orjson.dumps(delivery.payload)
    timestamp = int(time.time())
    headers = signing.headers(endpoint.secret, str(delivery.id), timestamp, body)  # webhook-id = the log row id
    started = time.perf_counter()
    attempt: dict[str, Any] = {"at": _now().isoformat(), "status_code": None}
    try:
        response = await post(client, endpoint.url, body, headers, settings.webhook_timeout_seconds,
                              settings.allow_private_networks)
        attempt["status_code"] = response.status_code
        if not 200 <= response.status_code < 300:
            attempt["error"] = f"HTTP {response.status_code}"
    except BlockedDestination as exc:
        attempt["error"] = f"blocked: {exc}"
    except httpx.TimeoutException:
        attempt["error"] = "timeout"
    except httpx.HTTPError as exc:
        attempt["error"] = f"connection: {type(exc).__name__}"
    attempt["duration_ms"] = int((time.perf_counter() - started) * 1000)
    return attempt


async def record(session: AsyncSession, settings: Settings, org_id: UUID, delivery_id: UUID,
                 attempt: dict[str, Any]) -> float | None:
    """Store the attempt's outcome; -> seconds until the next attempt, or None when done."""
    delivery = await session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.org_id == org_id, WebhookDelivery.id == delivery_id).with_for_update())
    endpoint = await session.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.org_id == org_id, WebhookEndpoint.id == delivery.endpoint_id).with_for_update())
    now = _now()
    delivery.attempts = [*delivery.attempts, attempt]
    delivery.attempt_count += 1
    delivery.leased_until, delivery.updated_at = None, now
    code = attempt.get("status_code")
    if code is not None and 200 <= code < 300:
        delivery.status, delivery.next_attempt_at = "succeeded", None
        await _failing_since(session, endpoint, None)
        await session.flush()
        return None
    if endpoint.failing_since is None:
        await _failing_since(session, endpoint, now)
    if code == 410:
        await disable(session, endpoint, "the receiver answered 410 Gone")
    elif (now - endpoint.failing_since).total_seconds() >= settings.webhook_disable_after_seconds:
        await disable(session, endpoint, "every attempt failed for too long")
    retries = settings.webhook_retry_schedule
    if not endpoint.enabled or delivery.attempt_count > len(retries):
        delivery.status, delivery.next_attempt_at = "failed", None
        await session.flush()
        return None
    delay = retries[delivery.attempt_count - 1]
    delay *= 1 + random.uniform(-settings.webhook_retry_jitter, settings.webhook_retry_jitter)
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    await session.flush()
    return delay


async def _failing_since(session: AsyncSession, endpoint: WebhookEndpoint, since: datetime | None) -> None:
    """The endpoint starts or stops failing: a change clients read, so a version with its `webhook.updated`."""
    if endpoint.failing_since != since:
        before = WEBHOOK.dump(endpoint)
        endpoint.failing_since = since
        await WEBHOOK.updated(session, None, endpoint, before)


async def disable(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    if not endpoint.enabled:
        return
    before = WEBHOOK.dump(endpoint)
    endpoint.enabled, endpoint.disabled_reason = False, reason
    await WEBHOOK.updated(session, None, endpoint, before)
    await events.emit(session, None, "webhook.disabled", "webhook", endpoint.id, endpoint.org_id,
                      {"object": WEBHOOK.dump(endpoint), "reason": reason}, endpoint.version)
    # Deliveries still waiting for this endpoint will not be sent.
    await session.execute(
        update(WebhookDelivery).where(and_(WebhookDelivery.org_id == endpoint.org_id,
                                           WebhookDelivery.endpoint_id == endpoint.id,
                                           WebhookDelivery.status == "pending"))
        .values(status="failed", next_attempt_at=None).execution_options(synchronize_session=False))


async def due_deliveries(session: AsyncSession, older_than_seconds: float, limit: int = 1000) -> list[tuple[UUID, UUID, int]]:
    """Pending deliveries whose time has come and that nobody holds: the sweeper re-enqueues them."""
    now = _now()
    rows = await session.execute(
        select(WebhookDelivery.org_id, WebhookDelivery.id, WebhookDelivery.attempt_count)
        .where(WebhookDelivery.status == "pending",
               WebhookDelivery.next_attempt_at <= now - timedelta(seconds=older_than_seconds),
               or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now))
        .order_by(WebhookDelivery.next_attempt_at).limit(limit))
    return [(r.org_id, r.id, r.attempt_count) for r in rows]
