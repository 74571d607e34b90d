"""A record's history, newest first: activities, stage moves and form submissions merged by one UNION
query with keyset pagination, which also brings the page's activities; other kinds on the page are
hydrated with one query per kind.

Which records the history reaches (the record itself, its deals, leads and contacts, the activities) is the
registry's one readable rule (`RecordType.readable`), generated into the statement: a deleted lead's entries
leave its contact's timeline as the lead leaves its list. Stage moves and form submissions are not records of
their own: they are reached through the deal, lead or contact they belong to."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import Integer, String, and_, bindparam, exists, literal, or_, select, true, tuple_, union
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds
from app.domain.activities.models import Activity
from app.domain.activities.schemas import ActivityRead
from app.domain.auth.principal import Principal
from app.domain.auth.scopes import grants
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal, StageMove
from app.domain.deals.schemas import StageMoveRead
from app.domain.documents.models import Document
from app.domain.errors import ValidationFailed
from app.domain.files.models import StoredFile
from app.domain.forms.models import FormSubmission
from app.domain.forms.schemas import SubmissionRead
from app.domain.kinds import BOUND, Reader, org_of, reader_params
from app.domain.leads.models import Lead
from app.domain.mail.models import Email
from app.domain.pagination import Page, PageRequest, Sort, cut_page, decode_cursor
from app.domain.pipelines.models import Stage
from app.domain.records import Kind
from app.domain.sms.models import Sms

KINDS = {t.object_type: Kind.of(t) for t in kinds.having("timeline")}
EMAIL_READ = Kind.of(kinds.EMAIL)
SMS_READ = Kind.of(kinds.SMS)
DOCUMENT_READ = Kind.of(kinds.DOCUMENT)
FILE_READ = Kind.of(kinds.FILE)


def _readable(object_type: str) -> Any:
    """The registry's readable rule for `object_type`, with the reader's values bound (see `reader_params`)."""
    return kinds.named(object_type).readable(BOUND)


@dataclass(frozen=True)
class Via:
    """Entries reached through parent records (a contact's deals, say): `column IN parents`."""

    column: Any
    parents: Any  # a SELECT of parent ids


def _branches(object_type: str, object_id: Any) -> list[tuple[str, Any, str | None]]:
    """-> [(kind, filter, parent kind)]: each filter is served by one index, directly or per parent (see Via,
    and its parent kind); parents are the records the reader may read."""
    S = FormSubmission
    files = ("file", and_(StoredFile.object_type == literal(object_type, String), StoredFile.object_id == object_id),
             None)
    if object_type == "deal":
        return [("activity", Activity.deal_id == object_id, None), ("stage_change", StageMove.deal_id == object_id, None),
                ("form_submission", S.deal_id == object_id, None),
                ("email", Email.deal_ids.contains(array([object_id])), None), ("sms", Sms.deal_id == object_id, None),
                ("document", Document.deal_id == object_id, None), files]
    if object_type == "lead":
        return [("activity", Activity.lead_id == object_id, None), ("form_submission", S.lead_id == object_id, None),
                ("email", Email.lead_ids.contains(array([object_id])), None), ("sms", Sms.lead_id == object_id, None), files]
    if object_type == "contact":
        deals = select(Deal.id).where(_readable("deal"), Deal.contact_id == object_id)
        leads = select(Lead.id).where(_readable("lead"), Lead.contact_id == object_id)
        return [("activity", Activity.contact_id == object_id, None), ("activity", Via(Activity.deal_id, deals), "deal"),
                ("activity", Via(Activity.lead_id, leads), "lead"),
                ("stage_change", Via(StageMove.deal_id, deals), "deal"),
                ("form_submission", S.contact_id == object_id, None), ("form_submission", Via(S.lead_id, leads), "lead"),
                ("email", Email.contact_ids.contains(array([object_id])), None),
                ("sms", Sms.contact_id == object_id, None),
                ("document", Document.contact_id == object_id, None), ("document", Via(Document.deal_id, deals), "deal"),
                files]
    contacts = select(Contact.id).where(_readable("contact"), Contact.company_id == object_id)
    deals = select(Deal.id).where(_readable("deal"), or_(Deal.company_id == object_id, Deal.contact_id.in_(contacts)))
    return [("activity", Activity.company_id == object_id, None),
            ("activity", Via(Activity.contact_id, contacts), "contact"),
            ("activity", Via(Activity.deal_id, deals), "deal"), ("stage_change", Via(StageMove.deal_id, deals), "deal"),
            ("form_submission", Via(S.contact_id, contacts), "contact"),
            ("document", Via(Document.deal_id, deals), "deal"), ("document", Via(Document.contact_id, contacts), "contact"),
            files]


# The scope each kind of entry, and each parent an entry is reached through, needs: a timeline shows only
# what the caller's credential may read elsewhere (a `contacts:read` key sees no deals' stage moves).
SCOPE_OF = {"activity": "activities:read", "stage_change": "deals:read", "form_submission": "forms:read",
            "email": "mail:read", "sms": "mail:read", "document": "documents:read", "file": "files:read",
            "deal": "deals:read", "lead": "leads:read", "contact": "contacts:read"}


def readable_kinds(who: Reader) -> frozenset[str]:
    """The kinds of entry and parent `who` may read (a bare org id: all of them)."""
    if not isinstance(who, Principal):
        return frozenset(SCOPE_OF)
    return frozenset(k for k, scope in SCOPE_OF.items() if grants(who.scopes, scope))


_COLUMNS = {
    "activity": (Activity.created_at, Activity.id, lambda org_id: _readable("activity")),
    "stage_change": (StageMove.moved_at, StageMove.id, lambda org_id: StageMove.org_id == org_id),
    "form_submission": (FormSubmission.received_at, FormSubmission.id, lambda org_id: FormSubmission.org_id == org_id),
    "email": (Email.sent_at, Email.id, lambda org_id: _readable("email")),
    "sms": (Sms.created_at, Sms.id, lambda org_id: _readable("sms")),
    "document": (Document.created_at, Document.id, lambda org_id: _readable("document")),
    "file": (StoredFile.created_at, StoredFile.id, lambda org_id: _readable("file")),
}


def _branch(kind: str, condition: Any, org_id: Any, paged: bool, limit: Any) -> Any:
    """Newest `limit` entries of one branch. Through parents, a LATERAL join takes each parent's newest
    entries from the (org_id, parent, time, id) index, whatever the planner guesses about the parent set."""
    time_col, id_col, base = _COLUMNS[kind]
    rows = select(literal(kind, String).label("kind"), id_col.label("id"), time_col.label("occurred_at")).where(
        base(org_id))
    if paged:
        rows = rows.where(tuple_(time_col, id_col) < tuple_(bindparam("after_time", type_=time_col.type),
                                                           bindparam("after_id", type_=id_col.type)))
    if isinstance(condition, Via):
        parents = condition.parents.subquery()
        per_parent = (rows.where(condition.column == parents.c.id).order_by(time_col.desc(), id_col.desc())
                      .limit(limit).lateral())
        return (select(per_parent.c.kind, per_parent.c.id, per_parent.c.occurred_at)
                .select_from(parents).join(per_parent, true())
                .order_by(per_parent.c.occurred_at.desc(), per_parent.c.id.desc()).limit(limit).subquery())
    return rows.where(condition).order_by(time_col.desc(), id_col.desc()).limit(limit).subquery()


async def timeline(session: AsyncSession, who: Reader, object_type: str, object_id: UUID,
                   page: PageRequest) -> Page[dict[str, Any]]:
    """Each branch is an index scan cut at the page size (keyset condition pushed down), the branches are
    merged with UNION (an activity reachable two ways appears once), then ordered and cut again. The same
    statement checks that the record is live and brings the page's activities along."""
    if not 1 <= page.limit <= 200:
        raise ValidationFailed("limit must be between 1 and 200", loc=("query", "limit"))
    if page.sort not in (None, "-occurred_at"):
        raise ValidationFailed("a timeline is always newest first (sort=-occurred_at)", loc=("query", "sort"))
    probe = Sort("-occurred_at", Activity.created_at, True)
    params: dict[str, Any] = {**reader_params(who), "object_id": object_id, "limit": page.limit + 1}
    if page.cursor:
        params["after_time"], params["after_id"] = decode_cursor(page.cursor, probe)
    allowed = readable_kinds(who)
    if not any(kind in allowed and (via is None or via in allowed) for kind, via in _branch_kinds(object_type)):
        await KINDS[object_type].get(session, who, object_id)  # 404 as usual; else an empty history
        return Page([], None)
    stmt = _statement(object_type, bool(page.cursor), allowed)
    rows = (await session.execute(stmt, params)).all()
    if not rows:  # an empty history, or no record the reader may read (404, whatever org it belongs to)
        await KINDS[object_type].get(session, who, object_id)
    cut = cut_page(rows, page, probe, value_of=lambda r: r.occurred_at)
    return Page(await _hydrate(session, org_of(who), cut.items), cut.next_cursor)


@lru_cache(maxsize=16)
def _branch_kinds(object_type: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((kind, via) for kind, _, via in _branches(object_type, None))


@lru_cache(maxsize=64)
def _statement(object_type: str, paged: bool, allowed: frozenset[str]) -> Any:
    """One statement per record type (first page or not, and the kinds the caller may read), built once: the
    values are bound parameters. Building this UNION anew took longer than PostgreSQL took to run it."""
    org_id, object_id = bindparam("org_id", type_=PGUUID(as_uuid=True)), bindparam("object_id", type_=PGUUID(as_uuid=True))
    limit = bindparam("limit", type_=Integer)
    parts = [_branch(kind, condition, org_id, paged, limit) for kind, condition, via in _branches(object_type, object_id)
             if kind in allowed and (via is None or via in allowed)]
    entries = union(*[select(p) for p in parts]).subquery("entries")
    cut = (select(entries.c.kind, entries.c.id, entries.c.occurred_at)
           .order_by(entries.c.occurred_at.desc(), entries.c.id.desc()).limit(limit).subquery("page"))
    record: Any = KINDS[object_type].model
    live = exists().where(_readable(object_type), record.id == object_id)
    activity = and_(Activity.org_id == org_id, Activity.id == cut.c.id, cut.c.kind == "activity")
    # the activity's columns as plain values (prefixed): reading 50 rows into ORM objects cost more than the SQL
    columns = [c.label(f"{_ACT}{c.key}") for c in Activity.__table__.c]
    return (select(cut.c.kind, cut.c.id, cut.c.occurred_at, *columns)
            .select_from(cut).outerjoin(Activity, activity).where(live)
            .order_by(cut.c.occurred_at.desc(), cut.c.id.desc()))


_ACT = "activity_"


_ACTIVITY_FIELDS = tuple(ActivityRead.model_fields)


def _activity(row: Any) -> dict[str, Any]:
    """The activity as `GET /v1/activities/{id}` shows it, straight from the row's values (the columns are
    the read model's fields; the endpoint encodes UUIDs and times as the API does everywhere)."""
    values = row._mapping
    return {name: values[f"{_ACT}{name}"] for name in _ACTIVITY_FIELDS}


async def _hydrate(session: AsyncSession, org_id: UUID, rows: list[Any]) -> list[dict[str, Any]]:
    activities = {r.id: _activity(r) for r in rows if r.kind == "activity"}  # joined by the page's statement
    move_ids = [r.id for r in rows if r.kind == "stage_change"]
    moves: dict[UUID, Any] = {}
    names: dict[UUID, str] = {}
    if move_ids:
        moves = {m.id: m for m in await session.scalars(
            select(StageMove).where(StageMove.org_id == org_id, StageMove.id.in_(move_ids)))}
        stage_ids = {s for m in moves.values() for s in (m.from_stage_id, m.to_stage_id) if s}
        names = dict((await session.execute(
            select(Stage.id, Stage.name).where(Stage.org_id == org_id, Stage.id.in_(stage_ids)))).all())
    email_ids = [r.id for r in rows if r.kind == "email"]
    emails = {e.id: e for e in await session.scalars(select(Email).where(
        Email.org_id == org_id, Email.id.in_(email_ids)))} if email_ids else {}
    sms_ids = [r.id for r in rows if r.kind == "sms"]
    texts = {t.id: t for t in await session.scalars(select(Sms).where(
        Sms.org_id == org_id, Sms.id.in_(sms_ids)))} if sms_ids else {}
    document_ids = [r.id for r in rows if r.kind == "document"]
    documents = {d.id: d for d in await session.scalars(select(Document).where(
        Document.org_id == org_id, Document.id.in_(document_ids)))} if document_ids else {}
    file_ids = [r.id for r in rows if r.kind == "file"]
    files = {f.id: f for f in await session.scalars(select(StoredFile).where(
        StoredFile.org_id == org_id, StoredFile.id.in_(file_ids)))} if file_ids else {}
    submission_ids = [r.id for r in rows if r.kind == "form_submission"]
    submissions = {s.id: s for s in await session.scalars(select(FormSubmission).where(
        FormSubmission.org_id == org_id, FormSubmission.id.in_(submission_ids)))} if submission_ids else {}
    out = []
    for r in rows:
        if r.kind == "form_submission":
            sub = submissions[r.id]
            data = SubmissionRead.model_validate(sub).model_dump(mode="json")
            out.append({"id": str(sub.id), "kind": "form_submission", "occurred_at": r.occurred_at.isoformat(),
                        "actor": {"type": "form", "id": str(sub.form_id)},
                        "summary": "Web form submission" + (f" from {sub.page_url}" if sub.page_url else ""),
                        "object_type": "form_submission", "object_id": str(sub.id), "data": data})
        elif r.kind == "email":
            e = emails[r.id]
            out.append({"id": str(e.id), "kind": "email", "occurred_at": r.occurred_at.isoformat(),
                        "actor": {"type": "user", "id": str(e.created_by)} if e.created_by else None,
                        "summary": f"{'Email from' if e.direction == 'inbound' else 'Email to'} "
                                   f"{e.from_address if e.direction == 'inbound' else ', '.join(e.to_addresses)}: "
                                   f"{e.subject}"[:300],
                        "object_type": "email", "object_id": str(e.id), "data": EMAIL_READ.dump(e)})
        elif r.kind == "sms":
            t = texts[r.id]
            out.append({"id": str(t.id), "kind": "sms", "occurred_at": r.occurred_at.isoformat(),
                        "actor": {"type": "user", "id": str(t.created_by)} if t.created_by else None,
                        "summary": f"SMS to {t.to_phone}: {t.text}"[:300],
                        "object_type": "sms", "object_id": str(t.id), "data": SMS_READ.dump(t)})
        elif r.kind == "document":
            d = documents[r.id]
            out.append({"id": str(d.id), "kind": "document", "occurred_at": r.occurred_at.isoformat(),
                        "actor": {"type": "user", "id": str(d.created_by)} if d.created_by else None,
                        "summary": f"{d.kind.capitalize()} {d.number} ({d.status})",
                        "object_type": "document", "object_id": str(d.id), "data": DOCUMENT_READ.dump(d)})
        elif r.kind == "file":
            f = files[r.id]
            out.append({"id": str(f.id), "kind": "file", "occurred_at": r.occurred_at.isoformat(),
                        "actor": {"type": "user", "id": str(f.created_by)} if f.created_by else None,
                        "summary": f"File {f.filename} ({f.content_type}, {f.size} bytes)"[:300],
                        "object_type": "file", "object_id": str(f.id), "data": FILE_READ.dump(f)})
        elif r.kind == "activity":
            a = activities[r.id]
            out.append({"id": str(a["id"]), "kind": "activity", "occurred_at": r.occurred_at.isoformat(),
                        "actor": {"type": "user", "id": str(a["owner_id"])} if a["owner_id"] else None, "summary": f"{a['type']}: {a['subject']}",
                        "object_type": "activity", "object_id": str(a["id"]), "data": a})
        else:
            m = moves[r.id]
            to_name = names.get(m.to_stage_id, "?")
            summary = (f"Moved from {names.get(m.from_stage_id, '?')} to {to_name}" if m.from_stage_id
                       else f"Entered {to_name}")
            out.append({"id": str(m.id), "kind": "stage_change", "occurred_at": r.occurred_at.isoformat(),
                        "actor": m.moved_by, "summary": summary, "object_type": "deal", "object_id": str(m.deal_id),
                        "data": StageMoveRead.model_validate(m).model_dump(mode="json")})
    return out
