"""A website form submission becomes a lead (or a deal), reaches a rep, and carries a call-back promise.

Match rule (documented in the API): the submission's email (case-insensitive) or phone (E.164 in the
org's region) is looked up first among contacts, then among open leads (new, working, qualified); the
oldest match wins. A matching contact gets a `form_submission` timeline entry and a call task for its
owner; a matching lead gets the same, with its empty fields filled from the submission; otherwise a new
lead (or contact + deal) is created with `source: web_form`, assigned round-robin. Submissions of one person
arriving together queue on the person's keys (the locking rule in `app.domain.flows`): the first creates, the
others match what it created.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import locks
from app.domain.activities import service as activities
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.contacts import service as contacts
from app.domain.custom_fields import service as custom_fields
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate
from app.domain.errors import ValidationFailed
from app.domain.events import service as events
from app.domain.forms.intake import CONTROL, Extracted, Incoming, Turns, clean, extract, next_assignee
from app.domain.forms.intake import tracking as tracking_of
from app.domain.forms.models import Form, FormSubmission, SlaTimer
from app.domain.forms.schemas import SubmissionRead
from app.domain.leads import service as leads
from app.domain.leads.models import Lead
from app.domain.records import org_settings


async def accept(session: AsyncSession, form: Form, inc: Incoming, now: datetime,
                 turns: Turns | None = None) -> FormSubmission:
    """Everything a genuine submission causes, in the caller's transaction."""
    org = await org_settings(session, form.org_id)
    extracted = extract(form, inc.fields, org.default_phone_region)
    if not (extracted.lead or extracted.note):
        raise ValidationFailed("the submission has no usable fields (name, email, phone, company or a message)",
                               loc=("body",))
    email, phone = extracted.lead.get("email"), extracted.lead.get("phone")
    submission = _submission(form, inc, now, invalid_fields=extracted.invalid or None)
    utm = submission.utm
    name = " ".join(p for p in (extracted.lead.get("first_name"), extracted.lead.get("last_name")) if p) \
        or email or phone or extracted.lead.get("company_name") or "web visitor"
    await locks.keys(session, *locks.person(form.org_id, email, phone))
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


def _submission(form: Form, inc: Incoming, now: datetime, **extra: Any) -> FormSubmission:
    """The submission as it came: its fields (without the control fields), tracking, client."""
    tracking = tracking_of(inc)
    utm = {k[4:]: v for k, v in tracking.items() if k.startswith("utm_") and v} or None
    values: dict[str, Any] = dict(
        org_id=form.org_id, form_id=form.id, received_at=now,
        fields={k: clean(v) for k, v in inc.fields.items() if k not in CONTROL},
        utm=utm, gclid=tracking["gclid"], fbclid=tracking["fbclid"], page_url=tracking["page_url"],
        referrer=tracking["referrer"], user_agent=(inc.user_agent or "")[:500] or None, ip=inc.ip,
        idempotency_key=inc.idempotency_key, matched="none")
    return FormSubmission(**{**values, **extra})


async def keep_spam(session: AsyncSession, form: Form, inc: Incoming, now: datetime, reason: str) -> FormSubmission:
    """A dropped submission (honeypot, too fast, rate limited): kept with its reason and counted on the form,
    nothing else happens (no lead, no task, no event). The purge deletes it after CRM_FORM_SPAM_RETENTION_DAYS."""
    submission = _submission(form, inc, now, status="spam", spam_reason=reason,
                             idempotency_key=None)
    session.add(submission)
    await session.execute(  # bookkeeping: neither the form's version (its ETag) nor updated_at moves
        update(Form).where(Form.org_id == form.org_id, Form.id == form.id)
        .values(spam_count=Form.spam_count + 1, last_spam_at=now).execution_options(synchronize_session=False))
    await session.flush()
    return submission


def _as_form(form: Form, owner: UUID) -> Principal:
    """Writes made by a form act as the form (events show actor type `form`), owned by the assignee."""
    return Principal(form.org_id, "form", form.id, Role.member, frozenset(["*"]), owner)


async def _fill_lead(session: AsyncSession, form: Form, lead: Lead, extracted: Extracted) -> None:
    before = leads.LEAD.dump(lead)
    for key in ("first_name", "last_name", "email", "phone", "company_name", "title"):
        if extracted.lead.get(key) and not getattr(lead, key):
            setattr(lead, key, extracted.lead[key])
    await leads.LEAD.updated(session, _as_form(form, lead.owner_id), lead, before)


def _custom_fields_for(extracted: Extracted, known: set[str]) -> dict[str, Any]:
    return {k: v for k, v in extracted.custom.items() if k in known}
