"""Messages sent by workers one at a time, email, SMS and click-to-call requests alike: a `queued` row is leased
by one worker, handed over (SMTP server, SMS gateway, telephony provider), then recorded `sent`, `failed`, or
queued again after a back-off (`CRM_MAIL_RETRY_SCHEDULE`), with `<object>.sent` / `<object>.failed` in the same
commit (for rows that have events). A worker dying between the hand-over and the record leaves the lease to
expire: the message goes again (at least once).

`hand_over` is the one HTTP request to a provider (SMS gateway, telephony provider) and how its answer is read:
2xx took it; 408, 425, 429 and 5xx, a timeout or a broken connection are worth another try; any other answer
is a refusal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.domain.events import service as events
from app.domain.outbound import BlockedDestination, is_temporary, request

SYSTEM = {"type": "system", "id": None}


def _now() -> datetime:
    return datetime.now(UTC)


async def due(session: AsyncSession, model: Any, limit: int = 1000) -> list[tuple[UUID, UUID]]:
    """Queued rows whose time came and whose lease (if any) expired: new, retried, or left by a dead worker."""
    now = _now()
    rows = await session.execute(select(model.org_id, model.id).where(
        model.status == "queued", model.next_attempt_at <= now,
        or_(model.leased_until.is_(None), model.leased_until < now)).order_by(model.next_attempt_at).limit(limit))
    return [(r.org_id, r.id) for r in rows]


async def lease(db: Database, model: Any, org_id: UUID, row_id: UUID, seconds: float) -> Any | None:
    """The row, leased to this worker; None when it is not due, not queued, or another worker holds it."""
    now = _now()
    async with db.for_org(org_id) as session:
        return (await session.execute(
            update(model).where(model.org_id == org_id, model.id == row_id, model.status == "queued",
                                model.next_attempt_at <= now,
                                or_(model.leased_until.is_(None), model.leased_until < now))
            .values(leased_until=now + timedelta(seconds=seconds))
            .returning(model).execution_options(synchronize_session=False))).scalar_one_or_none()


@dataclass(frozen=True)
class Handed:
    outcome: str  # sent | temporary (not taken: try again) | unknown (may have been taken) | refused
    detail: str


async def hand_over(http: httpx.AsyncClient, method: str, url: str, body: bytes | None, headers: dict[str, str],
                    timeout_seconds: float, allow_private: bool, party: str = "the provider") -> Handed:
    """One request to a provider's HTTP endpoint (public hosts only, unless private networks are allowed);
    `party` names it in the details ("the gateway")."""
    try:
        response = await request(http, method, url, body, headers, timeout_seconds, allow_private)
    except BlockedDestination as exc:
        return Handed("refused", str(exc))
    except ValueError as exc:  # no http(s) URL
        return Handed("refused", f"{party}'s URL is invalid: {exc}")
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # nothing was sent
        return Handed("temporary", f"{type(exc).__name__}: {exc}")
    except httpx.TimeoutException:
        return Handed("unknown", f"{party} did not answer in time")
    except httpx.HTTPError as exc:
        return Handed("unknown", f"{type(exc).__name__}: {exc}")
    answer = f"{response.status_code} {response.text[:400]}".strip()
    if response.is_success:
        return Handed("sent", answer)
    if is_temporary(response.status_code):
        return Handed("temporary", answer)
    return Handed("refused", answer)


def not_sent(attempts: int, schedule: list[float], final: bool, error: str) -> tuple[str, dict[str, Any]]:
    """After a failed attempt: `failed` (a refusal, or the schedule is spent) or `retry in <s>`, with the row's
    new values."""
    if final or attempts > len(schedule):
        return "failed", {"status": "failed", "error": error[:500], "next_attempt_at": None, "attempts": attempts}
    delay = schedule[attempts - 1]
    return f"retry in {delay:g}", {"error": error[:500], "next_attempt_at": _now() + timedelta(seconds=delay),
                                   "attempts": attempts}


async def record(db: Database, model: Any, object_type: str, org_id: UUID, row_id: UUID, outcome: str,
                 values: dict[str, Any], dump: Callable[[Any], dict[str, Any]] | None) -> list[tuple[UUID, UUID]]:
    """The attempt's outcome, committed with its event when it is final (`dump=None`: rows without events).
    -> the events written."""
    async with db.for_org(org_id) as session:
        stored = (await session.execute(
            update(model).where(model.org_id == org_id, model.id == row_id)
            .values(**values, leased_until=None, updated_at=_now(), version=model.version + 1)
            .returning(model).execution_options(synchronize_session=False))).scalar_one()
        if outcome in ("sent", "failed") and dump is not None:
            await events.emit(session, SYSTEM, f"{object_type}.{outcome}", object_type, stored.id, org_id,
                              {"object": dump(stored)}, stored.version)
        return events.committed_event_ids(session)
