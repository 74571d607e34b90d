"""A website form submission read: its shape checked, bots told apart, fields mapped and cleaned, tracking
parameters found, and the rep whose turn it is. What it then causes is `app.domain.flows.form_intake`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import assignment
from app.domain.errors import ValidationFailed
from app.domain.forms.models import Form, FormSubmission
from app.domain.forms.schemas import TARGETS
from app.domain.normalize import normalize_phone
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


def spam_reason(form: Form, fields: dict[str, str], now: datetime) -> str | None:
    """`honeypot` (the hidden `_hp` field was filled), `too_fast` (sent sooner than `min_fill_seconds` after
    `_ts`, the time the form was shown in milliseconds since the epoch, or without a readable `_ts`), else None."""
    if fields.get("_hp", "").strip():
        return "honeypot"
    if form.min_fill_seconds:
        try:
            shown = datetime.fromtimestamp(int(fields.get("_ts", "")) / 1000, tz=now.tzinfo)
        except (ValueError, OverflowError, OSError):
            return "too_fast"
        if (now - shown).total_seconds() < form.min_fill_seconds:
            return "too_fast"
    return None


def tracking(inc: Incoming) -> dict[str, str | None]:
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
    invalid: dict[str, dict[str, str]] = field(default_factory=dict)  # field -> {value, reason}: kept, not used
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
                out.invalid[name] = {"value": value, "reason": "not a valid email"}
        elif target == "phone":
            try:
                out.lead["phone"] = normalize_phone(value[:40], region)
            except ValueError:
                out.extra[f"{name} (not a valid phone)"] = value
                out.invalid[name] = {"value": value, "reason": "not a valid phone number"}
        else:
            out.lead[target] = value[: LIMITS[target]]
    lines = notes + [f"{k}: {v}" for k, v in out.extra.items()]
    out.note = "\n".join(lines)[:MAX_VALUE] if lines else None
    return out


# A shared counter outside the transaction (the API passes one kept in Redis): -> the form's next turn,
# or None when it is unavailable.
Turns = Callable[[Form], Awaitable[int | None]]


async def next_assignee(session: AsyncSession, form: Form, turns: Turns | None = None,
                        eligible: list[UUID] | None = None) -> UUID:
    """Round-robin among the form's active, not out-of-office assignees (`app.domain.assignment`). Falls back
    to any active admin. The turn comes from `turns` when given: the form's own counter needs its row lock,
    which would queue every concurrent submission of a busy form behind one another until commit."""
    async def turn() -> int:
        counted = await turns(form) if turns is not None else None
        if counted is not None:
            return counted
        return await session.scalar(  # type: ignore[return-value]
            update(Form).where(Form.org_id == form.org_id, Form.id == form.id)
            .values(round_robin=Form.round_robin + 1, version=Form.version, updated_at=Form.updated_at)
            .returning(Form.round_robin).execution_options(synchronize_session=False))

    return await assignment.next_assignee(  # type: ignore[return-value]
        session, form.org_id, candidates(form), turn, eligible=eligible)


def candidates(form: Form) -> list[UUID]:
    return list(form.assignees or [form.created_by])


async def existing(session: AsyncSession, form: Form, idempotency_key: str) -> FormSubmission | None:
    return await session.scalar(select(FormSubmission).where(
        FormSubmission.org_id == form.org_id, FormSubmission.form_id == form.id,
        FormSubmission.idempotency_key == idempotency_key))
