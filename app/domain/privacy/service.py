"""GDPR: everything held about one person (export) and its removal (erasure).

What belongs to the person: the contact, the leads linked to it (`leads.contact_id`, e.g. the lead it was
converted from), the activities linked to either, the form submissions of either, and the events of all of
these (the changes feed and the webhook history, which are copies of the events). Deals linked to the contact
are the organisation's business: they are exported, and kept on erasure.

Personal data, per table (what erasure clears; ids, timestamps, owners, statuses, deal values and stages stay,
so counts and reports stay as they were):
- contacts: names, email, phone, title, birthday, address, utm, custom field values, external ids. The row
  stays as an anonymised, soft-deleted tombstone marked `erased_at` (never restored), so that deals,
  activities and the changes feed still point at a record, and a sync client reading `contact.erased` knows
  which one to drop.
- leads: title, names, email, phone, utm, custom field values, external ids; the person's name, email and
  phone are cut out of `company_name`.
- activities: subject (becomes "(erased)"), body, custom field values.
- form_submissions: the submitted fields, utm, click ids, page, referrer, user agent, IP.
- deals: only the person's name, email and phone where they appear in the title (a form names its deals
  after the visitor).
- events: in `data` (object, previous and the other parts: a converted lead's contact, an SLA breach's title)
  the fields above are cleared and the person's name, email and phone are cut out of every other text;
  webhook deliveries carry the scrubbed payload (also those still to be sent).
- notifications about these records: their titles.
- mail (see `_erase_mail`) and texts (SMS): a text's words, and the person's number it went to; campaign
  recipient rows keep their outcome but not the address or number.
- files attached to the contact or its leads: their rows and their bytes (the bytes once the erasure has
  committed, `forget_erased_files`); their names are cleared from their events.
- lookups that would still find the person: external_refs rows, import dedupe keys (email, phone).

Erasure runs inline, in the request's transaction, before the 202: the work is bounded by one person's
records and every statement uses an (org_id, <link>) index, so it takes milliseconds; it is all-or-nothing
(no half-erased person is ever visible, nothing is lost if a process dies: it committed or it did not); and
a second call is answered the same (idempotent). The 202 says what is outside this database: receivers of
webhooks already sent and backups keep their copies until they expire.

Files of past imports (the uploaded sheets on disk) are not rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    DateTime,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds, locks
from app.domain.activities.models import Activity
from app.domain.audit import service as audit
from app.domain.auth.principal import Principal
from app.domain.campaigns.models import Recipient
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal
from app.domain.documents import storage as document_storage
from app.domain.documents.models import Document
from app.domain.events import service as events
from app.domain.events.models import Event
from app.domain.external_refs import ExternalRef
from app.domain.files import service as files
from app.domain.files.models import StoredFile
from app.domain.files.storage import storage_for
from app.domain.forms.models import FormSubmission
from app.domain.forms.schemas import SubmissionRead
from app.domain.imports.models import ImportKey
from app.domain.leads.models import Lead
from app.domain.mail.models import Email
from app.domain.mail.sync import file_path
from app.domain.notifications.models import Notification
from app.domain.records import Kind
from app.domain.sms.models import Sms
from app.domain.telephony.models import Call
from app.domain.webhooks.service import envelope
from app.settings import Settings

ERASED = "(erased)"

CONTACT_BLANK: dict[str, Any] = {
    "first_name": None, "last_name": None, "email": None, "phone": None, "title": None, "birthday": None,
    "address": None, "utm": None, "custom_fields": {}, "external_ids": []}
LEAD_BLANK: dict[str, Any] = {
    "title": None, "first_name": None, "last_name": None, "email": None, "phone": None, "utm": None,
    "custom_fields": {}, "external_ids": []}
ACTIVITY_BLANK: dict[str, Any] = {"subject": ERASED, "body": None, "custom_fields": {}}
SUBMISSION_BLANK: dict[str, Any] = {
    "fields": {}, "utm": None, "gclid": None, "fbclid": None, "page_url": None, "referrer": None,
    "user_agent": None, "ip": None}
NOTIFICATION_BLANK: dict[str, Any] = {"title": ERASED}
SMS_BLANK: dict[str, Any] = {"text": ERASED}
FILE_BLANK: dict[str, Any] = {"filename": ERASED}
ERASED_FILES = "erased_file_keys"  # session.info: storage keys whose bytes go once the erasure has committed
ERASED_LETTERS = "erased_letter_keys"  # session.info: the PDFs of letters to the person, likewise

CONTACT: Kind[Contact] = Kind.of(kinds.CONTACT)
EMAIL = Kind.of(kinds.EMAIL)
SMS = Kind.of(kinds.SMS)
DOCUMENT = Kind.of(kinds.DOCUMENT)
CALL = Kind.of(kinds.CALL)
LEAD = Kind.of(kinds.LEAD)
ACTIVITY = Kind.of(kinds.ACTIVITY)
DEAL = Kind.of(kinds.DEAL)

# The areas an export reads besides the contact: the caller must be allowed to read each of them.
EXPORT_SCOPES = ("activities:read", "deals:read", "leads:read", "changes:read", "mail:read", "calls:read",
                 "documents:read", "files:read")

# Webhook deliveries are copies of the events: they take the scrubbed `data` (also those still to be sent).
_COPY_SCRUBBED = text(
    "UPDATE webhook_deliveries d SET payload = jsonb_set(d.payload, '{data}', e.data), updated_at = :now "
    "FROM events e WHERE d.org_id = :org_id AND e.org_id = :org_id AND e.id = d.event_id AND e.id = ANY(:ids)"
).bindparams(bindparam("org_id", type_=PGUUID(as_uuid=True)), bindparam("ids", type_=ARRAY(PGUUID(as_uuid=True))),
             bindparam("now", type_=DateTime(timezone=True)))

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --- export ---------------------------------------------------------------------------------------------


async def export(session: AsyncSession, who: Principal, contact_id: UUID) -> dict[str, Any]:
    """The contact (one `who` may read, else 404) and every linked record `who` may read, soft-deleted ones
    included, each in its read model, and their events."""
    contact = await CONTACT.get(session, who, contact_id)
    leads = list(await session.scalars(LEAD.readable(who, include_deleted=True)
                                       .where(Lead.contact_id == contact.id).order_by(Lead.created_at, Lead.id)))
    lead_ids = [x.id for x in leads]
    activities = list(await session.scalars(
        ACTIVITY.readable(who, include_deleted=True).where(_activities_of(contact.id, lead_ids))
        .order_by(Activity.created_at, Activity.id)))
    deals = list(await session.scalars(DEAL.readable(who, include_deleted=True)
                                       .where(Deal.contact_id == contact.id).order_by(Deal.created_at, Deal.id)))
    submissions = list(await session.scalars(
        select(FormSubmission).where(FormSubmission.org_id == who.org_id, _submissions_of(contact.id, lead_ids))
        .order_by(FormSubmission.received_at, FormSubmission.id)))
    mail = list(await session.scalars(EMAIL.readable(who, include_deleted=True)
                                      .where(_emails_of(contact.id, lead_ids)).order_by(Email.sent_at, Email.id)))
    texts = list(await session.scalars(SMS.readable(who, include_deleted=True)
                                       .where(_texts_of(contact.id, lead_ids)).order_by(Sms.created_at, Sms.id)))
    deal_ids = [d.id for d in deals]
    documents = list(await session.scalars(
        DOCUMENT.readable(who, include_deleted=True).where(_documents_of(contact.id, deal_ids))
        .order_by(Document.created_at, Document.id)))
    # the files of the contact and of the leads above (deleted ones too): those records are the caller's to read
    attached = list(await session.scalars(select(StoredFile).where(
        StoredFile.org_id == who.org_id, files.of_person(contact.id, lead_ids))
        .order_by(StoredFile.created_at, StoredFile.id)))
    calls = list(await session.scalars(CALL.readable(who, include_deleted=True)
                                       .where(_calls_of(contact.id, lead_ids)).order_by(Call.created_at, Call.id)))
    found = await session.scalars(_events_statement(
        who.org_id, contact.id, lead_ids, [a.id for a in activities], deal_ids, [],
        submissions, [e.id for e in mail], [t.id for t in texts], [d.id for d in documents], [f.id for f in attached],
        [c.id for c in calls])
        .order_by(Event.occurred_at, Event.id))
    await audit.record(session, who, "export", "contact", contact.id)
    return {
        "contact": CONTACT.dump(contact),
        "activities": [ACTIVITY.dump(a) for a in activities],
        "deals": [DEAL.dump(d) for d in deals],
        "leads": [LEAD.dump(x) for x in leads],
        "submissions": [SubmissionRead.model_validate(s).model_dump(mode="json") for s in submissions],
        "events": [envelope(e) for e in found],
        "emails": [EMAIL.dump(e) for e in mail], "sms": [SMS.dump(t) for t in texts],
        "calls": [CALL.dump(c) for c in calls], "files": [files.dump(f) for f in attached],
        "documents": [DOCUMENT.dump(d) for d in documents],
        "exported_at": datetime.now(UTC).isoformat(),
    }


def _activities_of(contact_id: UUID, lead_ids: list[UUID]) -> Any:
    return or_(Activity.contact_id == contact_id, Activity.lead_id.in_(lead_ids) if lead_ids else false())


def _submissions_of(contact_id: UUID, lead_ids: list[UUID]) -> Any:
    return or_(FormSubmission.contact_id == contact_id,
               FormSubmission.lead_id.in_(lead_ids) if lead_ids else false())


def _emails_of(contact_id: UUID, lead_ids: list[UUID]) -> Any:
    """Mail linked to the contact or to one of its leads (the GIN indexes on the id arrays)."""
    return or_(Email.contact_ids.contains([contact_id]), Email.lead_ids.overlap(lead_ids) if lead_ids else false())


def _texts_of(contact_id: UUID, lead_ids: list[UUID]) -> Any:
    return or_(Sms.contact_id == contact_id, Sms.lead_id.in_(lead_ids) if lead_ids else false())


def _documents_of(contact_id: UUID, deal_ids: list[UUID]) -> Any:
    return or_(Document.contact_id == contact_id, Document.deal_id.in_(deal_ids) if deal_ids else false())
def _calls_of(contact_id: UUID, lead_ids: list[UUID]) -> Any:
    return or_(Call.contact_id == contact_id, Call.lead_id.in_(lead_ids) if lead_ids else false())


def _events_statement(org_id: UUID, contact_id: UUID, lead_ids: list[UUID], activity_ids: list[UUID],
                      deal_ids: list[UUID], notification_ids: list[UUID], submissions: list[Any],
                      email_ids: list[UUID] | None = None, sms_ids: list[UUID] | None = None,
                      document_ids: list[UUID] | None = None, file_ids: list[UUID] | None = None,
                      call_ids: list[UUID] | None = None) -> Any:
    """The events of these records: each branch is served by the (org_id, object_type, object_id) index."""
    def of(object_type: str, ids: list[UUID]) -> Any:
        return and_(Event.object_type == object_type, Event.object_id.in_(ids)) if ids else false()

    form_ids = list({s.form_id for s in submissions})
    submission_ids = [str(s.id) for s in submissions]
    submitted = and_(Event.type == "form.submitted", Event.object_type == "form", Event.object_id.in_(form_ids),
                     Event.data["object"]["id"].astext == _any(submission_ids)) if submissions else false()
    return select(Event).where(Event.org_id == org_id, or_(
        of("contact", [contact_id]), of("lead", lead_ids), of("activity", activity_ids), of("deal", deal_ids),
        of("notification", notification_ids), of("email", email_ids or []), of("sms", sms_ids or []),
        of("document", document_ids or []), of("file", file_ids or []), of("call", call_ids or []), submitted))


def _any(values: list[str]) -> Any:
    return any_(cast(values, ARRAY(String)))


# --- erasure --------------------------------------------------------------------------------------------


def redactor(needles: Iterable[str | None]) -> Callable[[str], str]:
    """A function cutting these strings (whole words, any case) out of a text."""
    words = sorted({n.strip() for n in needles if n and len(n.strip()) >= 2}, key=len, reverse=True)
    if not words:
        return lambda value: value
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)

    def redact(value: str) -> str:
        if _UUID.match(value):
            return value
        return pattern.sub(ERASED, value)

    return redact


def scrub(node: Any, blanks: dict[str, dict[str, Any]], redact: Callable[[str], str]) -> Any:
    """A copy of a JSON value in which every object whose `id` is one of `blanks` has those fields replaced,
    and every other text has the person's strings cut out."""
    if isinstance(node, dict):
        out = {k: scrub(v, blanks, redact) for k, v in node.items()}
        blank = blanks.get(str(node.get("id"))) if "id" in node else None
        for key, value in (blank or {}).items():
            if key in out:
                out[key] = value
        return out
    if isinstance(node, list):
        return [scrub(v, blanks, redact) for v in node]
    if isinstance(node, str):
        return redact(node)
    return node


def scrub_event(data: dict[str, Any], object_id: UUID, blanks: dict[str, dict[str, Any]],
                redact: Callable[[str], str]) -> dict[str, Any]:
    out = scrub(data, blanks, redact)
    blank = blanks.get(str(object_id))
    if blank and isinstance(out.get("previous"), dict):  # old values of the event's own object
        out["previous"] = {k: (blank[k] if k in blank else v) for k, v in out["previous"].items()}
    return out


async def _erase_mail(session: AsyncSession, settings: Settings | None, org_id: UUID, contact_id: UUID,
                      lead_ids: list[UUID], addresses: set[str]) -> dict[str, dict[str, Any]]:
    """The person's mail: subject and bodies erased, attachments deleted (files too), the person's addresses
    and links removed; the other participants, dates and threads stay. -> each email's blank (its read model's
    names), for scrubbing its events."""
    blanks: dict[str, dict[str, Any]] = {}
    for email in await session.scalars(select(Email).where(Email.org_id == org_id, _emails_of(contact_id, lead_ids))
                                       .with_for_update()):
        if settings is not None:
            for attachment in email.attachments or []:
                file_path(settings, org_id, UUID(attachment["file_id"])).unlink(missing_ok=True)
        if email.from_address in addresses:
            email.from_address, email.from_name = "", None
        email.to_addresses = [a for a in email.to_addresses if a not in addresses]
        email.cc_addresses = [a for a in email.cc_addresses if a not in addresses]
        email.contact_ids = [c for c in email.contact_ids if c != contact_id]
        email.lead_ids = [x for x in email.lead_ids if x not in lead_ids]
        email.subject, email.body_text, email.body_html, email.attachments = ERASED, None, None, []
        blanks[str(email.id)] = {"subject": ERASED, "text": None, "html": None, "attachments": [],
                                 "from": email.from_address, "from_name": email.from_name, "to": email.to_addresses,
                                 "cc": email.cc_addresses, "contact_ids": [str(c) for c in email.contact_ids],
                                 "lead_ids": [str(x) for x in email.lead_ids]}
    await session.flush()
    return blanks


async def erase(session: AsyncSession, actor: Principal, contact_id: UUID,
                settings: Settings | None = None) -> dict[str, Any]:
    """Remove the person's personal data (see the module's doc). The contact is one `actor` may read (deleted
    or not), else 404; erasing an erased contact again changes nothing."""
    contact = await CONTACT.get(session, actor, contact_id, include_deleted=True)
    # A web form finding or creating this person queues behind the erasure (or the erasure behind it): taken
    # before the row lock, in the order intake takes them.
    await locks.keys(session, *locks.person(contact.org_id, contact.email, contact.phone))
    await session.refresh(contact, with_for_update=True)
    org_id = contact.org_id
    counts = dict.fromkeys(("activities", "leads", "submissions", "deals", "events", "webhook_deliveries",
                            "notifications", "emails", "sms", "calls", "files", "letters", "documents_kept"), 0)
    if contact.erased_at is not None:
        return {"id": contact.id, "status": "erased", "erased_at": contact.erased_at, "counts": counts}

    leads = list(await session.scalars(select(Lead).where(Lead.org_id == org_id, Lead.contact_id == contact.id)
                                       .with_for_update()))
    lead_ids = [x.id for x in leads]
    needles = [contact.first_name, contact.last_name, contact.email, contact.phone,
               " ".join(p for p in (contact.first_name, contact.last_name) if p)]
    for lead in leads:
        needles += [lead.first_name, lead.last_name, lead.email, lead.phone,
                    " ".join(p for p in (lead.first_name, lead.last_name) if p)]
    redact = redactor(needles)
    emails = {e.lower() for e in (contact.email, *(x.email for x in leads)) if e}
    phones = {p for p in (contact.phone, *(x.phone for x in leads)) if p}
    now = datetime.now(UTC)

    # The records themselves.
    for key, value in CONTACT_BLANK.items():
        setattr(contact, key, value)
    contact.deleted_at = contact.deleted_at or now
    contact.erased_at = now
    for lead in leads:
        for key, value in LEAD_BLANK.items():
            setattr(lead, key, value)
        lead.company_name = redact(lead.company_name) if lead.company_name else None
    await session.flush()
    activities = list((await session.execute(
        update(Activity).where(Activity.org_id == org_id, _activities_of(contact.id, lead_ids))
        .values(**ACTIVITY_BLANK, version=Activity.version + 1, updated_at=now)
        .returning(Activity).execution_options(synchronize_session=False, populate_existing=True))).scalars())
    submissions = list((await session.execute(
        update(FormSubmission).where(FormSubmission.org_id == org_id, _submissions_of(contact.id, lead_ids))
        .values(**SUBMISSION_BLANK).returning(FormSubmission.id, FormSubmission.form_id))).all())
    mail = await _erase_mail(session, settings, org_id, contact.id, lead_ids, emails)
    texts = list(await session.scalars(
        update(Sms).where(Sms.org_id == org_id, _texts_of(contact.id, lead_ids))
        .values(text=ERASED, to_phone=case((Sms.to_phone.in_(phones), ""), else_=Sms.to_phone),
                status=case((Sms.status == "queued", "failed"), else_=Sms.status),  # not sent after all
                error=case((Sms.status == "queued", "the recipient's data was erased"), else_=Sms.error),
                version=Sms.version + 1, updated_at=now).returning(Sms.id)))
    removed = await files.remove_rows(session, org_id, files.of_person(contact.id, lead_ids))
    session.info.setdefault(ERASED_FILES, []).extend(f.storage_key for f in removed)
    # Letters to the person are theirs alone: their words and PDFs go (the number stays taken, voided). Quotes,
    # invoices and contracts of their deals are business records the law makes the organisation keep (GDPR
    # art. 17(3)(b)): they stay, and the result counts them.
    letters = list(await session.scalars(select(Document).where(
        Document.org_id == org_id, Document.contact_id == contact.id, Document.kind == "letter").with_for_update()))
    session.info.setdefault(ERASED_LETTERS, []).extend(d.file_key for d in letters if d.file_key)
    for letter in letters:
        letter.body_html, letter.context, letter.error = "", {}, "erased with the person's data"
        letter.file_key = letter.file_size = letter.sha256 = None
        letter.voided_at = letter.voided_at or now
        letter.version, letter.updated_at = letter.version + 1, now
    kept = await session.scalar(select(func.count()).select_from(Document).where(
        Document.org_id == org_id, Document.deal_id.in_(
            select(Deal.id).where(Deal.org_id == org_id, Deal.contact_id == contact.id))))
    # a call keeps when, how long and how it ended; the person's number and the recording's link go
    calls = (await session.execute(
        update(Call).where(Call.org_id == org_id, _calls_of(contact.id, lead_ids))
        .values(from_phone=case((Call.from_phone.in_(phones), ""), else_=Call.from_phone),
                to_phone=case((Call.to_phone.in_(phones), ""), else_=Call.to_phone), recording_url=None,
                version=Call.version + 1, updated_at=now)
        .returning(Call.id, Call.from_phone, Call.to_phone))).all()
    # a campaign's row keeps its outcome for the stats, not the address it went to
    await session.execute(update(Recipient).where(Recipient.org_id == org_id, Recipient.contact_id == contact.id)
                          .values(address=None))
    retitled = []
    for deal in await session.scalars(select(Deal).where(Deal.org_id == org_id, Deal.contact_id == contact.id)
                                      .with_for_update()):
        title = redact(deal.title)
        if title != deal.title:
            deal.title = title
            retitled.append(deal)
    await session.flush()
    notifications = list(await session.scalars(
        update(Notification).where(Notification.org_id == org_id, or_(
            and_(Notification.object_type == "contact", Notification.object_id == contact.id),
            and_(Notification.object_type == "lead", Notification.object_id.in_(lead_ids)) if lead_ids else false(),
            and_(Notification.object_type == "activity", Notification.object_id.in_([a.id for a in activities]))
            if activities else false()))
        .values(title=ERASED).returning(Notification.id)))

    # Lookups that would still find the person.
    await session.execute(delete(ExternalRef).where(ExternalRef.org_id == org_id, or_(
        and_(ExternalRef.object_type == "contact", ExternalRef.record_id == contact.id),
        and_(ExternalRef.object_type == "lead", ExternalRef.record_id.in_(lead_ids)) if lead_ids else false())))
    keys = [f"e:{e}" for e in emails] + [f"p:{p}" for p in phones]
    if keys:
        await session.execute(delete(ImportKey).where(ImportKey.org_id == org_id, ImportKey.key.in_(keys)))

    # The events (the changes feed) and their copies in the webhook history.
    blanks: dict[str, dict[str, Any]] = {str(contact.id): CONTACT_BLANK}
    blanks.update({str(i): LEAD_BLANK for i in lead_ids})
    blanks.update({str(a.id): ACTIVITY_BLANK for a in activities})
    blanks.update({str(s.id): SUBMISSION_BLANK for s in submissions})
    blanks.update({str(n): NOTIFICATION_BLANK for n in notifications})
    blanks.update(mail)
    blanks.update({str(t): SMS_BLANK for t in texts})
    blanks.update({str(f.id): FILE_BLANK for f in removed})
    blanks.update({str(c.id): {"from": c.from_phone, "to": c.to_phone, "recording_url": None} for c in calls})
    changed: list[UUID] = []
    deal_ids = list(await session.scalars(select(Deal.id).where(Deal.org_id == org_id, Deal.contact_id == contact.id)))
    for event in await session.scalars(_events_statement(org_id, contact.id, lead_ids, [a.id for a in activities],
                                                         deal_ids, notifications, submissions,
                                                         [UUID(i) for i in mail], texts,
                                                         file_ids=[f.id for f in removed],
                                                         call_ids=[c.id for c in calls]).with_for_update()):
        data = scrub_event(event.data, event.object_id, blanks, redact)
        if data != event.data:
            event.data = data
            changed.append(event.id)
    await session.flush()
    deliveries = 0
    if changed:
        deliveries = (await session.execute(_COPY_SCRUBBED, {"org_id": org_id, "ids": changed, "now": now})
                      ).rowcount  # type: ignore[attr-defined]

    # The audit log keeps who did what and when, without the values that were the person's.
    await audit.forget_changes(session, org_id, [contact.id, *lead_ids, *(a.id for a in activities), *notifications])
    await audit.redact_changes(session, org_id, [*deal_ids, *(s.id for s in submissions)],
                               lambda changes: scrub(changes, {}, redact))
    await audit.record(session, actor, "erase", "contact", contact.id)

    # Tell sync clients: the tombstone, and the linked records as they are now.
    await events.emit_many(session, actor, org_id, [
        *[("activity.updated", "activity", a.id, a.version, {"object": ACTIVITY.dump(a)}) for a in activities],
        *[("lead.updated", "lead", x.id, x.version, {"object": LEAD.dump(x)}) for x in leads],
        *[("deal.updated", "deal", d.id, d.version, {"object": DEAL.dump(d)}) for d in retitled],
        *[("document.voided", "document", d.id, d.version, {"object": DOCUMENT.dump(d)}) for d in letters],
        ("contact.erased", "contact", contact.id, contact.version, {"object": CONTACT.dump(contact)}),
    ])
    counts.update(activities=len(activities), leads=len(leads), submissions=len(submissions), deals=len(retitled),
                  events=len(changed), webhook_deliveries=deliveries, notifications=len(notifications),
                  emails=len(mail), sms=len(texts), calls=len(calls), files=len(removed), letters=len(letters),
                  documents_kept=int(kept or 0))
    return {"id": contact.id, "status": "erased", "erased_at": now, "counts": counts}


async def forget_erased_files(session: AsyncSession, settings: Settings) -> int:
    """After the erasure's transaction committed: delete the bytes of the files it removed. -> how many."""
    for key in session.info.pop(ERASED_LETTERS, []):
        document_storage.delete(settings, key)
    keys = session.info.pop(ERASED_FILES, [])
    storage = storage_for(settings)
    for key in keys:
        await storage.delete(key)
    return len(keys)
