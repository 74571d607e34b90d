"""The funnel reads how far deals got from their own rows (`deals.entered_stage_ids`). Every path that puts a
deal in a stage (create, move, batch, upsert, import, lead conversion, a stage deleted with its deals moved, a
restore) keeps that set equal to what the stage history says, and the report equals the one computed from the
history (the statement the funnel ran before the column, `bench.funnel_depth.history_statement`) after stages
are moved back and forth, reordered, change kind or are deleted."""

from __future__ import annotations

import csv
import io
from uuid import UUID, uuid4

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.deals.service import entered_stages
from app.domain.reports.query import ReportParams
from app.domain.reports.service import funnel_statement
from bench.funnel_depth import history_statement
from tests.factories import signup
from tests.reports_api import _get
from tests.test_imports import run_import

# Deals whose stored set is not the stages their history and current stage name (sorted, without repeats).
_DRIFTED = text("""
SELECT d.id, d.entered_stage_ids,
       (SELECT array_agg(DISTINCT x.s ORDER BY x.s)
        FROM (SELECT h.to_stage_id AS s FROM deal_stage_history h WHERE h.org_id = d.org_id AND h.deal_id = d.id
              UNION ALL SELECT d.stage_id) x) AS from_history
FROM deals d WHERE d.org_id = :org_id""")


async def _agree(session: AsyncSession, org_id: str, pipeline_id: str | None = None, **filters) -> dict[str, int]:
    """Check the stored sets against the history and the funnel against the reference; the stages' `reached`
    by name."""
    deals = (await session.execute(_DRIFTED, {"org_id": UUID(org_id)})).all()
    assert deals
    assert [d for d in deals if d.entered_stage_ids != d.from_history] == []
    params = ReportParams(who=UUID(org_id), pipeline_id=UUID(pipeline_id) if pipeline_id else None, **filters)
    rows = [dict(r) for r in (await session.execute(funnel_statement(params))).mappings()]
    reference = [dict(r) for r in (await session.execute(history_statement(params))).mappings()]
    assert rows == reference
    return {r["name"]: r["reached"] for r in rows}


async def _pipeline(client, acct) -> tuple[dict, dict[str, str]]:
    pipeline = [p for p in (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"]
                if p["is_default"]][0]
    return pipeline, {s["name"]: s["id"] for s in pipeline["stages"]}


async def _deal(client, acct, **body) -> dict:
    r = await client.post("/v1/deals", headers=acct.headers, json={"title": "A deal", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def _move(client, acct, deal: dict, *stages: str, **extra) -> None:
    for stage in stages:
        r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"stage_id": stage, **extra})
        assert r.status_code == 200, r.text


async def _reached(client, acct, **params) -> dict[str, int]:
    body = await _get(client, acct.headers, "funnel", **params)
    return {r["name"]: r["reached"] for r in body["rows"]}


async def test_moves_forward_and_back_then_a_reorder_and_a_kind_change(client, session):
    acct = await signup(client)
    pipeline, s = await _pipeline(client, acct)
    q, p, n, lost = s["Qualification"], s["Proposal"], s["Negotiation"], s["Lost"]
    x = await _deal(client, acct)
    await _move(client, acct, x, p, n, p, q)  # got to Negotiation, back in Qualification
    y = await _deal(client, acct)
    await _move(client, acct, y, lost, lost_reason="price")
    await _move(client, acct, y, q, p)  # reopened after Lost: an exit taken once still counts
    await _deal(client, acct, stage_id=p)  # created further down: reached every open stage before it
    expected = {"Qualification": 3, "Proposal": 3, "Negotiation": 1, "Won": 0, "Lost": 1}
    assert await _agree(session, acct.org_id) == expected
    assert await _reached(client, acct) == expected

    # Negotiation before Proposal: x's furthest stage is now Proposal, as is y's and the third deal's.
    r = await client.post(f"/v1/pipelines/{pipeline['id']}/stages/reorder", headers=acct.headers,
                          json={"stage_ids": [q, n, p, s["Won"], lost]})
    assert r.status_code == 200, r.text
    expected = {"Qualification": 3, "Negotiation": 3, "Proposal": 3, "Won": 0, "Lost": 1}
    assert await _agree(session, acct.org_id) == expected
    assert await _reached(client, acct) == expected

    # Negotiation (empty now, entered by x once) becomes a lost stage: an exit, no longer a step.
    r = await client.patch(f"/v1/pipelines/{pipeline['id']}/stages/{n}", headers=acct.headers, json={"kind": "lost"})
    assert r.status_code == 200, r.text
    expected = {"Qualification": 3, "Negotiation": 1, "Proposal": 3, "Won": 0, "Lost": 1}
    assert await _agree(session, acct.org_id) == expected
    assert await _reached(client, acct) == expected

    # ...and back to open, now last of the open stages: x reached it again, through every stage before it.
    r = await client.patch(f"/v1/pipelines/{pipeline['id']}/stages/{n}", headers=acct.headers, json={"kind": "open"})
    assert r.status_code == 200, r.text
    r = await client.post(f"/v1/pipelines/{pipeline['id']}/stages/reorder", headers=acct.headers,
                          json={"stage_ids": [q, p, n, s["Won"], lost]})
    assert r.status_code == 200, r.text
    expected = {"Qualification": 3, "Proposal": 3, "Negotiation": 1, "Won": 0, "Lost": 1}
    assert await _agree(session, acct.org_id) == expected


async def test_a_stage_deleted_with_its_deals_moved_and_a_restore(client, session):
    acct = await signup(client)
    pipeline, s = await _pipeline(client, acct)
    q, p, n = s["Qualification"], s["Proposal"], s["Negotiation"]
    in_p = [await _deal(client, acct, stage_id=p) for _ in range(2)]
    gone = await _deal(client, acct, stage_id=p)
    assert (await client.delete(f"/v1/deals/{gone['id']}", headers=acct.headers)).status_code == 204
    await _deal(client, acct)
    assert await _agree(session, acct.org_id) == {"Qualification": 3, "Proposal": 2, "Negotiation": 0, "Won": 0,
                                                  "Lost": 0}
    r = await client.delete(f"/v1/pipelines/{pipeline['id']}/stages/{p}", headers=acct.headers,
                            params={"move_deals_to": n})
    assert r.status_code == 204, r.text
    for deal in in_p:  # moved in one UPDATE: the set gained Negotiation
        got = (await session.execute(text("SELECT entered_stage_ids FROM deals WHERE id = :id"),
                                     {"id": UUID(deal["id"])})).scalar_one()
        assert got == sorted([UUID(p), UUID(n)])
    expected = {"Qualification": 3, "Negotiation": 2, "Won": 0, "Lost": 0}
    assert await _agree(session, acct.org_id) == expected
    assert await _reached(client, acct) == expected
    # The deleted deal sat in the deleted stage: restored, it enters the first open stage.
    r = await client.post(f"/v1/deals/{gone['id']}/restore", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["stage_id"] == q
    expected = {"Qualification": 4, "Negotiation": 2, "Won": 0, "Lost": 0}
    assert await _agree(session, acct.org_id) == expected


async def test_a_deal_moved_to_another_pipeline_counts_there_only(client, session):
    acct = await signup(client)
    pipeline, s = await _pipeline(client, acct)
    r = await client.post("/v1/pipelines", headers=acct.headers, json={"name": "Renewals", "stages": [
        {"name": "Offer", "kind": "open", "probability": 50}, {"name": "Signed", "kind": "won", "probability": 100},
        {"name": "Gone", "kind": "lost", "probability": 0}]})
    assert r.status_code == 201, r.text
    other = r.json()
    offer = other["stages"][0]["id"]
    deal = await _deal(client, acct)
    await _move(client, acct, deal, s["Proposal"], s["Negotiation"])
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                           json={"pipeline_id": other["id"], "stage_id": offer})
    assert r.status_code == 200, r.text
    assert await _agree(session, acct.org_id, other["id"]) == {"Offer": 1, "Signed": 0, "Gone": 0}
    assert (await _agree(session, acct.org_id))["Qualification"] == 0


async def test_lead_conversion_batch_and_upsert_enter_their_stage(client, session):
    acct = await signup(client)
    _, s = await _pipeline(client, acct)
    q, p, n, won = s["Qualification"], s["Proposal"], s["Negotiation"], s["Won"]
    lead = (await client.post("/v1/leads", headers=acct.headers, json={"title": "Inbound", "first_name": "Lea"}))
    assert lead.status_code == 201, lead.text
    r = await client.post(f"/v1/leads/{lead.json()['id']}/convert", headers=acct.headers,
                          json={"create_deal": True, "stage_id": n})
    assert r.status_code in (200, 201), r.text
    assert await _agree(session, acct.org_id) == {"Qualification": 1, "Proposal": 1, "Negotiation": 1, "Won": 0,
                                                  "Lost": 0}

    r = await client.post("/v1/deals/batch", headers=acct.headers, json={"mode": "create", "items": [
        {"title": "B1", "stage_id": p}, {"title": "B2"}]})
    assert r.status_code == 200, r.text
    b1, b2 = (x["id"] for x in r.json()["results"])
    r = await client.post("/v1/deals/batch", headers=acct.headers, json={"mode": "update", "items": [
        {"id": b1, "stage_id": q}, {"id": b2, "stage_id": won}]})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["updated", "updated"]

    r = await client.put("/v1/deals/by-external-id/erp/D-1", headers=acct.headers, json={"title": "U1", "stage_id": n})
    assert r.status_code == 201, r.text
    r = await client.put("/v1/deals/by-external-id/erp/D-1", headers=acct.headers, json={"title": "U1", "stage_id": q})
    assert r.status_code == 200, r.text
    r = await client.post("/v1/deals/batch", headers=acct.headers, json={"mode": "upsert", "items": [
        {"title": "U2", "stage_id": p, "external_ids": [{"source": "erp", "id": "D-2"}]},
        {"title": "U1", "stage_id": won, "external_ids": [{"source": "erp", "id": "D-1"}]}]})
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["created", "updated"]
    # converted → Negotiation; B1 → Proposal; B2, U1 → Won; U2 → Proposal
    expected = {"Qualification": 5, "Proposal": 5, "Negotiation": 3, "Won": 2, "Lost": 0}
    assert await _agree(session, acct.org_id) == expected
    assert await _reached(client, acct) == expected


async def test_an_import_creates_and_moves_deals_in_their_stages(committed_client, database, settings):
    c = committed_client
    acct = await signup(c)
    _, s = await _pipeline(c, acct)
    out = io.StringIO()
    rows = [["title", "stage_id", "external_id"], ["I1", s["Proposal"], "I-1"], ["I2", s["Won"], "I-2"],
            ["I3", "", "I-3"]]
    csv.writer(out).writerows(rows)
    mapping = {"title": "title", "stage_id": "stage_id", "external_id": "external_id"}
    body = await run_import(c, acct, settings, "deals.csv", out.getvalue().encode(), object="deals",
                            mapping=mapping, dedupe_by="external_id", external_source="erp")
    assert body["created"] == 3, body
    out = io.StringIO()
    csv.writer(out).writerows([["title", "stage_id", "external_id"], ["I1", s["Negotiation"], "I-1"]])
    body = await run_import(c, acct, settings, "moves.csv", out.getvalue().encode(), object="deals",
                            mapping=mapping, dedupe_by="external_id", external_source="erp", on_duplicate="update")
    assert body["updated"] == 1, body
    async with database.for_org(acct.org_id) as session:
        assert await _agree(session, acct.org_id) == {"Qualification": 3, "Proposal": 2, "Negotiation": 2,
                                                      "Won": 1, "Lost": 0}


async def test_the_set_is_sorted_as_postgresql_sorts_it(session):
    """The app adds a stage in Python, a stage deletion in SQL, the migration backfilled in SQL: one order."""
    ids = [uuid4() for _ in range(50)]
    entered: list[UUID] = []
    for stage_id in [*ids, *ids[:10]]:
        entered = entered_stages(entered, stage_id)
    in_sql = (await session.execute(text("SELECT array_agg(DISTINCT s ORDER BY s) FROM unnest(CAST(:ids AS uuid[])) s"),
                                    {"ids": [*ids, *ids[:10]]})).scalar_one()
    assert entered == in_sql and len(entered) == 50

