"""The pessimistic locks of the house, all taken here so that their order and modes stay one rule: it is
written down in `app.domain.flows`. Each lock lasts until the transaction ends."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.orgs.models import Org
from app.domain.pipelines.models import Pipeline, Stage

_KEYS = text("SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest(CAST(:names AS text[])) AS k")


def _live_pipeline(org_id: UUID) -> Select[tuple[Pipeline, int]]:
    return select(Pipeline, Pipeline.version).where(Pipeline.org_id == org_id, Pipeline.deleted_at.is_(None))


async def _locked(session: AsyncSession, stmt: Select[tuple[Pipeline, int]]) -> Pipeline | None:
    """Run a locking read of a pipeline. One loaded earlier in the session keeps its attributes unless the row's
    version moved meanwhile (every stage change bumps it): then it and its stages are read again."""
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    pipeline, version = row
    if pipeline.version != version:
        await session.refresh(pipeline)
    return pipeline


async def pipeline_shared(session: AsyncSession, org_id: UUID, *, pipeline_id: UUID | None = None,
                          stage_id: UUID | None = None) -> Pipeline | None:
    """The pipeline a deal enters (`pipeline_id`, else the one holding `stage_id`, else the default one) under
    FOR KEY SHARE: deals move side by side, a structural change waits for them and they for it. Its stages
    are read after the lock, so they are the ones that hold until commit. None: no such live pipeline."""
    stmt = _live_pipeline(org_id)
    if pipeline_id is not None:
        stmt = stmt.where(Pipeline.id == pipeline_id)
    elif stage_id is not None:
        stmt = stmt.where(Pipeline.id == select(Stage.pipeline_id).where(
            Stage.org_id == org_id, Stage.id == stage_id).scalar_subquery())
    else:
        stmt = stmt.where(Pipeline.is_default.is_(True))
    return await _locked(session, stmt.with_for_update(read=True, key_share=True))


async def pipeline_exclusive(session: AsyncSession, org_id: UUID, pipeline_id: UUID) -> Pipeline | None:
    """A pipeline under FOR UPDATE, for a change of its structure (stages added, deleted, reordered or changing
    kind; the pipeline deleted): it waits for the deal moves under way and holds new ones back."""
    return await _locked(session, _live_pipeline(org_id).where(Pipeline.id == pipeline_id).with_for_update())


async def org_exclusive(session: AsyncSession, org_id: UUID) -> None:
    """The organisation's row under FOR NO KEY UPDATE: one change at a time to what the org as a whole must keep
    (an active owner). Inserts referencing the org (FOR KEY SHARE) go on meanwhile."""
    await session.execute(select(Org.id).where(Org.id == org_id).with_for_update(key_share=True))


async def keys(session: AsyncSession, *names: str) -> None:
    """Transaction-level advisory locks on names (a 64-bit hash of each), taken in sorted order so that two
    holders of overlapping sets cannot deadlock. A hash collision only makes two unrelated writes queue."""
    if not names:
        return
    await session.execute(_KEYS, {"names": sorted(set(names))})


def person(org_id: UUID, email: str | None, phone: str | None) -> list[str]:
    """The names under which writes that find-or-create a person (by normalised email or E.164 phone) queue."""
    return [f"person:{org_id}:{kind}:{value}" for kind, value in (("email", email), ("phone", phone)) if value]


def external_id(org_id: UUID, object_type: str, source: str, external: str) -> str:
    """The name under which writes of one partner key queue."""
    return f"external-id:{org_id}:{object_type}:{source}:{external}"
