"""Several won stages in one pipeline (API.md "Catalog"): Won → Installation → Done. A deal is won from the first;
moves among them keep `closed_at`, are recorded in the stage history, write no second `deal.won`, and the
reports count the deal once as won."""

from __future__ import annotations

from sqlalchemy import select

from app.domain.events.models import Event
from tests.factories import signup

STAGES = [{"name": "Lead", "probability": 10}, {"name": "Proposal", "probability": 50},
          {"name": "Won", "probability": 100, "kind": "won"},
          {"name": "Installation", "probability": 100, "kind": "won"},
          {"name": "Done", "probability": 100, "kind": "won"},
          {"name": "Lost", "probability": 0, "kind": "lost"}]


async def _ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    return r.json() if r.content else {}


async def test_a_deal_moving_on_among_won_stages_stays_won_once(client, session):
    acct = await signup(client)
    h = acct.headers
    pipeline = await _ok(await client.post("/v1/pipelines", headers=h, json={
        "name": "Solar", "currency": "EUR", "stages": STAGES}), 201)
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}
    deal = await _ok(await client.post("/v1/deals", headers=h, json={
        "title": "Roof", "pipeline_id": pipeline["id"], "value": {"amount": "9000.00", "currency": "EUR"}}), 201)
    other = await _ok(await client.post("/v1/deals", headers=h, json={
        "title": "Shed", "pipeline_id": pipeline["id"], "stage_id": stage["Proposal"]}), 201)

    moved = await _ok(await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stage["Won"]}))
    assert moved["status"] == "won" and moved["closed_at"] is not None
    closed_at = moved["closed_at"]
    for name in ("Installation", "Done"):
        moved = await _ok(await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stage[name]}))
        assert moved["status"] == "won" and moved["closed_at"] == closed_at and moved["stage_id"] == stage[name]
    history = (await _ok(await client.get(f"/v1/deals/{deal['id']}/stage-history", headers=h)))["data"]
    assert [(m["from_stage_id"], m["to_stage_id"]) for m in history] == [
        (None, stage["Lead"]), (stage["Lead"], stage["Won"]), (stage["Won"], stage["Installation"]),
        (stage["Installation"], stage["Done"])]
    types = (await session.scalars(select(Event.type).where(Event.object_id == deal["id"]))).all()
    assert types.count("deal.won") == 1 and types.count("deal.stage_changed") == 3

    # straight into a later won stage: won from there, closed once
    jumped = await _ok(await client.patch(f"/v1/deals/{other['id']}", headers=h,
                                          json={"stage_id": stage["Installation"]}))
    assert jumped["status"] == "won" and jumped["closed_at"] is not None

    params = {"pipeline_id": pipeline["id"]}
    win_loss = await _ok(await client.get("/v1/reports/win-loss", headers=h, params=params))
    assert win_loss["totals"]["won"] == 2 and win_loss["totals"]["won_value"]["amount"] == "9000.00"
    funnel = await _ok(await client.get("/v1/reports/funnel", headers=h, params=params))
    assert funnel["totals"]["won"] == 2 and funnel["totals"]["deals"] == 2
    reached = {r["name"]: r["reached"] for r in funnel["rows"]}
    current = {r["name"]: r["current"] for r in funnel["rows"]}
    assert reached == {"Lead": 2, "Proposal": 2, "Won": 2, "Installation": 2, "Done": 1, "Lost": 0}
    assert current == {"Lead": 0, "Proposal": 0, "Won": 0, "Installation": 1, "Done": 1, "Lost": 0}
    velocity = await _ok(await client.get("/v1/reports/velocity", headers=h, params=params))
    assert velocity["totals"]["won"] == 2

    # back to an open stage: no longer won; won again: a new close
    reopened = await _ok(await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stage["Proposal"]}))
    assert reopened["status"] == "open" and reopened["closed_at"] is None
    rewon = await _ok(await client.patch(f"/v1/deals/{deal['id']}", headers=h, json={"stage_id": stage["Done"]}))
    assert rewon["status"] == "won" and rewon["closed_at"] > closed_at
    types = (await session.scalars(select(Event.type).where(Event.object_id == deal["id"]))).all()
    assert types.count("deal.won") == 2


async def test_deals_of_a_deleted_won_stage_move_to_another_keeping_closed_at(client):
    acct = await signup(client)
    h = acct.headers
    pipeline = await _ok(await client.post("/v1/pipelines", headers=h, json={"name": "Solar", "stages": STAGES}), 201)
    stage = {s["name"]: s["id"] for s in pipeline["stages"]}
    deal = await _ok(await client.post("/v1/deals", headers=h, json={
        "title": "Roof", "pipeline_id": pipeline["id"], "stage_id": stage["Won"]}), 201)
    r = await client.delete(f"/v1/pipelines/{pipeline['id']}/stages/{stage['Won']}", headers=h,
                            params={"move_deals_to": stage["Installation"]})
    assert r.status_code == 204, r.text
    after = await _ok(await client.get(f"/v1/deals/{deal['id']}", headers=h))
    assert after["stage_id"] == stage["Installation"] and after["status"] == "won"
    assert after["closed_at"] == deal["closed_at"]
    # the last won stages stay: a pipeline keeps at least one
    await _ok(await client.delete(f"/v1/pipelines/{pipeline['id']}/stages/{stage['Done']}", headers=h), 204)
    last = await client.delete(f"/v1/pipelines/{pipeline['id']}/stages/{stage['Installation']}", headers=h,
                               params={"move_deals_to": stage["Lead"]})
    assert last.status_code == 409, last.text
