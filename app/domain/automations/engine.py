"""What a run does: its conditions read the run's object as the API shows it, its actions write through the
same services the API calls (so an action the API would refuse fails with the API's reason), acting as the
automation (`Principal` type `automation`, its `depth` in every event it writes)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import httpx
import orjson
from pydantic import ValidationError
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds
from app.domain.activities import service as activities
from app.domain.auth.models import Role, User
from app.domain.auth.principal import Principal
from app.domain.automations.models import Automation
from app.domain.companies import service as companies
from app.domain.companies.schemas import CompanyUpdate
from app.domain.contacts import service as contacts
from app.domain.contacts.schemas import ContactUpdate
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealUpdate
from app.domain.errors import CRMError, ValidationFailed
from app.domain.leads import service as leads
from app.domain.leads.schemas import LeadUpdate
from app.domain.mail import service as mail
from app.domain.mail.schemas import EmailSend
from app.domain.outbound import BlockedDestination, is_temporary, post
from app.domain.records import Kind
from app.domain.sms import service as sms
from app.domain.sms.schemas import SmsSend
from app.domain.teams.models import Team, TeamMember
from app.domain.templates import service as templates
from app.domain.webhooks import signing
from app.settings import Settings

OBJECTS = ("deal", "contact", "lead", "company", "activity")
UPDATERS: dict[str, tuple[Any, Any]] = {
    "deal": (deals.update, DealUpdate), "contact": (contacts.update, ContactUpdate),
    "lead": (leads.update, LeadUpdate), "company": (companies.update, CompanyUpdate),
}


class ActionFailed(Exception):
    """The action could not be done; its message is the run's reason."""


class TryLater(Exception):
    """A temporary failure (no answer, a broken connection, 408, 425, 429 or 5xx): the action is tried again."""


@dataclass(frozen=True)
class Outbound:
    """What `webhook` actions send with: the worker's HTTP client and the webhook timeout and network rules."""

    settings: Settings
    client: httpx.AsyncClient


def acting(rule: Automation, depth: int) -> Principal:
    """The automation as a caller: every scope, the org's records unlimited, its writes at `depth + 1`."""
    return Principal(rule.org_id, "automation", rule.id, Role.owner, frozenset(["*"]), rule.created_by, depth + 1)


async def load(session: AsyncSession, who: Principal | UUID, object_type: str, object_id: UUID) -> dict[str, Any]:
    kind = Kind.of(kinds.named(object_type))
    return kind.dump(await kind.get(session, who, object_id))


async def actual(session: AsyncSession, who: Principal | UUID, object_type: str, record: dict[str, Any],
                 path: str) -> Any:
    """The value at `path` (`deal.value.amount`, `deal.cf.region`, `contact.tags`): on the run's object, or on
    the contact or company a deal, lead or activity links to."""
    head, *rest = path.split(".")
    if head != object_type:
        linked = record.get(f"{head}_id")
        if head not in ("contact", "company") or not linked:
            return None
        record = await load(session, who, head, UUID(str(linked)))
    value: Any = record
    for i, part in enumerate(rest):
        if part == "cf" and i == 0:
            part = "custom_fields"
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _same(a: Any, b: Any) -> bool:
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return x == y
    return str(a).lower() == str(b).lower() if a is not None and b is not None else a is b


def holds(op: str, actual_value: Any, value: Any) -> bool:
    """One condition; amounts compare as decimals, other values as text (ISO dates order as text)."""
    if op == "is_empty":
        empty = actual_value in (None, "", [], {})
        return empty if value in (None, True) else not empty
    if op == "eq":
        return _same(actual_value, value)
    if op == "neq":
        return not _same(actual_value, value)
    if op == "in":
        return isinstance(value, list) and any(_same(actual_value, v) for v in value)
    if op == "contains":
        if isinstance(actual_value, list):
            return any(_same(item, value) for item in actual_value)
        return isinstance(actual_value, str) and str(value).lower() in actual_value.lower()
    if actual_value is None or value is None:
        return False
    x, y = _number(actual_value), _number(value)
    left, right = (x, y) if x is not None and y is not None else (str(actual_value), str(value))
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


async def check(session: AsyncSession, who: Principal | UUID, object_type: str, record: dict[str, Any],
                conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in conditions:
        value = await actual(session, who, object_type, record, c["field"])
        out.append({"field": c["field"], "op": c["op"], "value": c.get("value"), "actual": value,
                    "passed": holds(c["op"], value, c.get("value"))})
    return out


# --- actions ---------------------------------------------------------------------------------------------


async def _active(session: AsyncSession, org_id: UUID, user_ids: list[UUID]) -> list[UUID]:
    found = set(await session.scalars(select(User.id).where(
        User.org_id == org_id, User.id.in_(user_ids), User.active.is_(True), User.out_of_office.is_(False))))
    return [u for u in user_ids if u in found]


async def assignee(session: AsyncSession, rule: Automation, spec: dict[str, Any], record: dict[str, Any]) -> UUID:
    """owner (the object's), user, manager (the owner's, else the manager of a team of the owner's) or
    round-robin over users or a team's members (active, not out of office), turning per rule."""
    kind = spec["type"]
    owner = record.get("owner_id")
    if kind == "owner":
        if not owner:
            raise ActionFailed("the object has no owner")
        return UUID(str(owner))
    if kind == "user":
        return UUID(str(spec["user_id"]))
    if kind == "manager":
        if not owner:
            raise ActionFailed("the object has no owner, hence no manager")
        manager = await session.scalar(select(User.manager_id).where(User.org_id == rule.org_id,
                                                                      User.id == UUID(str(owner))))
        if manager is None:
            manager = await session.scalar(select(Team.manager_id).join(TeamMember, and_(
                TeamMember.org_id == Team.org_id, TeamMember.team_id == Team.id)).where(
                Team.org_id == rule.org_id, TeamMember.user_id == UUID(str(owner)), Team.deleted_at.is_(None),
                Team.manager_id.is_not(None)).order_by(Team.created_at).limit(1))
        if manager is None:
            raise ActionFailed("the owner has no manager")
        return manager
    candidates = [UUID(str(u)) for u in spec.get("user_ids") or []]
    if spec.get("team_id"):
        candidates += list(await session.scalars(select(TeamMember.user_id).where(
            TeamMember.org_id == rule.org_id, TeamMember.team_id == UUID(str(spec["team_id"])))
            .order_by(TeamMember.user_id)))
    pool = await _active(session, rule.org_id, list(dict.fromkeys(candidates)))
    if not pool:
        raise ActionFailed("nobody to assign: no active user who is not out of office")
    turn = await session.scalar(update(Automation).where(Automation.org_id == rule.org_id, Automation.id == rule.id)
                                .values(round_robin=Automation.round_robin + 1).returning(Automation.round_robin))
    return pool[(int(turn or 1) - 1) % len(pool)]


def _due(spec: dict[str, Any] | None, record: dict[str, Any], now: datetime) -> datetime | None:
    if not spec:
        return None
    if spec.get("in_minutes") is not None:
        return now + timedelta(minutes=spec["in_minutes"])
    raw = _walk(record, spec["field"].split(".")[1:])
    if raw is None:
        raise ActionFailed(f"due: {spec['field']} is empty")
    at = datetime.fromisoformat(str(raw))
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at + timedelta(minutes=spec.get("offset_minutes") or 0)


def _walk(record: dict[str, Any], parts: list[str]) -> Any:
    value: Any = record
    for i, part in enumerate(parts):
        value = value.get("custom_fields" if part == "cf" and i == 0 else part) if isinstance(value, dict) else None
    return value


def _patch(object_type: str, path: str, value: Any, record: dict[str, Any]) -> Any:
    """The API's PATCH body for one field (`deal.value.amount` sets the value, `<obj>.cf.<key>` one custom
    field), validated as the API validates it."""
    _, model = UPDATERS[object_type]
    head, *rest = path.split(".")
    if head != object_type or not rest:
        raise ActionFailed(f"{path}: update_field writes fields of the run's {object_type}")
    if rest[0] == "cf" and len(rest) == 2:
        body: dict[str, Any] = {"custom_fields": {rest[1]: value}}
    elif rest == ["value", "amount"] and object_type == "deal":
        body = {"value": {"amount": value, "currency": record["value"]["currency"]}}
    elif len(rest) == 1:
        body = {rest[0]: value}
    else:
        raise ActionFailed(f"{path}: not a field that can be set")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ActionFailed(f"{path}: {exc.errors()[0]['msg']}") from None


async def _update(session: AsyncSession, who: Principal, object_type: str, object_id: UUID, patch: Any) -> dict:
    if object_type not in UPDATERS:
        raise ActionFailed(f"a {object_type} cannot be changed by an automation")
    updater, _ = UPDATERS[object_type]
    obj = await updater(session, who, object_id, patch, None)
    return {"version": obj.version}


async def perform(session: AsyncSession, rule: Automation, who: Principal, object_type: str, object_id: UUID,
                  action: dict[str, Any], now: datetime, record: dict[str, Any] | None = None) -> Any:
    """Do one action; -> its result. ActionFailed (or the API's own error) when it cannot be done. `record`:
    the object as read in this transaction when nothing has changed it since (else it is read again)."""
    if record is None:
        record = await load(session, who, object_type, object_id)
    kind = action["type"]
    if kind == "create_task":
        user = await assignee(session, rule, action.get("assignee") or {"type": "owner"}, record)
        link = {f"{object_type}_id": object_id} if object_type in ("deal", "contact", "lead", "company") else {
            f"{t}_id": record.get(f"{t}_id") for t in ("deal", "contact", "lead", "company")}
        task = await activities.create(session, who, {
            "type": "task", "subject": action["subject"], "assignee_id": user, "owner_id": user,
            "due_at": _due(action.get("due"), record, now), **link})
        return {"activity_id": str(task.id), "assignee_id": str(user)}
    if kind == "update_field":
        return await _update(session, who, object_type, object_id,
                             _patch(object_type, action["field"], action.get("value"), record))
    if kind == "add_tag":
        if "tags" not in record:
            raise ActionFailed(f"a {object_type} has no tags")
        if action["tag"] in record["tags"]:
            return {"unchanged": True}
        return await _update(session, who, object_type, object_id,
                             UPDATERS[object_type][1].model_validate({"tags": [*record["tags"], action["tag"]]}))
    if kind == "move_stage":
        if object_type != "deal":
            raise ActionFailed("move_stage moves deals")
        return await _update(session, who, "deal", object_id, DealUpdate(stage_id=action["stage_id"]))
    if kind == "assign_owner":
        user = await assignee(session, rule, action["assignee"], record)
        return {"owner_id": str(user), **await _update(session, who, object_type, object_id,
                                                       UPDATERS[object_type][1](owner_id=user))}
    contact_id = object_id if object_type == "contact" else record.get("contact_id")
    if not contact_id:
        raise ActionFailed(f"the {object_type} has no contact to write to")
    contact_id = UUID(str(contact_id))
    rendered = await templates.render_for(session, rule.org_id, action["template_id"], contact_id, who.user_id)
    contact = await load(session, who, "contact", contact_id)
    links = {f"{t}_id": object_id for t in ("deal", "lead") if t == object_type}
    if kind == "send_sms":
        if not contact.get("phone"):
            raise ActionFailed("the contact has no phone")
        if (contact.get("consent") or {}).get("sms") == "unsubscribed":
            raise ActionFailed("the contact unsubscribed from SMS")
        text = rendered["text"] or ""
        queued = await sms.queue_sms(session, who, SmsSend(to=contact["phone"], text=text[:1600], contact_id=contact_id,
                                                           **{k: v for k, v in links.items() if k == "deal_id"}))
        return {"sms_id": str(queued.id)}
    to = await _address(session, rule, action["to"], contact, record)
    body = EmailSend(mailbox_id=action["mailbox_id"], to=[to], subject=rendered["subject"] or "",
                     text=rendered["text"], html=rendered["html"] if rendered["html"] else None,
                     contact_id=contact_id, **links)
    email = await mail.queue_email(session, who, body)
    return {"email_id": str(email.id)}


async def _address(session: AsyncSession, rule: Automation, to: str, contact: dict[str, Any],
                   record: dict[str, Any]) -> str:
    if to == "contact":
        if not contact.get("email"):
            raise ActionFailed("the contact has no email address")
        if (contact.get("consent") or {}).get("email") == "unsubscribed":
            raise ActionFailed("the contact unsubscribed from email")
        return str(contact["email"])
    if to in ("owner", "manager"):
        user = await assignee(session, rule, {"type": to}, record)
        email = await session.scalar(select(User.email).where(User.org_id == rule.org_id, User.id == user))
        if not email:
            raise ActionFailed(f"the {to} has no email address")
        return str(email)
    return to


async def call_webhook(out: Outbound | None, secret: str, url: str, message_id: str,
                       payload: dict[str, Any]) -> dict[str, Any]:
    """POST `payload` to `url` signed with `secret` (Standard Webhooks, as webhook deliveries are), through the
    SSRF guard; -> `{status_code}` on 2xx. TryLater for what may pass, ActionFailed for what will not."""
    if out is None:
        raise ActionFailed("webhooks are called by workers")
    body = orjson.dumps(payload)
    headers = signing.headers(secret, message_id, int(time.time()), body)
    try:
        response = await post(out.client, url, body, headers, out.settings.webhook_timeout_seconds,
                              out.settings.allow_private_networks)
    except BlockedDestination as exc:
        raise ActionFailed(f"blocked: {exc}") from None
    except httpx.TimeoutException:
        raise TryLater("the receiver did not answer in time") from None
    except httpx.HTTPError as exc:
        raise TryLater(f"connection: {type(exc).__name__}") from None
    if response.is_success:
        return {"status_code": response.status_code}
    if is_temporary(response.status_code):
        raise TryLater(f"HTTP {response.status_code}")
    raise ActionFailed(f"HTTP {response.status_code} {response.text[:200]}".strip())


def explain(exc: Exception) -> str:
    if isinstance(exc, ValidationFailed):
        errors = getattr(exc, "errors", None)
        return f"{exc}" + (f": {errors}" if errors else "")
    if isinstance(exc, CRMError | ActionFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
