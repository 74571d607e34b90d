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
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, Select, bindparam, func, null, or_, select, update
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds, locks, records
from app.domain.activities import service as activities
from app.domain.auth.models import Role, User
from app.domain.auth.principal import Principal
from app.domain.contacts import service as contacts
from app.domain.contacts.models import Contact
from app.domain.custom_fields import service as custom_fields
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate
from app.domain.errors import ValidationFailed
from app.domain.events import service as events
from app.domain.forms.intake import CONTROL, Extracted, Incoming, Turns, candidates, clean, extract, next_assignee
from app.domain.forms.intake import tracking as tracking_of
from app.domain.forms.models import Form, FormSubmission, SlaTimer
from app.domain.forms.schemas import SubmissionRead
from app.domain.kinds import BOUND, reader_params
from app.domain.leads import service as leads
from app.domain.leads.models import OPEN_STATUSES, Lead


async def accept(session: AsyncSession, form: Form, inc: Incoming, now: datetime,
                 turns: Turns | None = None) -> FormSubmission:
    """Everything a genuine submission causes, in the caller's transaction. A new person's submission costs
    four statements after the form's: what the writes need (the org's region, custom fields, `now()`), the
    person's lock, the matches and the available assignees, then every row (lead, note, call task,
    submission, call-back timer) with its events in one."""
    try:
        return await _accept(session, form, inc, now, turns)
    finally:
        session.info.pop(records.HELD, None)  # a failure left rows held: they go with the rolled-back work


async def _accept(session: AsyncSession, form: Form, inc: Incoming, now: datetime,
                  turns: Turns | None) -> FormSubmission:
    if records.transaction_now(session) is None or any(
            ("custom_fields", form.org_id, kind) not in records.memo(session) for kind in ("lead", "activity")):
        await records.prime(session, form.org_id, None, "lead", "activity")  # (read with the form by the API)
    extracted = extract(form, inc.fields, await records.phone_region(session, form.org_id))
    if not (extracted.lead or extracted.note):
        raise ValidationFailed("the submission has no usable fields (name, email, phone, company or a message)",
                               loc=("body",))
    email, phone = extracted.lead.get("email"), extracted.lead.get("phone")
    submission = _submission(form, inc, now, invalid_fields=extracted.invalid or None)
    utm = submission.utm
    name = " ".join(p for p in (extracted.lead.get("first_name"), extracted.lead.get("last_name")) if p) \
        or email or phone or extracted.lead.get("company_name") or "web visitor"
    await locks.keys(session, *locks.person(form.org_id, email, phone))
    contact, lead, eligible = await _matches(session, form, email, phone)
    deal = None
    held = False
    if contact is not None:
        submission.matched, owner = "contact", contact.owner_id
        submission.contact_id = contact.id
    elif lead is not None:
        submission.matched, owner = "lead", lead.owner_id
        submission.lead_id = lead.id
        await _fill_lead(session, form, lead, extracted)
    else:
        owner = await next_assignee(session, form, turns, eligible)
        if owner is not None:  # read as active (and present) by this transaction just now
            records.memo(session)[("user", form.org_id, owner)] = True
        who = _as_form(form, owner)
        if form.creates == "lead":
            records.hold_inserts(session)  # the lead, the activities and the submission go in one statement
            held = True
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
    if not held:
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
    timer = SlaTimer(org_id=form.org_id, form_id=form.id, submission_id=submission.id, activity_id=task.id,
                     lead_id=submission.lead_id, contact_id=submission.contact_id, deal_id=submission.deal_id,
                     due_at=due)
    if held:
        rows = [records.row_of(FormSubmission, submission)]
        timer.submission_id = submission.id
        rows.append(records.row_of(SlaTimer, timer))
        submitted = events.prepare(who, form.org_id, [("form.submitted", "form", form.id, form.version, {
            "object": SubmissionRead.model_validate(submission).model_dump(mode="json")})])
        await records.write_held(session, form.org_id, rows, [submitted])
        return submission
    session.add(timer)
    await events.emit(session, who, "form.submitted", "form", form.id, form.org_id,
                      {"object": SubmissionRead.model_validate(submission).model_dump(mode="json")}, form.version)
    await session.flush()
    return submission


@lru_cache(maxsize=4)
def _matching(by_email: bool, by_phone: bool) -> Select[Any]:
    """`_matches`'s statement, built once per shape with bound values (building costs more than running it)."""
    def same_person(model: Any) -> Any:  # as `records.same_person`, with the values bound (email lower-cased)
        conditions = ([model.email == bindparam("email")] if by_email else []) + (
            [model.phone == bindparam("phone")] if by_phone else [])
        return or_(*conditions) if conditions else None

    contact_match, lead_match = same_person(Contact), same_person(Lead)
    contact_id: Any = null() if contact_match is None else (
        select(Contact.id).where(kinds.CONTACT.readable(BOUND), contact_match)
        .order_by(Contact.created_at, Contact.id).limit(1).scalar_subquery())
    lead_id: Any = null() if lead_match is None else (
        select(Lead.id).where(kinds.LEAD.readable(BOUND), Lead.status.in_(OPEN_STATUSES), lead_match)
        .order_by(Lead.created_at, Lead.id).limit(1).scalar_subquery())
    present = select(func.array_agg(User.id)).where(
        User.org_id == bindparam("org_id"), User.id == func.any(bindparam("wanted", type_=ARRAY(PGUUID(as_uuid=True)))),
        User.active.is_(True), User.out_of_office.is_(False), User.deleted_at.is_(None)).scalar_subquery()
    return select(contact_id.label("contact_id"), lead_id.label("lead_id"), present.label("present"))


async def _matches(session: AsyncSession, form: Form, email: str | None,
                   phone: str | None) -> tuple[Contact | None, Lead | None, list[UUID]]:
    """The match rule's contact and open lead (see the module), and the form's assignees who can take work now
    (`assignment.available`), in one statement; a matched record is then loaded."""
    org_id = form.org_id
    wanted = candidates(form)
    row = (await session.execute(_matching(bool(email), bool(phone)), {
        **reader_params(org_id), "email": email.lower() if email else None, "phone": phone,
        "wanted": wanted})).one()
    contact = None if row.contact_id is None else await session.get(Contact, {"org_id": org_id, "id": row.contact_id})
    lead = None if contact is not None or row.lead_id is None else await session.get(
        Lead, {"org_id": org_id, "id": row.lead_id})
    found = set(row.present or ())
    return contact, lead, [u for u in wanted if u in found]


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
