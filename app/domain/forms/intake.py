"""A website form submission becomes a lead (or a deal), reaches a rep, and carries a call-back promise.

Match rule (documented in the API): the submission's email (case-insensitive) or phone (E.164 in the
org's region) is looked up first among contacts, then among open leads (new, working, qualified); the
oldest match wins. A matching contact gets a `form_submission` timeline entry and a call task for its
owner; a matching lead gets the same, with its empty fields filled from the submission; otherwise a new
lead (or contact + deal) is created with `source: web_form`, assigned round-robin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities import service as activities
from app.domain.auth.models import Role, User
from app.domain.auth.principal import Principal
from app.domain.contacts import service as contacts
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate
from app.domain.errors import ValidationFailed
from app.domain.events import service as events
from app.domain.forms.models import Form, FormSubmission, SlaTimer
from app.domain.forms.schemas import TARGETS, SubmissionRead
from app.domain.leads import service as leads
from app.domain.normalize import normalize_phone
from app.domain.records import org_settings
from app.domain.schemas import normalize_email
from app.domain.text import plain_text

MAX_FIELDS = 50
MAX_NAME = 64
MAX_VALUE = 5000
LIMITS = {"first_name": 100, "last_name": 100, "email": 320, "phone": 40, "company_name": 200, "title": 200,
          "note": MAX_VALUE}
TRACKING = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid", "page_url",
            "referrer")
CONTROL = {"_hp", "_ts"}


@dataclass
class Incoming:
    fields: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    referer_header: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    idempotency_key: str | None = None


def clean(value: str) -> str:
    """Plain text only: tags and control characters go (nothing renders as HTML later)."""
    return plain_text(value)


def validate_shape(fields: dict[str, Any]) -> dict[str, str]:
    """Strict limits before anything else: count, name and value lengths, scalar values."""
    if len(fields) > MAX_FIELDS:
        raise ValidationFailed(f"at most {MAX_FIELDS} fields", loc=("body",))
    out: dict[str, str] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise ValidationFailed(f"field names are 1..{MAX_NAME} characters", loc=("body",))
        if isinstance(value, bool) or value is None:
            value = "" if value is None else str(value).lower()
        if isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            raise ValidationFailed("field values must be text", loc=("body", name))
        if len(value) > MAX_VALUE:
            raise ValidationFailed(f"at most {MAX_VALUE} characters", loc=("body", name))
        out[name] = value
    return out


def is_bot(form: Form, fields: dict[str, str], now: datetime) -> bool:
    """Honeypot filled, or filled faster than a person could (needs the snippet's `_ts`)."""
    if fields.get("_hp", "").strip():
        return True
    if form.min_fill_seconds:
        try:
            shown = datetime.fromtimestamp(int(fields.get("_ts", "")) / 1000, tz=now.tzinfo)
        except (ValueError, OverflowError, OSError):
            return True
        return (now - shown).total_seconds() < form.min_fill_seconds
    return False


def _tracking(inc: Incoming) -> dict[str, str | None]:
    """UTM and click ids from the body, else from the submission URL's or page_url's query string."""
    page_query: dict[str, str] = {}
    page_url = inc.fields.get("page_url")
    if page_url:
        page_query = {k: v[0] for k, v in parse_qs(urlsplit(page_url).query).items()}
    out: dict[str, str | None] = {}
    for key in TRACKING:
        value = inc.fields.get(key) or inc.query.get(key) or page_query.get(key)
        out[key] = clean(value)[:2048] if value else None
    out["referrer"] = out["referrer"] or (clean(inc.referer_header)[:2048] if inc.referer_header else None)
    return out


@dataclass
class Extracted:
    lead: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    note: str | None = None


def extract(form: Form, fields: dict[str, str], region: str | None) -> Extracted:
    out = Extracted()
    notes: list[str] = []
    for name, raw in fields.items():
        if name in CONTROL or name in TRACKING:
            continue
        value = clean(raw)
        if not value:
            continue
        target = form.field_map.get(name) or (name if name in TARGETS else None)
        if target is None and name in ("name", "full_name", "your_name"):
            first, _, last = value.partition(" ")
            out.lead.setdefault("first_name", first[:100])
            if last:
                out.lead.setdefault("last_name", last.strip()[:100])
            continue
        if target is None:
            out.extra[name] = value
        elif target == "note":
            notes.append(value)
        elif target.startswith("cf."):
            out.custom[target[3:]] = value
        elif target == "email":
            try:
                out.lead["email"] = normalize_email(value[:320])
            except ValueError:
                out.extra[f"{name} (not a valid email)"] = value
        elif target == "phone":
            try:
                out.lead["phone"] = normalize_phone(value[:40], region)
            except ValueError:
                out.extra[f"{name} (not a valid phone)"] = value
        else:
            out.lead[target] = value[: LIMITS[target]]
    lines = notes + [f"{k}: {v}" for k, v in out.extra.items()]
    out.note = "\n".join(lines)[:MAX_VALUE] if lines else None
    return out


# A shared counter outside the transaction (the API passes one kept in Redis): -> the form's next turn,
# or None when it is unavailable.
Turns = Callable[[Form], Awaitable[int | None]]


async def next_assignee(session: AsyncSession, form: Form, turns: Turns | None = None) -> UUID:
    """Round-robin among the form's active, not out-of-office assignees. Falls back to the creator, then to
    any active admin. The turn comes from `turns` when given: the form's own counter needs its row lock,
    which would queue every concurrent submission of a busy form behind one another until commit."""
    candidates = list(form.assignees or [form.created_by])
    rows = await session.scalars(select(User.id).where(
        User.org_id == form.org_id, User.id.in_(candidates), User.active.is_(True),
        User.out_of_office.is_(False), User.deleted_at.is_(None)))
    available = set(rows)
    eligible = [u for u in candidates if u in available]
    if not eligible:
        fallback = await session.scalar(select(User.id).where(
            User.org_id == form.org_id, User.active.is_(True), User.deleted_at.is_(None),
            User.role.in_([Role.owner.value, Role.admin.value])).order_by(User.created_at).limit(1))
        return fallback
    turn = await turns(form) if turns is not None else None
    if turn is None:
        turn = await session.scalar(
            update(Form).where(Form.org_id == form.org_id, Form.id == form.id)
            .values(round_robin=Form.round_robin + 1, version=Form.version, updated_at=Form.updated_at)
            .returning(Form.round_robin).execution_options(synchronize_session=False))
    return eligible[(turn - 1) % len(eligible)]


def _custom_fields_for(extracted: Extracted, known: set[str]) -> dict[str, Any]:
    return {k: v for k, v in extracted.custom.items() if k in known}


async def accept(session: AsyncSession, form: Form, inc: Incoming, now: datetime,
                 turns: Turns | None = None) -> FormSubmission:
    """Everything a genuine submission causes, in the caller's transaction."""
    org = await org_settings(session, form.org_id)
    extracted = extract(form, inc.fields, org.default_phone_region)
    if not (extracted.lead or extracted.note):
        raise ValidationFailed("the submission has no usable fields (name, email, phone, company or a message)",
                               loc=("body",))
    tracking = _tracking(inc)
    utm = {k[4:]: v for k, v in tracking.items() if k.startswith("utm_") and v} or None
    email, phone = extracted.lead.get("email"), extracted.lead.get("phone")
    submission = FormSubmission(
        org_id=form.org_id, form_id=form.id, received_at=now,
        fields={k: clean(v) for k, v in inc.fields.items() if k not in CONTROL},
        utm=utm, gclid=tracking["gclid"], fbclid=tracking["fbclid"], page_url=tracking["page_url"],
        referrer=tracking["referrer"], user_agent=(inc.user_agent or "")[:500] or None, ip=inc.ip,
        idempotency_key=inc.idempotency_key, matched="none")
    name = " ".join(p for p in (extracted.lead.get("first_name"), extracted.lead.get("last_name")) if p) \
        or email or phone or extracted.lead.get("company_name") or "web visitor"
    from app.domain.custom_fields import service as custom_fields

    contact = await contacts.find_by_email_or_phone(session, form.org_id, email, phone)
    lead = None if contact else await leads.find_open_by_email_or_phone(session, form.org_id, email, phone)
    deal = None
    if contact is not None:
        submission.matched, owner = "contact", contact.owner_id
        submission.contact_id = contact.id
    elif lead is not None:
        submission.matched, owner = "lead", lead.owner_id
        submission.lead_id = lead.id
        await _fill_lead(session, form, lead, extracted)
    else:
        owner = await next_assignee(session, form, turns)
        who = _as_form(form, owner)
        if form.creates == "lead":
            defs = await custom_fields.definitions(session, form.org_id, "lead")
            lead = await leads.create(session, who, {
                **{k: extracted.lead.get(k) for k in ("first_name", "last_name", "email", "phone", "company_name",
                                                      "title")},
                "title": extracted.lead.get("title") or f"{form.name}: {name}"[:200],
                "source": "web_form", "utm": utm, "owner_id": owner, "status": "new", "external_ids": [],
                "custom_fields": _custom_fields_for(extracted, set(defs)),
            }, form_id=form.id)
            submission.lead_id = lead.id
        else:
            defs = await custom_fields.definitions(session, form.org_id, "contact")
            contact = await contacts.create(session, who, {
                **{k: extracted.lead.get(k) for k in ("first_name", "last_name", "email", "phone")},
                "last_name": extracted.lead.get("last_name") or (None if extracted.lead.get("first_name") or email
                                                                 or phone else name),
                "title": extracted.lead.get("title"), "source": "web_form", "utm": utm, "owner_id": owner,
                "tags": [], "external_ids": [], "custom_fields": _custom_fields_for(extracted, set(defs)),
            })
            deal = await deals.create(session, who, DealCreate(title=f"{form.name}: {name}"[:200],
                                                               pipeline_id=form.pipeline_id, contact_id=contact.id))
            submission.contact_id, submission.deal_id = contact.id, deal.id
    session.add(submission)
    await session.flush()

    who = _as_form(form, owner)
    links = {"lead_id": submission.lead_id, "contact_id": submission.contact_id, "deal_id": submission.deal_id}
    if extracted.note:
        await activities.create(session, who, {"type": "note", "subject": f"Web form: {form.name}",
                                               "body": extracted.note, **links, "owner_id": owner})
    due = now + timedelta(minutes=form.sla_minutes)
    task = await activities.create(session, who, {
        "type": "call", "subject": f"Call back {name} (web form: {form.name})"[:300], "due_at": due,
        "assignee_id": owner, "owner_id": owner, "priority": "high", **links})
    session.add(SlaTimer(org_id=form.org_id, form_id=form.id, submission_id=submission.id, activity_id=task.id,
                         lead_id=submission.lead_id, contact_id=submission.contact_id, deal_id=submission.deal_id,
                         due_at=due))
    await events.emit(session, who, "form.submitted", "form", form.id, form.org_id,
                      {"object": SubmissionRead.model_validate(submission).model_dump(mode="json")}, form.version)
    await session.flush()
    return submission


def _as_form(form: Form, owner: UUID) -> Principal:
    """Writes made by a form act as the form (events show actor type `form`), owned by the assignee."""
    return Principal(form.org_id, "form", form.id, Role.member, frozenset(["*"]), owner)


async def _fill_lead(session: AsyncSession, form: Form, lead: Any, extracted: Extracted) -> None:
    before = leads.LEAD.dump(lead)
    for key in ("first_name", "last_name", "email", "phone", "company_name", "title"):
        if extracted.lead.get(key) and not getattr(lead, key):
            setattr(lead, key, extracted.lead[key])
    await leads.LEAD.updated(session, _as_form(form, lead.owner_id), lead, before)


async def existing(session: AsyncSession, form: Form, idempotency_key: str) -> FormSubmission | None:
    return await session.scalar(select(FormSubmission).where(
        FormSubmission.org_id == form.org_id, FormSubmission.form_id == form.id,
        FormSubmission.idempotency_key == idempotency_key))
