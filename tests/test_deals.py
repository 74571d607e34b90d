"""Deals as a pipeline board and a deal page use them: defaults, money, stage moves with history,
won/lost status, filters and sorts, merge-patch, ETags, soft delete and owners."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import text

from tests.factories import signup

WON2_STAGES = [
    {"name": "Open", "probability": 20},
    {"name": "Won", "probability": 100, "kind": "won"},
    {"name": "Installed", "probability": 100, "kind": "won"},
    {"name": "Lost", "probability": 0, "kind": "lost"},
]


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


def _locs(body: dict) -> list[list]:
    return [e["loc"] for e in body.get("errors", [])]


async def _sales(client, acct) -> tuple[dict, dict[str, str]]:
    """The default pipeline and its stage ids by name."""
    r = await client.get("/v1/pipelines", headers=acct.headers)
    (pipeline,) = [p for p in r.json()["data"] if p["is_default"]]
    return pipeline, {s["name"]: s["id"] for s in pipeline["stages"]}


async def _pipeline(client, acct, stages: list, **extra) -> tuple[dict, dict[str, str]]:
    r = await client.post("/v1/pipelines", headers=acct.headers, json={"name": "Other", "stages": stages, **extra})
    assert r.status_code == 201, r.text
    pipeline = r.json()
    return pipeline, {s["name"]: s["id"] for s in pipeline["stages"]}


async def _deal(client, acct, **body) -> dict:
    r = await client.post("/v1/deals", headers=acct.headers, json={"title": "A deal", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def _get(client, acct, deal_id: str, **params) -> dict:
    r = await client.get(f"/v1/deals/{deal_id}", headers=acct.headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def _move(client, acct, deal_id: str, stage_id: str, **extra) -> dict:
    r = await client.patch(f"/v1/deals/{deal_id}", headers=acct.headers, json={"stage_id": stage_id, **extra})
    assert r.status_code == 200, r.text
    return r.json()


async def _history(client, acct, deal_id: str) -> list[dict]:
    r = await client.get(f"/v1/deals/{deal_id}/stage-history", headers=acct.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def _ids(client, acct, **params) -> list[str]:
    r = await client.get("/v1/deals", headers=acct.headers, params=params)
    assert r.status_code == 200, r.text
    return [d["id"] for d in r.json()["data"]]


async def _contact(client, acct, **body) -> dict:
    r = await client.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def _company(client, acct, name: str = "Acme GmbH") -> dict:
    r = await client.post("/v1/companies", headers=acct.headers, json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


# --- create -------------------------------------------------------------------------------------------


async def test_create_with_defaults(client):
    acct = await signup(client)
    pipeline, stages = await _sales(client, acct)
    r = await client.post("/v1/deals", headers=acct.headers, json={"title": "Acme: 50 seats"})
    assert r.status_code == 201, r.text
    deal = r.json()
    assert r.headers["Location"] == f"/v1/deals/{deal['id']}"
    assert r.headers["ETag"] == f'"{deal["version"]}"'
    assert deal["title"] == "Acme: 50 seats"
    assert deal["pipeline_id"] == pipeline["id"]
    assert deal["stage_id"] == stages["Qualification"]
    assert deal["status"] == "open"
    assert deal["value"] == {"amount": "0.00", "currency": pipeline["currency"]}
    assert deal["owner_id"] == acct.user_id
    assert deal["closed_at"] is None and deal["lost_reason"] is None
    assert deal["expected_close_date"] is None
    assert deal["contact_id"] is None and deal["company_id"] is None
    assert deal["custom_fields"] == {} and deal["external_ids"] == []
    assert _t(deal["stage_entered_at"]).tzinfo is not None
    assert (await _get(client, acct, deal["id"])) == deal  # what POST answered is what GET reads

    history = await _history(client, acct, deal["id"])
    assert len(history) == 1
    assert history[0]["from_stage_id"] is None and history[0]["to_stage_id"] == stages["Qualification"]
    assert history[0]["seconds_in_previous"] is None


async def test_create_in_a_pipeline_opens_in_its_first_open_stage(client):
    acct = await signup(client)
    other, stages = await _pipeline(client, acct, [
        {"name": "Lost early", "probability": 0, "kind": "lost"},
        {"name": "Start", "probability": 10},
        {"name": "Won", "probability": 100, "kind": "won"}], currency="USD")
    deal = await _deal(client, acct, pipeline_id=other["id"])
    assert deal["pipeline_id"] == other["id"]
    assert deal["stage_id"] == stages["Start"]
    assert deal["value"]["currency"] == "USD"  # the pipeline's currency
    # Given only a stage, the deal goes to that stage's pipeline.
    deal = await _deal(client, acct, stage_id=stages["Start"])
    assert deal["pipeline_id"] == other["id"] and deal["stage_id"] == stages["Start"]


async def test_money_amounts(client):
    acct = await signup(client)
    deal = await _deal(client, acct, value={"amount": "1200.5"})
    assert deal["value"] == {"amount": "1200.50", "currency": "EUR"}
    assert (await _get(client, acct, deal["id"]))["value"] == {"amount": "1200.50", "currency": "EUR"}
    deal = await _deal(client, acct, value={"amount": "99.99", "currency": "usd"})
    assert deal["value"] == {"amount": "99.99", "currency": "USD"}
    deal = await _deal(client, acct, value={"amount": 15})
    assert deal["value"]["amount"] == "15.00"

    for amount in ("1.005", "-1", "-0.01", "abc", "1e20"):
        r = await client.post("/v1/deals", headers=acct.headers, json={"title": "Bad", "value": {"amount": amount}})
        body = _problem(r, 422)
        assert ["body", "value", "amount"] in _locs(body), (amount, body)
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"value": {"amount": "10.001"}})
    _problem(r, 422)
    assert (await _get(client, acct, deal["id"]))["value"]["amount"] == "15.00"
    assert len(await _ids(client, acct)) == 3


async def test_stage_must_belong_to_the_pipeline(client):
    acct = await signup(client)
    sales, _ = await _sales(client, acct)
    _, other_stages = await _pipeline(client, acct, WON2_STAGES)
    stranger = await signup(client, "Other org")
    _, their_stages = await _sales(client, stranger)

    r = await client.post("/v1/deals", headers=acct.headers,
                          json={"title": "Mixed", "pipeline_id": sales["id"], "stage_id": other_stages["Open"]})
    body = _problem(r, 422)
    assert ["body", "stage_id"] in _locs(body)
    for stage_id in (their_stages["Qualification"], str(uuid.uuid4())):
        r = await client.post("/v1/deals", headers=acct.headers, json={"title": "Foreign", "stage_id": stage_id})
        body = _problem(r, 422)
        assert ["body", "stage_id"] in _locs(body)
    r = await client.post("/v1/deals", headers=acct.headers,
                          json={"title": "Foreign pipeline", "pipeline_id": (await _sales(client, stranger))[0]["id"]})
    body = _problem(r, 422)
    assert ["body", "pipeline_id"] in _locs(body)
    assert await _ids(client, acct) == []


async def test_contact_and_company_must_exist_in_the_org(client):
    acct = await signup(client)
    stranger = await signup(client, "Other org")
    their_contact = await _contact(client, stranger)
    their_company = await _company(client, stranger)
    for field, value in (("contact_id", their_contact["id"]), ("contact_id", str(uuid.uuid4())),
                         ("company_id", their_company["id"]), ("company_id", str(uuid.uuid4()))):
        r = await client.post("/v1/deals", headers=acct.headers, json={"title": "Ref", field: value})
        body = _problem(r, 422)
        assert ["body", field] in _locs(body)
    assert await _ids(client, acct) == []

    contact, company = await _contact(client, acct), await _company(client, acct)
    deal = await _deal(client, acct, contact_id=contact["id"], company_id=company["id"])
    assert (deal["contact_id"], deal["company_id"]) == (contact["id"], company["id"])
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"contact_id": their_contact["id"]})
    body = _problem(r, 422)
    assert ["body", "contact_id"] in _locs(body)
    assert (await _get(client, acct, deal["id"]))["contact_id"] == contact["id"]

    # A deleted contact cannot be linked either.
    gone = await _contact(client, acct, first_name="Gone")
    assert (await client.delete(f"/v1/contacts/{gone['id']}", headers=acct.headers)).status_code == 204
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"contact_id": gone["id"]})
    assert r.status_code == 422


# --- stage moves --------------------------------------------------------------------------------------


async def test_moves_are_recorded_in_stage_history(client):
    acct = await signup(client)
    member = await acct.invite("member")
    _, stages = await _sales(client, acct)
    deal = await _deal(client, acct)

    moved = await _move(client, acct, deal["id"], stages["Proposal"])
    assert moved["stage_id"] == stages["Proposal"] and moved["status"] == "open"
    assert _t(moved["stage_entered_at"]) > _t(deal["stage_entered_at"])
    assert moved["version"] > deal["version"]
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=member.headers, json={"stage_id": stages["Negotiation"]})
    assert r.status_code == 200, r.text
    again = r.json()
    assert _t(again["stage_entered_at"]) > _t(moved["stage_entered_at"])

    history = await _history(client, acct, deal["id"])
    assert [(h["from_stage_id"], h["to_stage_id"]) for h in history] == [
        (None, stages["Qualification"]), (stages["Qualification"], stages["Proposal"]),
        (stages["Proposal"], stages["Negotiation"])]
    assert [h["moved_by"] for h in history] == [{"type": "user", "id": acct.user_id}] * 2 + [
        {"type": "user", "id": member.user_id}]
    assert history[0]["seconds_in_previous"] is None
    assert all(isinstance(h["seconds_in_previous"], int) and h["seconds_in_previous"] >= 0 for h in history[1:])
    assert all(h["deal_id"] == deal["id"] for h in history)
    assert [_t(h["moved_at"]) for h in history] == sorted(_t(h["moved_at"]) for h in history)
    assert _t(history[2]["moved_at"]) == _t(again["stage_entered_at"])

    # Editing other fields is not a move; "moving" to the current stage is not one either.
    await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"title": "Renamed"})
    same = await _move(client, acct, deal["id"], stages["Negotiation"])
    assert _t(same["stage_entered_at"]) == _t(again["stage_entered_at"])
    assert len(await _history(client, acct, deal["id"])) == 3


async def test_seconds_in_previous_measures_the_stay(client, session):
    acct = await signup(client)
    _, stages = await _sales(client, acct)
    deal = await _deal(client, acct)
    # The deal has sat in its first stage for an hour and a half.
    await session.execute(text("UPDATE deals SET stage_entered_at = stage_entered_at - interval '90 minutes' "
                               "WHERE id = :id"), {"id": deal["id"]})
    await session.commit()
    await _move(client, acct, deal["id"], stages["Proposal"])
    await _move(client, acct, deal["id"], stages["Negotiation"])
    history = await _history(client, acct, deal["id"])
    assert 5400 <= history[1]["seconds_in_previous"] < 5400 + 60
    assert 0 <= history[2]["seconds_in_previous"] < 60


async def test_won_lost_and_reopen(client):
    acct = await signup(client)
    _, stages = await _sales(client, acct)
    deal = await _deal(client, acct)

    won = await _move(client, acct, deal["id"], stages["Won"])
    assert won["status"] == "won"
    assert won["closed_at"] is not None
    assert won["lost_reason"] is None

    # Into lost without a reason: 422 naming lost_reason, nothing changed.
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"stage_id": stages["Lost"]})
    body = _problem(r, 422)
    assert ["body", "lost_reason"] in _locs(body)
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                           json={"stage_id": stages["Lost"], "lost_reason": ""})
    assert r.status_code == 422
    assert (await _get(client, acct, deal["id"]))["status"] == "won"
    assert len(await _history(client, acct, deal["id"])) == 2

    lost = await _move(client, acct, deal["id"], stages["Lost"], lost_reason="Too expensive")
    assert lost["status"] == "lost"
    assert lost["lost_reason"] == "Too expensive"
    assert lost["closed_at"] is not None and _t(lost["closed_at"]) >= _t(won["closed_at"])

    # A lost deal's reason can be corrected, not removed.
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"lost_reason": "Chose a rival"})
    assert r.status_code == 200 and r.json()["lost_reason"] == "Chose a rival"
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"lost_reason": None})
    assert ["body", "lost_reason"] in _locs(_problem(r, 422))

    reopened = await _move(client, acct, deal["id"], stages["Proposal"])
    assert reopened["status"] == "open"
    assert reopened["closed_at"] is None
    assert reopened["lost_reason"] is None
    assert (await _get(client, acct, deal["id"])) == reopened

    history = await _history(client, acct, deal["id"])
    assert [h["to_stage_id"] for h in history] == [stages["Qualification"], stages["Won"], stages["Lost"],
                                                   stages["Proposal"]]
    # An open deal has no lost reason to set.
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"lost_reason": "Whatever"})
    assert ["body", "lost_reason"] in _locs(_problem(r, 422))

    # Created straight into a won stage: won and closed at once.
    closed = await _deal(client, acct, stage_id=stages["Won"])
    assert closed["status"] == "won" and closed["closed_at"] is not None

    # A deal can be created straight into a lost stage only with a reason.
    r = await client.post("/v1/deals", headers=acct.headers, json={"title": "Dead", "stage_id": stages["Lost"]})
    assert ["body", "lost_reason"] in _locs(_problem(r, 422))
    dead = await _deal(client, acct, stage_id=stages["Lost"], lost_reason="No budget")
    assert (dead["status"], dead["lost_reason"]) == ("lost", "No budget")
    assert dead["closed_at"] is not None


async def test_moving_among_won_stages_keeps_closed_at(client):
    acct = await signup(client)
    pipeline, stages = await _pipeline(client, acct, WON2_STAGES)
    deal = await _deal(client, acct, pipeline_id=pipeline["id"])
    won = await _move(client, acct, deal["id"], stages["Won"])
    assert won["status"] == "won" and won["closed_at"] is not None
    installed = await _move(client, acct, deal["id"], stages["Installed"])
    assert installed["status"] == "won"
    assert _t(installed["closed_at"]) == _t(won["closed_at"])
    assert _t(installed["stage_entered_at"]) > _t(won["stage_entered_at"])
    history = await _history(client, acct, deal["id"])
    assert history[-1]["from_stage_id"] == stages["Won"] and history[-1]["to_stage_id"] == stages["Installed"]
    # Entering the second won stage directly from an open one closes the deal then.
    other = await _deal(client, acct, pipeline_id=pipeline["id"])
    direct = await _move(client, acct, other["id"], stages["Installed"])
    assert direct["status"] == "won" and direct["closed_at"] is not None


async def test_moving_to_another_pipeline(client):
    acct = await signup(client)
    sales, sales_stages = await _sales(client, acct)
    other, other_stages = await _pipeline(client, acct, WON2_STAGES)
    deal = await _deal(client, acct)

    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"pipeline_id": other["id"]})
    body = _problem(r, 422)
    assert ["body", "stage_id"] in _locs(body)
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                           json={"pipeline_id": other["id"], "stage_id": sales_stages["Proposal"]})
    body = _problem(r, 422)
    assert ["body", "stage_id"] in _locs(body)
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"stage_id": other_stages["Open"]})
    assert r.status_code == 422  # a stage of another pipeline needs that pipeline_id
    current = await _get(client, acct, deal["id"])
    assert (current["pipeline_id"], current["stage_id"]) == (sales["id"], sales_stages["Qualification"])

    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                           json={"pipeline_id": other["id"], "stage_id": other_stages["Won"]})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["pipeline_id"], moved["stage_id"], moved["status"]) == (other["id"], other_stages["Won"], "won")
    history = await _history(client, acct, deal["id"])
    assert (history[-1]["from_stage_id"], history[-1]["to_stage_id"]) == (sales_stages["Qualification"],
                                                                          other_stages["Won"])
    assert await _ids(client, acct, pipeline_id=other["id"]) == [deal["id"]]
    assert await _ids(client, acct, pipeline_id=sales["id"]) == []


async def test_forecast_category_comes_from_the_stage_unless_set(client):
    acct = await signup(client)
    _, stages = await _sales(client, acct)
    deal = await _deal(client, acct)
    assert deal["forecast_category"] == "pipeline"  # Qualification (10 %)
    for stage, category in (("Proposal", "best_case"), ("Negotiation", "commit"), ("Won", "commit")):
        assert (await _move(client, acct, deal["id"], stages[stage]))["forecast_category"] == category
    lost = await _move(client, acct, deal["id"], stages["Lost"], lost_reason="budget")
    assert lost["forecast_category"] == "omitted"

    # Set on the write that moves it: the client's value wins; the next move copies the stage again.
    moved = await _move(client, acct, deal["id"], stages["Qualification"], forecast_category="commit")
    assert moved["forecast_category"] == "commit"
    assert (await _move(client, acct, deal["id"], stages["Proposal"]))["forecast_category"] == "best_case"
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"forecast_category": "omitted"})
    assert r.status_code == 200 and r.json()["forecast_category"] == "omitted"
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"forecast_category": None})
    assert r.status_code == 200 and r.json()["forecast_category"] == "best_case"  # null: the stage's again
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"forecast_category": "maybe"})
    assert ["body", "forecast_category"] in _locs(_problem(r, 422))

    explicit = await _deal(client, acct, stage_id=stages["Negotiation"], forecast_category="best_case")
    assert explicit["forecast_category"] == "best_case"
    assert (await _deal(client, acct, stage_id=stages["Negotiation"]))["forecast_category"] == "commit"
    assert await _ids(client, acct, forecast_category="best_case") == [explicit["id"], deal["id"]]
    assert await _ids(client, acct, forecast_category="omitted") == []


# --- lists --------------------------------------------------------------------------------------------


async def test_list_filters(client):
    acct = await signup(client)
    member = await acct.invite("member")
    sales, stages = await _sales(client, acct)
    other, other_stages = await _pipeline(client, acct, WON2_STAGES)
    contact, company = await _contact(client, acct), await _company(client, acct)
    a = await _deal(client, acct, title="A", contact_id=contact["id"], expected_close_date="2026-03-01")
    b = await _deal(client, acct, title="B", company_id=company["id"], expected_close_date="2026-03-31",
                    stage_id=stages["Proposal"])
    c = await _deal(client, acct, title="C", pipeline_id=other["id"], expected_close_date="2026-04-01",
                    owner_id=member.user_id)
    d = await _deal(client, acct, title="D", stage_id=stages["Won"], contact_id=contact["id"],
                    company_id=company["id"])
    e = await _deal(client, acct, title="E", stage_id=stages["Lost"], lost_reason="Timing")

    assert set(await _ids(client, acct, pipeline_id=sales["id"])) == {a["id"], b["id"], d["id"], e["id"]}
    assert await _ids(client, acct, pipeline_id=other["id"]) == [c["id"]]
    assert await _ids(client, acct, stage_id=stages["Proposal"]) == [b["id"]]
    assert await _ids(client, acct, stage_id=other_stages["Open"]) == [c["id"]]
    assert set(await _ids(client, acct, status="open")) == {a["id"], b["id"], c["id"]}
    assert await _ids(client, acct, status="won") == [d["id"]]
    assert await _ids(client, acct, status="lost") == [e["id"]]
    assert set(await _ids(client, acct, contact_id=contact["id"])) == {a["id"], d["id"]}
    assert set(await _ids(client, acct, company_id=company["id"])) == {b["id"], d["id"]}
    assert set(await _ids(client, acct, company_id=company["id"], contact_id=contact["id"])) == {d["id"]}
    # after: inclusive, before: exclusive; deals without a date never match a date bound.
    assert set(await _ids(client, acct, expected_close_after="2026-03-31")) == {b["id"], c["id"]}
    assert set(await _ids(client, acct, expected_close_before="2026-03-31")) == {a["id"]}
    assert set(await _ids(client, acct, expected_close_after="2026-03-01",
                          expected_close_before="2026-04-01")) == {a["id"], b["id"]}
    assert await _ids(client, acct, owner_id=member.user_id) == [c["id"]]
    assert set(await _ids(client, acct, owner_id=acct.user_id)) == {a["id"], b["id"], d["id"], e["id"]}
    assert set(await _ids(client, acct, pipeline_id=sales["id"], status="open")) == {a["id"], b["id"]}

    for bad in ({"status": "closed"}, {"expected_close_before": "March"}, {"pipeline_id": "nope"},
                {"sort": "title"}, {"limit": 201}):
        r = await client.get("/v1/deals", headers=acct.headers, params=bad)
        assert r.status_code == 422, bad


async def test_list_sorts(client):
    acct = await signup(client)
    _, stages = await _sales(client, acct)
    a = await _deal(client, acct, title="A", value={"amount": "500"}, expected_close_date="2026-06-01")
    b = await _deal(client, acct, title="B", value={"amount": "20.5"})
    c = await _deal(client, acct, title="C", value={"amount": "1000"}, expected_close_date="2026-01-15")
    d = await _deal(client, acct, title="D", expected_close_date="2026-03-10")
    ids = {x["title"]: x["id"] for x in (a, b, c, d)}

    def names(id_list: list[str]) -> list[str]:
        by_id = {v: k for k, v in ids.items()}
        return [by_id[i] for i in id_list]

    assert names(await _ids(client, acct)) == ["D", "C", "B", "A"]  # default: newest first
    assert names(await _ids(client, acct, sort="-created_at")) == ["D", "C", "B", "A"]
    assert names(await _ids(client, acct, sort="created_at")) == ["A", "B", "C", "D"]
    assert names(await _ids(client, acct, sort="value")) == ["D", "B", "A", "C"]
    assert names(await _ids(client, acct, sort="-value")) == ["C", "A", "B", "D"]
    # Deals without a date come last going up and first going down.
    assert names(await _ids(client, acct, sort="expected_close_date")) == ["C", "D", "A", "B"]
    assert names(await _ids(client, acct, sort="-expected_close_date")) == ["B", "A", "D", "C"]

    await _move(client, acct, c["id"], stages["Proposal"])
    await _move(client, acct, a["id"], stages["Proposal"])
    assert names(await _ids(client, acct, sort="stage_entered_at")) == ["B", "D", "C", "A"]
    assert names(await _ids(client, acct, sort="-stage_entered_at")) == ["A", "C", "D", "B"]

    # Paging through a sort with NULLs gives every deal once, in the same order.
    for sort in ("expected_close_date", "-expected_close_date", "value"):
        seen, cursor = [], None
        while True:
            params = {"sort": sort, "limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/deals", headers=acct.headers, params=params)).json()
            seen += [x["id"] for x in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == await _ids(client, acct, sort=sort)


async def test_sparse_fields(client):
    acct = await signup(client)
    deal = await _deal(client, acct, title="Sparse", value={"amount": "10"})
    r = await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers, params={"fields": "id,title"})
    assert r.status_code == 200
    assert r.json() == {"id": deal["id"], "title": "Sparse"}
    assert r.headers["ETag"] == f'"{deal["version"]}"'
    r = await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers, params={"fields": "id, value"})
    assert r.json() == {"id": deal["id"], "value": {"amount": "10.00", "currency": "EUR"}}
    r = await client.get("/v1/deals", headers=acct.headers, params={"fields": "id,title"})
    assert r.status_code == 200
    assert r.json()["data"] == [{"id": deal["id"], "title": "Sparse"}]
    r = await client.get("/v1/deals", headers=acct.headers, params={"fields": "id,nonsense"})
    _problem(r, 422)


# --- edits --------------------------------------------------------------------------------------------


async def test_patch_has_merge_semantics(client):
    acct = await signup(client)
    for key, type_ in (("segment", "text"), ("seats", "number")):
        r = await client.post("/v1/custom-fields", headers=acct.headers,
                              json={"object": "deal", "key": key, "label": key.title(), "type": type_})
        assert r.status_code == 201, r.text
    contact = await _contact(client, acct)
    deal = await _deal(client, acct, title="Merge", value={"amount": "100"}, expected_close_date="2026-05-01",
                       contact_id=contact["id"], custom_fields={"segment": "smb", "seats": 5})
    assert deal["custom_fields"] == {"segment": "smb", "seats": 5}

    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"title": "Merged"})
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["title"] == "Merged"
    for unchanged in ("value", "expected_close_date", "contact_id", "custom_fields", "stage_id", "owner_id"):
        assert after[unchanged] == deal[unchanged], unchanged

    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                           json={"expected_close_date": None, "custom_fields": {"seats": 12}})
    after = r.json()
    assert after["expected_close_date"] is None
    assert after["custom_fields"] == {"segment": "smb", "seats": 12}
    assert after["contact_id"] == contact["id"]

    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                           json={"custom_fields": {"segment": None}, "contact_id": None})
    after = r.json()
    assert after["custom_fields"] == {"seats": 12}
    assert after["contact_id"] is None
    assert (await _get(client, acct, deal["id"])) == after

    for bad, loc in (({"custom_fields": {"seats": "many"}}, ["body", "custom_fields", "seats"]),
                     ({"custom_fields": {"unknown": 1}}, ["body", "custom_fields", "unknown"]),
                     ({"title": None}, ["body", "title"]),
                     ({"status": "won"}, ["body", "status"]),
                     ({"closed_at": "2026-01-01T00:00:00Z"}, ["body", "closed_at"])):
        r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json=bad)
        body = _problem(r, 422)
        assert loc in _locs(body), (bad, body)
    assert (await _get(client, acct, deal["id"])) == after


async def test_etags(client):
    acct = await signup(client)
    deal = await _deal(client, acct)
    etag = f'"{deal["version"]}"'
    r = await client.get(f"/v1/deals/{deal['id']}", headers={**acct.headers, "If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""

    r = await client.patch(f"/v1/deals/{deal['id']}", headers={**acct.headers, "If-Match": etag},
                           json={"title": "First"})
    assert r.status_code == 200
    new_etag = r.headers["ETag"]
    assert new_etag != etag
    r = await client.patch(f"/v1/deals/{deal['id']}", headers={**acct.headers, "If-Match": etag},
                           json={"title": "Second"})
    _problem(r, 412)
    r = await client.delete(f"/v1/deals/{deal['id']}", headers={**acct.headers, "If-Match": etag})
    _problem(r, 412)
    current = await _get(client, acct, deal["id"])
    assert current["title"] == "First"
    r = await client.get(f"/v1/deals/{deal['id']}", headers={**acct.headers, "If-None-Match": etag})
    assert r.status_code == 200  # the old ETag no longer matches
    r = await client.get(f"/v1/deals/{deal['id']}", headers={**acct.headers, "If-None-Match": new_etag})
    assert r.status_code == 304


async def test_soft_delete_and_restore(client):
    acct = await signup(client)
    keep = await _deal(client, acct, title="Keep")
    deal = await _deal(client, acct, title="Bin me")
    r = await client.delete(f"/v1/deals/{deal['id']}", headers=acct.headers)
    assert r.status_code == 204
    assert r.content == b""
    assert (await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers)).status_code == 404
    r = await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers, params={"include_deleted": "true"})
    assert r.status_code == 200
    assert r.json()["deleted_at"] is not None and r.json()["title"] == "Bin me"
    assert await _ids(client, acct) == [keep["id"]]
    assert (await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"title": "x"})).status_code == 404
    assert (await client.delete(f"/v1/deals/{deal['id']}", headers=acct.headers)).status_code == 404

    r = await client.post(f"/v1/deals/{deal['id']}/restore", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["deleted_at"] is None and r.json()["title"] == "Bin me"
    assert set(await _ids(client, acct)) == {keep["id"], deal["id"]}
    assert (await _get(client, acct, deal["id"]))["deleted_at"] is None


async def test_owner_reassignment(client):
    acct = await signup(client)
    colleague = await acct.invite("member")
    leaver = await acct.invite("member")
    deal = await _deal(client, acct)

    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"owner_id": colleague.user_id})
    assert r.status_code == 200, r.text
    assert r.json()["owner_id"] == colleague.user_id
    assert await _ids(client, acct, owner_id=colleague.user_id) == [deal["id"]]

    r = await client.post(f"/v1/users/{leaver.user_id}/deactivate", headers=acct.headers, json={})
    assert r.status_code == 200, r.text
    for bad in (leaver.user_id, str(uuid.uuid4()), (await signup(client, "Other")).user_id):
        r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"owner_id": bad})
        body = _problem(r, 422)
        assert ["body", "owner_id"] in _locs(body)
        r = await client.post("/v1/deals", headers=acct.headers, json={"title": "New", "owner_id": bad})
        assert ["body", "owner_id"] in _locs(_problem(r, 422))
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers, json={"owner_id": None})
    _problem(r, 422)
    assert (await _get(client, acct, deal["id"]))["owner_id"] == colleague.user_id


async def test_viewers_read_but_do_not_write_and_other_orgs_see_nothing(client):
    acct = await signup(client)
    viewer = await acct.invite("viewer")
    deal = await _deal(client, acct, value={"amount": "5"})
    assert (await client.get(f"/v1/deals/{deal['id']}", headers=viewer.headers)).status_code == 200
    assert (await client.post("/v1/deals", headers=viewer.headers, json={"title": "x"})).status_code == 403
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=viewer.headers, json={"title": "x"})
    assert r.status_code == 403

    stranger = await signup(client, "Other org")
    for r in (await client.get(f"/v1/deals/{deal['id']}", headers=stranger.headers),
              await client.get(f"/v1/deals/{deal['id']}/stage-history", headers=stranger.headers),
              await client.patch(f"/v1/deals/{deal['id']}", headers=stranger.headers, json={"title": "x"}),
              await client.delete(f"/v1/deals/{deal['id']}", headers=stranger.headers)):
        assert r.status_code == 404
    assert await _ids(client, stranger) == []
    assert (await _get(client, acct, deal["id"])) == deal


async def test_q_searches_titles(client):
    acct = await signup(client)
    renewal = (await client.post("/v1/deals", headers=acct.headers, json={"title": "Acme renewal 2027"})).json()
    (await client.post("/v1/deals", headers=acct.headers, json={"title": "Globex pilot"})).json()

    async def ids(q: str) -> set[str]:
        r = await client.get("/v1/deals", headers=acct.headers, params={"q": q})
        assert r.status_code == 200, r.text
        return {d["id"] for d in r.json()["data"]}

    assert await ids("acme") == {renewal["id"]}
    assert await ids("REN acm") == {renewal["id"]}  # word prefixes, any order, any case
    assert await ids("2027") == {renewal["id"]}
    assert await ids("initech") == set()
    r = await client.get("/v1/deals/export.csv", headers=acct.headers, params={"q": "globex"})
    assert r.status_code == 200 and r.text.count("Globex pilot") == 1 and "Acme" not in r.text
