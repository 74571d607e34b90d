"""A record's history, newest first: activities and stage moves (later emails, submissions...) merged by
one UNION query with keyset pagination, then hydrated with one query per kind on the page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import String, literal, or_, select, tuple_, union_all
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
from app.domain.leads.models import Lead
from app.domain.leads.service import LEAD
from app.domain.pagination import Page, PageRequest, Sort, cut_page, decode_cursor
from app.domain.pipelines.models import Stage

KINDS = {"contact": CONTACT, "company": COMPANY, "deal": DEAL, "lead": LEAD}


def _live(model: Any, org_id: UUID) -> Any:
    return (model.org_id == org_id) & model.deleted_at.is_(None)


def _scope(object_type: str, org_id: UUID, object_id: UUID) -> tuple[Any, Any]:
    """-> (activity filter, deal-id subquery or None) for the record's timeline."""
    if object_type == "deal":
        return Activity.deal_id == object_id, select(literal(object_id)).scalar_subquery()
    if object_type == "lead":
        return Activity.lead_id == object_id, None
    if object_type == "contact":
        deals = select(Deal.id).where(_live(Deal, org_id), Deal.contact_id == object_id)
        leads = select(Lead.id).where(Lead.org_id == org_id, Lead.contact_id == object_id)
        return (or_(Activity.contact_id == object_id, Activity.deal_id.in_(deals), Activity.lead_id.in_(leads)),
                deals)
    contacts = select(Contact.id).where(_live(Contact, org_id), Contact.company_id == object_id)
    deals = select(Deal.id).where(_live(Deal, org_id), or_(Deal.company_id == object_id,
                                                           Deal.contact_id.in_(contacts)))
    return (or_(Activity.company_id == object_id, Activity.contact_id.in_(contacts), Activity.deal_id.in_(deals)),
            deals)


async def timeline(session: AsyncSession, org_id: UUID, object_type: str, object_id: UUID,
                   page: PageRequest) -> Page[dict[str, Any]]:
    await KINDS[object_type].get(session, org_id, object_id)  # 404 for unknown or another org's record
    activity_filter, deal_ids = _scope(object_type, org_id, object_id)
    parts = [
        select(literal("activity", String).label("kind"), Activity.id.label("id"),
               Activity.created_at.label("occurred_at"))
        .where(_live(Activity, org_id), activity_filter)
    ]
    if deal_ids is not None:
        parts.append(
            select(literal("stage_change", String).label("kind"), StageMove.id.label("id"),
                   StageMove.moved_at.label("occurred_at"))
            .where(StageMove.org_id == org_id, StageMove.deal_id.in_(deal_ids))
        )
    entries = union_all(*parts).subquery("entries")
    sort = Sort("-occurred_at", entries.c.occurred_at, True)
    if not 1 <= page.limit <= 200:
        raise ValidationFailed("limit must be between 1 and 200", loc=("query", "limit"))
    stmt = select(entries.c.kind, entries.c.id, entries.c.occurred_at)
    if page.cursor:
        value, row_id = decode_cursor(page.cursor, sort)
        stmt = stmt.where(tuple_(entries.c.occurred_at, entries.c.id) < tuple_(value, row_id))
    stmt = stmt.order_by(entries.c.occurred_at.desc(), entries.c.id.desc()).limit(page.limit + 1)
    rows = (await session.execute(stmt)).all()
    cut = cut_page(rows, page, sort, value_of=lambda r: r.occurred_at)
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
    out = []
    for r in rows:
        if r.kind == "activity":
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
