"""Deals in pipelines: stage moves with history, status and closed_at following the stage kind."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Uuid, bindparam, case, exists, func, insert, literal, or_, select, text
from sqlalchemy import update as update_rows
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import locks
from app.domain.auth.principal import Principal
from app.domain.catalog import rules as reference_lists
from app.domain.companies.service import COMPANY
from app.domain.concurrency import check_version
from app.domain.contacts.service import CONTACT
from app.domain.deals.models import Deal, LineItem, StageMove
from app.domain.deals.schemas import DealCreate, DealRead, DealUpdate
from app.domain.errors import ValidationFailed
from app.domain.events import service as events
from app.domain.kinds import Reader, org_of
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.records import Kind, apply, changed, prepare_values, reassign_owner, require_ref
from app.domain.schemas import amount_places
from app.ids import new_id


class _DealKind(Kind[Deal]):
    async def restore(self, session: AsyncSession, actor: Principal, record_id: UUID) -> Deal:
        """A deal restored after its stage (or pipeline) was deleted lands in the first open stage of its
        pipeline (or of the default one), and that move is recorded like any other. It enters its pipeline, so
        it holds the pipeline first (see the locking rule in `app.domain.flows`)."""
        deal = await self.get(session, actor, record_id, include_deleted=True)
        pipeline = (await locks.pipeline_shared(session, actor.org_id, pipeline_id=deal.pipeline_id)
                    or await locks.pipeline_shared(session, actor.org_id))
        deal = await super().restore(session, actor, record_id)
        if pipeline is None or any(s.id == deal.stage_id for s in pipeline.stages):
            return deal
        first_open = next(s for s in pipeline.stages if s.kind == "open")
        before = self.dump(deal)
        extra = await _move(session, actor, deal, pipeline, first_open, None)
        return await self.updated(session, actor, deal, before, extra=extra)


DEAL = _DealKind(Deal, "deal", "Deal", DealRead)


def _now() -> datetime:
    return datetime.now(UTC)


async def _entered(session: AsyncSession, org_id: UUID, pipeline_id: UUID | None,
                   stage_id: UUID | None) -> tuple[Pipeline, Stage]:
    """The pipeline and stage a new deal enters, the pipeline held for the move (the locking rule in
    `app.domain.flows`): by default the first open stage of the default pipeline."""
    pipeline = await locks.pipeline_shared(session, org_id, pipeline_id=pipeline_id, stage_id=stage_id)
    if pipeline is None and pipeline_id is not None:
        raise ValidationFailed("pipeline_id: no such pipeline in your organisation", loc=("body", "pipeline_id"))
    if pipeline is None and stage_id is not None:
        raise ValidationFailed("stage_id: no such stage in your organisation", loc=("body", "stage_id"))
    if pipeline is None:
        raise ValidationFailed("pipeline_id is required: the organisation has no default pipeline",
                               loc=("body", "pipeline_id"))
    if stage_id is None:
        return pipeline, next(s for s in pipeline.stages if s.kind == "open")  # every pipeline keeps one
    return pipeline, _stage_of(pipeline, stage_id, "stage_id must be a stage of the deal's pipeline" if pipeline_id
                               else "stage_id: no such stage in your organisation")


def _stage_of(pipeline: Pipeline, stage_id: UUID, problem: str = "stage_id must be a stage of the deal's pipeline"
              ) -> Stage:
    stage = next((s for s in pipeline.stages if s.id == stage_id), None)
    if stage is None:
        raise ValidationFailed(problem, loc=("body", "stage_id"))
    return stage


def _enter(deal: Deal, stage: Stage, now: datetime, lost_reason: str | None) -> None:
    """Status and closed_at follow the stage kind; moving among won stages keeps the first closed_at."""
    if stage.kind == "lost" and not lost_reason:
        raise ValidationFailed("lost_reason is required to move a deal into a lost stage", loc=("body", "lost_reason"))
    previous = deal.status
    deal.status = stage.kind
    if stage.kind == "open":
        deal.closed_at = None
        deal.lost_reason = None
        return
    if previous != stage.kind or deal.closed_at is None:
        deal.closed_at = now
    deal.lost_reason = lost_reason if stage.kind == "lost" else None


async def create(session: AsyncSession, actor: Principal, body: DealCreate, **server_fields: Any) -> Deal:
    data = body.model_dump(mode="python")
    pipeline, stage = await _entered(session, actor.org_id, data.pop("pipeline_id"), data.pop("stage_id"))
    value = data.pop("value") or {}
    lost_reason = data.pop("lost_reason")
    forecast_category = data.pop("forecast_category") or stage.forecast_category
    await reference_lists.check_values(session, actor, {"lost_reason": lost_reason})
    values = await prepare_values(session, actor, "deal", data)
    await _check_refs(session, actor.org_id, values)
    now = _now()
    currency = (value.get("currency") or pipeline.currency).upper()
    deal = Deal(org_id=actor.org_id, pipeline_id=pipeline.id, stage_id=stage.id, stage_entered_at=now,
                entered_stage_ids=[stage.id],
                value_amount=_amount(value.get("amount") or Decimal(0), currency), currency=currency,
                status="open", forecast_category=forecast_category, **values, **server_fields)
    _enter(deal, stage, now, lost_reason)
    await DEAL.created(session, actor, deal)
    session.add(StageMove(org_id=actor.org_id, deal_id=deal.id, from_stage_id=None, to_stage_id=stage.id,
                          moved_at=now, moved_by=_who(actor), seconds_in_previous=None))
    for type_, _ in _entered_events(stage, None):
        await DEAL.emit(session, actor, deal, type_.split(".", 1)[1])
    await session.flush()
    return deal


def _amount(amount: Decimal, currency: str) -> Decimal:
    """A deal's value in its currency: at most the places amounts of that currency are written with (2, or 3 for
    BHD, KWD...), else 422 naming `value.amount`."""
    places = amount_places(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise ValidationFailed(f"amount has at most {places} decimal places in {currency}",
                               loc=("body", "value", "amount"))
    return amount.quantize(Decimal(1).scaleb(-places))


async def has_line_items(session: AsyncSession, deal: Deal) -> bool:
    return bool(await session.scalar(select(exists().where(LineItem.org_id == deal.org_id,
                                                           LineItem.deal_id == deal.id))))


def _who(actor: Principal | None) -> dict[str, Any]:
    return actor.actor if actor else {"type": "system", "id": None}


def _entered_events(stage: Stage, previous_status: str | None) -> list[tuple[str, dict[str, Any]]]:
    if stage.kind in ("won", "lost") and previous_status != stage.kind:
        return [(f"deal.{stage.kind}", {})]
    return []


async def _check_refs(session: AsyncSession, org_id: UUID, values: dict[str, Any], deal: Deal | None = None) -> None:
    for field, kind in (("contact_id", CONTACT), ("company_id", COMPANY)):
        if values.get(field) and (deal is None or getattr(deal, field) != values[field]):
            await require_ref(session, kind, org_id, values[field], field)


async def update(session: AsyncSession, actor: Principal, deal_id: UUID, patch: DealUpdate,
                 expected_version: int | None) -> Deal:
    changes = patch.model_dump(exclude_unset=True)
    new_pipeline = changes.pop("pipeline_id", None)
    new_stage = changes.pop("stage_id", None)
    # A move holds the pipeline of the stage it targets before the deal (the locking rule in `app.domain.flows`).
    target = await locks.pipeline_shared(session, actor.org_id, stage_id=new_stage) if new_stage else None
    deal = await DEAL.get(session, actor, deal_id, for_update=True)
    check_version(deal.version, expected_version)
    before = DEAL.dump(deal)
    value = changes.pop("value", None)
    lost_reason_given = "lost_reason" in changes
    lost_reason = changes.pop("lost_reason", None)
    forecast_given = "forecast_category" in changes
    forecast_category = changes.pop("forecast_category", None)
    if new_pipeline is not None and new_pipeline != deal.pipeline_id and new_stage is None:
        raise ValidationFailed("moving a deal to another pipeline needs a stage_id of that pipeline",
                               loc=("body", "stage_id"))
    values = await prepare_values(session, actor, "deal", changes, deal)
    await _check_refs(session, actor.org_id, values, deal)
    await reference_lists.check_values(session, actor, {"lost_reason": lost_reason})
    if value is not None and await has_line_items(session, deal):
        raise ValidationFailed("the value of a deal with line items is the sum of its items: change the items",
                               loc=("body", "value"))
    apply(deal, values, required=("title",))
    if value is not None:
        if value.get("currency"):
            deal.currency = value["currency"].upper()
        deal.value_amount = _amount(value["amount"], deal.currency)
    extra: list[tuple[str, dict[str, Any]]] = []
    if new_stage is not None and new_stage != deal.stage_id:
        if target is None or target.id != (new_pipeline or deal.pipeline_id):
            raise ValidationFailed("stage_id must be a stage of the deal's pipeline", loc=("body", "stage_id"))
        stage = _stage_of(target, new_stage)
        extra = await _move(session, actor, deal, target, stage, lost_reason if lost_reason_given else None)
    elif lost_reason_given:
        if deal.status == "lost" and not lost_reason:
            raise ValidationFailed("a lost deal keeps its lost_reason", loc=("body", "lost_reason"))
        if deal.status != "lost" and lost_reason:
            raise ValidationFailed("lost_reason is only for lost deals", loc=("body", "lost_reason"))
        deal.lost_reason = lost_reason
    if forecast_given:  # set on this write: it wins over the category a move copied from the stage
        deal.forecast_category = forecast_category or await _stage_category(session, deal)
    return await DEAL.updated(session, actor, deal, before, extra=extra)


async def _stage_category(session: AsyncSession, deal: Deal) -> str:
    stage = await session.get(Stage, (deal.org_id, deal.stage_id))  # the identity map answers after a move
    assert stage is not None  # a deal's stage row always exists (stages are soft-deleted)
    return stage.forecast_category


async def _move(session: AsyncSession, actor: Principal | None, deal: Deal, pipeline: Pipeline, stage: Stage,
                lost_reason: str | None) -> list[tuple[str, dict[str, Any]]]:
    now = _now()
    previous_stage, previous_status, previous_pipeline = deal.stage_id, deal.status, deal.pipeline_id
    session.add(StageMove(
        org_id=deal.org_id, deal_id=deal.id, from_stage_id=previous_stage, to_stage_id=stage.id, moved_at=now,
        moved_by=_who(actor), seconds_in_previous=max(0, int((now - deal.stage_entered_at).total_seconds())),
    ))
    _enter(deal, stage, now, lost_reason or (deal.lost_reason if stage.kind == "lost" else None))
    deal.pipeline_id, deal.stage_id, deal.stage_entered_at = pipeline.id, stage.id, now
    deal.entered_stage_ids = entered_stages(deal.entered_stage_ids, stage.id)
    deal.forecast_category = stage.forecast_category
    previous = {"stage_id": str(previous_stage)}
    if previous_pipeline != pipeline.id:
        previous["pipeline_id"] = str(previous_pipeline)
    return [("deal.stage_changed", {"previous": previous})] + _entered_events(stage, previous_status)


def entered_stages(entered: list[UUID] | None, stage_id: UUID) -> list[UUID]:
    """A deal's `entered_stage_ids` once it entered `stage_id`: sorted, without repeats (Python orders UUIDs
    as PostgreSQL does, byte by byte), so that deals which entered the same stages hold equal arrays."""
    return sorted({*(entered or ()), stage_id})


# The same in SQL, for the rows an UPDATE moves: `deals.entered_stage_ids` plus `:entered_stage`.
_ENTERED_SQL = ("ARRAY(SELECT DISTINCT s FROM unnest(array_append(deals.entered_stage_ids, :entered_stage)) s"
                " ORDER BY s)")


async def count(session: AsyncSession, org_id: UUID, *, pipeline_id: UUID | None = None,
                stage_id: UUID | None = None) -> int:
    """Live deals of a pipeline or of a stage."""
    stmt = select(func.count()).select_from(Deal).where(Deal.org_id == org_id, Deal.deleted_at.is_(None))
    if pipeline_id is not None:
        stmt = stmt.where(Deal.pipeline_id == pipeline_id)
    if stage_id is not None:
        stmt = stmt.where(Deal.stage_id == stage_id)
    return await session.scalar(stmt) or 0


async def move_all(session: AsyncSession, actor: Principal, from_stage: Stage, to_stage: Stage) -> int:
    """Move every live deal of a stage to another stage of the same pipeline, by the rules of `_enter` and
    `_move`, in three statements whatever their number: the UPDATE (which locks the rows and returns them with
    the values they had), the stage history and the events. The caller holds the pipeline exclusively."""
    now = _now()
    old = (select(Deal.org_id, Deal.id, Deal.status, Deal.closed_at, Deal.lost_reason, Deal.stage_entered_at,
                  Deal.forecast_category)
           .where(Deal.org_id == actor.org_id, Deal.stage_id == from_stage.id, Deal.deleted_at.is_(None))
           .with_for_update().cte("old"))
    kind = to_stage.kind
    closed_at = None if kind == "open" else case(
        (or_(old.c.status != kind, Deal.closed_at.is_(None)), literal(now)), else_=Deal.closed_at)
    lost_reason = func.coalesce(Deal.lost_reason, "stage removed") if kind == "lost" else None
    rows = (await session.execute(
        update_rows(Deal).where(Deal.org_id == old.c.org_id, Deal.id == old.c.id)
        .values(status=kind, closed_at=closed_at, lost_reason=lost_reason, stage_id=to_stage.id,
                stage_entered_at=now, forecast_category=to_stage.forecast_category, version=Deal.version + 1,
                entered_stage_ids=text(_ENTERED_SQL).bindparams(bindparam("entered_stage", to_stage.id, type_=Uuid)))
        .returning(Deal, old.c.status, old.c.closed_at, old.c.lost_reason, old.c.stage_entered_at,
                   old.c.forecast_category)
        .execution_options(synchronize_session=False, populate_existing=True)
    )).all()
    if not rows:
        return 0
    who = _who(actor)
    history, emitted = [], []
    for deal, status, closed, reason, entered, category in rows:
        history.append({"org_id": deal.org_id, "id": new_id(), "deal_id": deal.id, "from_stage_id": from_stage.id,
                        "to_stage_id": to_stage.id, "moved_at": now, "moved_by": who,
                        "seconds_in_previous": max(0, int((now - entered).total_seconds()))})
        after = DEAL.dump(deal)
        before = DEAL.read.model_validate(deal).model_copy(update={
            "stage_id": from_stage.id, "status": status, "closed_at": closed, "lost_reason": reason,
            "stage_entered_at": entered, "forecast_category": category}).model_dump(mode="json")
        payload = {"object": after}
        emitted.append(("deal.updated", "deal", deal.id, deal.version, {**payload, "previous": changed(before, after)}))
        emitted += [(type_, "deal", deal.id, deal.version, {**payload, **data}) for type_, data in
                    [("deal.stage_changed", {"previous": {"stage_id": str(from_stage.id)}}),
                     *_entered_events(to_stage, status)]]
    await session.execute(insert(StageMove), history)
    await events.emit_many(session, actor, actor.org_id, emitted)
    return len(rows)


async def history(session: AsyncSession, who: Reader, deal_id: UUID) -> list[StageMove]:
    """The stage moves of a deal `who` may read (a deleted deal's: 404, as its GET)."""
    await DEAL.get(session, who, deal_id)
    return list(await session.scalars(select(StageMove).where(StageMove.org_id == org_of(who), StageMove.deal_id == deal_id)
                                      .order_by(StageMove.moved_at, StageMove.id)))


async def reassign(session: AsyncSession, actor: Principal, from_user: UUID, to_user: UUID) -> int:
    """A leaving rep's open deals go to a colleague (won and lost deals keep their history's owner)."""
    return await reassign_owner(session, actor, DEAL, (Deal.owner_id == from_user) & (Deal.status == "open"),
                                from_user, to_user)
