"""Telephony: the provider's settings (admins), calls logged on the timelines of the records they belong to, and
click-to-call requests queued for a worker (`app.domain.telephony.originate`).

A call (`POST /v1/calls`, or the provider's signed event) is matched by the customer's number (`from` when
inbound, `to` when outbound) in E.164, read in the org's `default_phone_region`: the oldest contact with it, else
the oldest open lead. An unknown inbound number becomes a lead (`source: phone`) for the next of the settings'
`assignees` (round-robin, `app.domain.assignment`) with a call-back task. Every call is logged as a done `call`
activity; a missed call also opens a call-back task for the owner of the record it belongs to. Twins (the same
new number calling twice at once) take the person lock of `app.domain.flows` rule 2 first: one lead.

Matching is organisation-wide: a number is one person's whoever logs the call. The writes that follow are the
caller's when it sees every record, else the telephony line's (a system actor), so that a caller whose record
visibility is limited still logs the call on the record it belongs to."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import assignment, kinds, locks
from app.domain.activities import service as activities
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.contacts import service as contacts
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.domain.events import service as events
from app.domain.leads import service as leads
from app.domain.normalize import normalize_phone
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, org_settings, require_user
from app.domain.sealing import seal, unseal
from app.domain.telephony.models import Call, CallOrigination, TelephonySettings
from app.domain.telephony.schemas import MASK, CallCreate, OriginateIn, OriginationRead, TelephonySettingsIn, masked
from app.ids import new_id
from app.settings import Settings

CALL = Kind.of(kinds.CALL)
SORTS = {"created_at": Call.created_at}
JOBS = "originate_jobs"
CALL_BACK_WITHIN = timedelta(minutes=15)  # a call-back task is due this long after the call is logged


def _now() -> datetime:
    return datetime.now(UTC)


# --- settings --------------------------------------------------------------------------------------------


async def settings_of(session: AsyncSession, org_id: UUID, for_update: bool = False) -> TelephonySettings | None:
    stmt = select(TelephonySettings).where(TelephonySettings.org_id == org_id)
    return await session.scalar(stmt.with_for_update() if for_update else stmt)


async def get_settings(session: AsyncSession, org_id: UUID) -> TelephonySettings:
    found = await settings_of(session, org_id)
    if found is None:
        raise NotFound("Telephony is not configured: PUT /v1/settings/telephony")
    return found


def secrets_of(settings: Settings, row: TelephonySettings) -> dict[str, str | None]:
    return unseal(settings, row.sealed_secrets)


def webhook_path(org_id: UUID) -> str:
    return f"/v1/public/telephony/{org_id}/calls"


def dump_settings(settings: Settings, row: TelephonySettings) -> dict[str, Any]:
    secrets = secrets_of(settings, row)
    return {"originate_url": row.originate_url, "auth_header": masked(secrets.get("auth_header")),
            "webhook_secret": masked(secrets.get("webhook_secret")), "assignees": [str(u) for u in row.assignees],
            "webhook_path": webhook_path(row.org_id), "updated_at": row.updated_at.isoformat(),
            "version": row.version}


async def put_settings(session: AsyncSession, settings: Settings, org_id: UUID, body: TelephonySettingsIn,
                       expected_version: int | None) -> TelephonySettings:
    """Replace the settings whole; a secret sent as the mask keeps its stored value."""
    for i, user_id in enumerate(body.assignees):
        try:
            await require_user(session, org_id, user_id, "assignees")
        except ValidationFailed:
            raise ValidationFailed(f"assignees.{i}: must be an active user of your organisation",
                                   loc=("body", "assignees", i)) from None
    row = await settings_of(session, org_id, for_update=True)
    kept = secrets_of(settings, row) if row is not None else {}
    secrets: dict[str, str | None] = {}
    for name in ("auth_header", "webhook_secret"):
        value = getattr(body, name)
        if value == MASK:
            if not kept.get(name):
                raise ValidationFailed(f"{name}: no stored value to keep; send the real value", loc=("body", name))
            value = kept[name]
        secrets[name] = value
    values = {"originate_url": body.originate_url, "sealed_secrets": seal(settings, secrets),
              "assignees": list(dict.fromkeys(body.assignees))}
    if row is None:
        if expected_version is not None:
            check_version(0, expected_version)
        row = TelephonySettings(org_id=org_id, **values)
        session.add(row)
    else:
        check_version(row.version, expected_version)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = _now()
    await session.flush()
    await session.refresh(row)
    return row


# --- calls -----------------------------------------------------------------------------------------------


def e164(raw: str, region: str | None, field: str, where: str = "body") -> str:
    try:
        return normalize_phone(raw, region)
    except ValueError as exc:
        raise ValidationFailed(f"{field}: {exc}", loc=(where, field)) from None


def line(org_id: UUID, user_id: UUID | None) -> Principal:
    """The telephony line as an actor: the provider's events, and writes a limited caller could not make."""
    return Principal(org_id, "system", org_id, Role.member, frozenset(["*"]), user_id)


def _minutes(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


async def existing_event(session: AsyncSession, org_id: UUID, event_id: str) -> Call | None:
    return await session.scalar(select(Call).where(Call.org_id == org_id, Call.event_id == event_id))


async def record_call(session: AsyncSession, who: Principal, body: CallCreate,
                      event_id: str | None = None) -> tuple[Call, bool]:
    """Log one call (see the module's docstring). `event_id`: the provider's webhook-id; a call already stored
    under it is answered again, not stored twice. -> (the call, whether it was stored now)."""
    org_id = who.org_id
    region = (await org_settings(session, org_id)).default_phone_region
    inbound = body.direction == "inbound"
    from_phone, to_phone = body.from_.strip(), body.to.strip()
    customer = e164(from_phone if inbound else to_phone, region, "from" if inbound else "to")
    if inbound:
        from_phone = customer
        to_phone = _maybe_e164(to_phone, region)
    else:
        to_phone = customer
        from_phone = _maybe_e164(from_phone, region)
    keys = locks.person(org_id, None, customer)
    if event_id is not None:
        keys.append(f"telephony-event:{org_id}:{event_id}")
    await locks.keys(session, *keys)
    if event_id is not None:
        found = await existing_event(session, org_id, event_id)
        if found is not None:
            return found, False
    user_id = body.user_id or (who.user_id if who.type == "user" else None)
    if body.user_id is not None:
        await require_user(session, org_id, body.user_id, "user_id")

    contact = await contacts.find_by_email_or_phone(session, org_id, None, customer)
    lead = None if contact is not None else await leads.find_open_by_email_or_phone(session, org_id, None, customer)
    record_owner = contact.owner_id if contact is not None else lead.owner_id if lead is not None else None
    writer = who if kinds.sees_all(who) else line(org_id, user_id or record_owner or who.user_id)
    now = _now()
    task_id = None
    if contact is None and lead is None and inbound:
        owner = await _next_assignee(session, org_id, user_id)
        if owner is None:
            raise Conflict("No active user can take a lead for this caller")
        lead = await leads.create(session, writer, {
            "title": f"Call from {customer}", "phone": customer, "source": "phone", "status": "new",
            "owner_id": owner, "external_ids": []})
        record_owner = owner
        task_id = await _call_back(session, writer, customer, owner, None, lead.id, now)
    elif body.status == "missed":
        owner = record_owner or user_id or writer.user_id or await assignment.first_admin(session, org_id)
        if owner is not None:
            task_id = await _call_back(session, writer, customer, owner, contact.id if contact else None,
                                       lead.id if lead else None, now)
    owner = user_id or record_owner or writer.user_id or await assignment.first_admin(session, org_id)
    outcome = body.status if body.status != "answered" else _minutes(body.duration_seconds)
    activity = await activities.create(session, writer, {
        "type": "call", "subject": f"{'Inbound call from' if inbound else 'Outbound call to'} {customer} "
                                   f"({outcome})",
        "body": f"Recording: {body.recording_url}" if body.recording_url else None,
        "done_at": body.started_at + timedelta(seconds=body.duration_seconds), "owner_id": owner,
        "assignee_id": owner, "contact_id": contact.id if contact else None, "lead_id": lead.id if lead else None,
        "priority": "normal"}, responds=not inbound or body.status == "answered")
    call = Call(org_id=org_id, id=new_id(), direction=body.direction, from_phone=from_phone, to_phone=to_phone,
                started_at=body.started_at, duration_seconds=body.duration_seconds, status=body.status,
                recording_url=body.recording_url, user_id=user_id, contact_id=contact.id if contact else None,
                lead_id=lead.id if lead else None, activity_id=activity.id, task_id=task_id, event_id=event_id)
    session.add(call)
    await session.flush()
    await events.emit(session, who, "call.created", "call", call.id, org_id, {"object": CALL.dump(call)},
                      call.version)
    return call, True


def _maybe_e164(raw: str, region: str | None) -> str:
    """Our side of a call: E.164 when it is a phone number, else as given (an extension, `anonymous`)."""
    if sum(ch.isdigit() for ch in raw) < 6:  # an extension (`200`) is no number of the region
        return raw[:40]
    try:
        return normalize_phone(raw, region)
    except ValueError:
        return raw[:40]


async def _next_assignee(session: AsyncSession, org_id: UUID, fallback: UUID | None) -> UUID | None:
    row = await settings_of(session, org_id)

    async def turn() -> int:
        return await session.scalar(  # type: ignore[return-value]
            update(TelephonySettings).where(TelephonySettings.org_id == org_id)
            .values(round_robin=TelephonySettings.round_robin + 1, version=TelephonySettings.version,
                    updated_at=TelephonySettings.updated_at)
            .returning(TelephonySettings.round_robin).execution_options(synchronize_session=False))

    return await assignment.next_assignee(session, org_id, list(row.assignees) if row else [], turn, fallback)


async def _call_back(session: AsyncSession, writer: Principal, customer: str, owner: UUID, contact_id: UUID | None,
                     lead_id: UUID | None, now: datetime) -> UUID:
    task = await activities.create(session, writer, {
        "type": "task", "subject": f"Call back {customer}", "due_at": now + CALL_BACK_WITHIN, "owner_id": owner,
        "assignee_id": owner, "contact_id": contact_id, "lead_id": lead_id, "priority": "high"})
    return task.id


def filters(contact_id: UUID | None, lead_id: UUID | None, user_id: UUID | None,
            status: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for column, value in ((Call.contact_id, contact_id), (Call.lead_id, lead_id), (Call.user_id, user_id),
                          (Call.status, status)):
        if value is not None:
            where.append(column == value)
    return where


async def list_calls(session: AsyncSession, who: Principal, page: PageRequest,
                     where: Iterable[ColumnElement[bool]]) -> Page[Call]:
    return await keyset_page(session, CALL.readable(who).where(*where), page, SORTS, Call.id)


def dump(call: Call) -> dict[str, Any]:
    return CALL.dump(call)


# --- click-to-call ---------------------------------------------------------------------------------------


async def originate(session: AsyncSession, who: Principal, body: OriginateIn) -> CallOrigination:
    row = await settings_of(session, who.org_id)
    if row is None or not row.originate_url:
        raise Conflict("Click-to-call is not configured: an admin sets originate_url in PUT /v1/settings/telephony")
    region = (await org_settings(session, who.org_id)).default_phone_region
    to = e164(body.to, region, "to")
    user_id = body.user_id or who.user_id
    if user_id is None:
        raise ValidationFailed("user_id: required for this caller (whose phone rings first)", loc=("body", "user_id"))
    await require_user(session, who.org_id, user_id, "user_id")
    origination = CallOrigination(org_id=who.org_id, id=new_id(), status="queued", to_phone=to, user_id=user_id,
                                  created_by=who.user_id, next_attempt_at=_now())
    session.add(origination)
    await session.flush()
    session.info.setdefault(JOBS, []).append((origination.org_id, origination.id))
    return origination


def committed_originate_jobs(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    return session.info.pop(JOBS, [])


def dump_origination(row: CallOrigination) -> dict[str, Any]:
    return OriginationRead.model_validate(row).model_dump(mode="json")
