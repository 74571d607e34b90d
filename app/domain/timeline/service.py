"""A record's history, newest first: activities and stage moves (later emails, submissions...) merged by
one UNION query with keyset pagination, then hydrated with one query per kind on the page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import String, literal, or_, select, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.activities.models import Activity
from app.domain.activities.service import ACTIVITY
from app.domain.companies.service import COMPANY
from app.domain.contacts.models import Contact
from app.domain.contacts.service import CONTACT
from app.domain.deals.models import Deal, StageMove
from app.domain.deals.schemas import StageMoveRead
from app.domain.deals.service import DEAL
from app.domain.errors import ValidationFailed
from app.domain.forms.models import FormSubmission
from app.domain.forms.schemas import SubmissionRead
from app.domain.leads.models import Lead
from app.domain.leads.service import LEAD
from app.domain.pagination import Page, PageRequest, Sort, cut_page, decode_cursor
from app.domain.pipelines.models import Stage

KINDS = {"contact": CONTACT, "company": COMPANY, "deal": DEAL, "lead": LEAD}


def _live(model: Any, org_id: UUID) -> Any:
    return (model.org_id == org_id) & model.deleted_at.is_(None)


def _branches(object_type: str, org_id: UUID, object_id: UUID) -> list[tuple[str, Any]]:
    """-> [(kind, filter)] where each filter is served by one index."""
    S = FormSubmission
    if object_type == "deal":
        return [("activity", Activity.deal_id == object_id), ("stage_change", StageMove.deal_id == object_id),
                ("form_submission", S.deal_id == object_id)]
    if object_type == "lead":
        return [("activity", Activity.lead_id == object_id), ("form_submission", S.lead_id == object_id)]
    if object_type == "contact":
        deals = select(Deal.id).where(_live(Deal, org_id), Deal.contact_id == object_id)
        leads = select(Lead.id).where(Lead.org_id == org_id, Lead.contact_id == object_id)
        return [("activity", Activity.contact_id == object_id), ("activity", Activity.deal_id.in_(deals)),
                ("activity", Activity.lead_id.in_(leads)), ("stage_change", StageMove.deal_id.in_(deals)),
                ("form_submission", S.contact_id == object_id), ("form_submission", S.lead_id.in_(leads))]
    contacts = select(Contact.id).where(_live(Contact, org_id), Contact.company_id == object_id)
    deals = select(Deal.id).where(_live(Deal, org_id), or_(Deal.company_id == object_id,
                                                           Deal.contact_id.in_(contacts)))
    return [("activity", Activity.company_id == object_id), ("activity", Activity.contact_id.in_(contacts)),
            ("activity", Activity.deal_id.in_(deals)), ("stage_change", StageMove.deal_id.in_(deals)),
            ("form_submission", S.contact_id.in_(contacts))]


async def timeline(session: AsyncSession, org_id: UUID, object_type: str, object_id: UUID,
                   page: PageRequest) -> Page[dict[str, Any]]:
    """Each branch is an index scan cut at the page size (keyset condition pushed down), the branches are
    merged with UNION (an activity reachable two ways appears once), then ordered and cut again."""
    await KINDS[object_type].get(session, org_id, object_id)  # 404 for unknown or another org's record
    if not 1 <= page.limit <= 200:
        raise ValidationFailed("limit must be between 1 and 200", loc=("query", "limit"))
    if page.sort not in (None, "-occurred_at"):
        raise ValidationFailed("a timeline is always newest first (sort=-occurred_at)", loc=("query", "sort"))
    probe = Sort("-occurred_at", Activity.created_at, True)
    position = decode_cursor(page.cursor, probe) if page.cursor else None
    parts = []
    for kind, condition in _branches(object_type, org_id, object_id):
        if kind == "activity":
            time_col, id_col, base = Activity.created_at, Activity.id, _live(Activity, org_id)
        elif kind == "stage_change":
            time_col, id_col, base = StageMove.moved_at, StageMove.id, StageMove.org_id == org_id
        else:
            time_col, id_col, base = FormSubmission.received_at, FormSubmission.id, FormSubmission.org_id == org_id
        branch = select(literal(kind, String).label("kind"), id_col.label("id"), time_col.label("occurred_at")) \
            .where(base, condition)
        if position is not None:
            branch = branch.where(tuple_(time_col, id_col) < tuple_(*position))
        parts.append(branch.order_by(time_col.desc(), id_col.desc()).limit(page.limit + 1).subquery())
    entries = union(*[select(p) for p in parts]).subquery("entries")
    stmt = (select(entries.c.kind, entries.c.id, entries.c.occurred_at)
            .order_by(entries.c.occurred_at.desc(), entries.c.id.desc()).limit(page.limit + 1))
    rows = (await session.execute(stmt)).all()
    cut = cut_page(rows, page, probe, value_of=lambda r: r.occurred_at)
    return Page(await _hydrate(session, org_id, cut.items), cut.next_cursor)


async def _hydrate(session: AsyncSession, org_id: UUID, rows: list[Any]) -> list[dict[str, Any]]:
    activity_ids = [r.id for r in rows if r.kind == "activity"]
    move_ids = [r.id for r in rows if r.kind == "stage_change"]
    activities = {a.id: a for a in await session.scalars(
        select(Activity).where(Activity.org_id == org_id, Activity.id.in_(activity_ids)))} if activity_ids else {}
    moves: dict[UUID, Any] = {}
    names: dict[UUID, str] = {}
    if move_ids:
        moves = {m.id: m for m in await session.scalars(
            select(StageMove).where(StageMove.org_id == org_id, StageMove.id.in_(move_ids)))}
        stage_ids = {s for m in moves.values() for s in (m.from_stage_id, m.to_stage_id) if s}
        names = dict((await session.execute(
            select(Stage.id, Stage.name).where(Stage.org_id == org_id, Stage.id.in_(stage_ids)))).all())
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
        elif r.kind == "activity":
            a = activities[r.id]
            out.append({"id": str(a.id), "kind": "activity", "occurred_at": r.occurred_at.isoformat(),
                        "actor": {"type": "user", "id": str(a.owner_id)}, "summary": f"{a.type}: {a.subject}",
                        "object_type": "activity", "object_id": str(a.id), "data": ACTIVITY.dump(a)})
        else:
            m = moves[r.id]
            to_name = names.get(m.to_stage_id, "?")
            summary = (f"Moved from {names.get(m.from_stage_id, '?')} to {to_name}" if m.from_stage_id
                       else f"Entered {to_name}")
            out.append({"id": str(m.id), "kind": "stage_change", "occurred_at": r.occurred_at.isoformat(),
                        "actor": m.moved_by, "summary": summary, "object_type": "deal", "object_id": str(m.deal_id),
                        "data": StageMoveRead.model_validate(m).model_dump(mode="json")})
    return out
