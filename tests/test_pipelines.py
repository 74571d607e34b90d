"""Pipelines and their stages, as a board front-end uses them: the default pipeline, the stage rule
(at least one open, one won and one lost stage), ordering, and what happens to deals when stages change."""

from __future__ import annotations

from tests.factories import signup

STAGES = [
    {"name": "Lead in", "probability": 10},
    {"name": "Demo", "probability": 50},
    {"name": "Won", "probability": 100, "kind": "won"},
    {"name": "Lost", "probability": 0, "kind": "lost"},
]


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    return body


def _locs(body: dict) -> list[list]:
    return [e["loc"] for e in body.get("errors", [])]


async def _default_pipeline(client, acct) -> dict:
    r = await client.get("/v1/pipelines", headers=acct.headers)
    assert r.status_code == 200, r.text
    (pipeline,) = [p for p in r.json()["data"] if p["is_default"]]
    return pipeline


async def _create_pipeline(client, acct, name: str = "Partners", stages: list | None = None, **extra) -> dict:
    r = await client.post("/v1/pipelines", headers=acct.headers,
                          json={"name": name, "stages": stages or STAGES, **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def _deal(client, acct, **body) -> dict:
    r = await client.post("/v1/deals", headers=acct.headers, json={"title": "A deal", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def _pipeline(client, acct, pipeline_id: str) -> dict:
    r = await client.get(f"/v1/pipelines/{pipeline_id}", headers=acct.headers)
    assert r.status_code == 200, r.text
    return r.json()


def _by_name(pipeline: dict) -> dict[str, dict]:
    return {s["name"]: s for s in pipeline["stages"]}


async def test_a_new_org_has_one_default_sales_pipeline(client):
    acct = await signup(client)
    r = await client.get("/v1/pipelines", headers=acct.headers)
    assert r.status_code == 200
    pipelines = r.json()["data"]
    assert len(pipelines) == 1
    (sales,) = pipelines
    assert sales["name"] == "Sales"
    assert sales["is_default"] is True
    assert sales["currency"] == "EUR"
    stages = sales["stages"]
    assert [(s["name"], s["kind"], s["position"]) for s in stages] == [
        ("Qualification", "open", 0), ("Proposal", "open", 1), ("Negotiation", "open", 2),
        ("Won", "won", 3), ("Lost", "lost", 4)]
    assert all(0 <= s["probability"] <= 100 for s in stages)
    assert stages[3]["probability"] == 100 and stages[4]["probability"] == 0
    # Open stages grow more likely along the way.
    assert stages[0]["probability"] < stages[1]["probability"] < stages[2]["probability"]
    assert {s["pipeline_id"] for s in stages} == {sales["id"]}

    # The same pipeline through GET one and the stages route.
    one = await client.get(f"/v1/pipelines/{sales['id']}", headers=acct.headers)
    assert one.status_code == 200
    assert one.json() == sales
    assert one.headers["ETag"] == f'"{sales["version"]}"'
    listed = await client.get(f"/v1/pipelines/{sales['id']}/stages", headers=acct.headers)
    assert listed.json()["data"] == stages


async def test_create_pipeline_with_inline_stages(client):
    acct = await signup(client)
    r = await client.patch("/v1/org", headers=acct.headers, json={"default_currency": "USD"})
    assert r.status_code == 200, r.text
    stages = [  # given out of order, each with its place
        {"name": "Won", "probability": 100, "kind": "won", "position": 2},
        {"name": "Intro", "probability": 20, "rotting_days": 14, "position": 0},
        {"name": "Lost", "probability": 0, "kind": "lost", "position": 3},
        {"name": "Demo", "probability": 50, "position": 1},
    ]
    r = await client.post("/v1/pipelines", headers=acct.headers, json={"name": "Partners", "stages": stages})
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"/v1/pipelines/{body['id']}"
    assert r.headers["ETag"] == f'"{body["version"]}"'
    assert body["name"] == "Partners"
    assert body["currency"] == "USD"  # the org's default currency
    assert body["is_default"] is False
    assert [(s["name"], s["position"], s["kind"]) for s in body["stages"]] == [
        ("Intro", 0, "open"), ("Demo", 1, "open"), ("Won", 2, "won"), ("Lost", 3, "lost")]
    intro = _by_name(body)["Intro"]
    assert intro["probability"] == 20 and intro["rotting_days"] == 14
    assert _by_name(body)["Demo"]["rotting_days"] is None
    assert (await _pipeline(client, acct, body["id"])) == body

    explicit = await _create_pipeline(client, acct, "Renewals", currency="GBP")
    assert explicit["currency"] == "GBP"
    assert [s["name"] for s in explicit["stages"]] == ["Lead in", "Demo", "Won", "Lost"]
    assert [s["position"] for s in explicit["stages"]] == [0, 1, 2, 3]

    # The default pipeline is untouched and still the only default.
    listed = (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"]
    assert sorted(p["name"] for p in listed) == ["Partners", "Renewals", "Sales"]
    assert [p["name"] for p in listed if p["is_default"]] == ["Sales"]


async def test_pipeline_must_have_open_won_and_lost_stages(client):
    acct = await signup(client)
    won = {"name": "Won", "probability": 100, "kind": "won"}
    lost = {"name": "Lost", "probability": 0, "kind": "lost"}
    first = {"name": "Open", "probability": 10}
    second = {"name": "Open 2", "probability": 30}
    for stages, missing in (([first, second, lost], "won"), ([first, second, won], "lost"),
                            ([won, lost, {**lost, "name": "Lost 2"}], "open")):
        r = await client.post("/v1/pipelines", headers=acct.headers, json={"name": "Broken", "stages": stages})
        body = _problem(r, 422)
        assert missing in body["detail"] or any(missing in e["msg"] for e in body["errors"])
    r = await client.post("/v1/pipelines", headers=acct.headers,
                          json={"name": "Bad probability", "stages": [{**first, "probability": 101}, won, lost]})
    _problem(r, 422)
    listed = (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"]
    assert [p["name"] for p in listed] == ["Sales"]


async def test_add_stage_at_a_position_shifts_the_others(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    r = await client.post(f"/v1/pipelines/{sales['id']}/stages", headers=acct.headers,
                          json={"name": "Demo", "probability": 25, "position": 1})
    assert r.status_code == 201, r.text
    stage = r.json()
    assert stage["name"] == "Demo" and stage["position"] == 1 and stage["kind"] == "open"
    assert stage["pipeline_id"] == sales["id"]

    after = await _pipeline(client, acct, sales["id"])
    assert [s["name"] for s in after["stages"]] == ["Qualification", "Demo", "Proposal", "Negotiation", "Won",
                                                    "Lost"]
    assert [s["position"] for s in after["stages"]] == [0, 1, 2, 3, 4, 5]
    assert after["version"] > sales["version"]  # stage edits change the pipeline's ETag

    # Without a position the stage goes last; a position past the end also means last.
    r = await client.post(f"/v1/pipelines/{sales['id']}/stages", headers=acct.headers,
                          json={"name": "Churned", "probability": 0, "kind": "lost"})
    assert r.status_code == 201 and r.json()["position"] == 6
    r = await client.post(f"/v1/pipelines/{sales['id']}/stages", headers=acct.headers,
                          json={"name": "Parked", "probability": 5, "position": 99})
    assert r.status_code == 201 and r.json()["position"] == 7
    r = await client.post(f"/v1/pipelines/{sales['id']}/stages", headers=acct.headers,
                          json={"name": "First", "probability": 5, "position": 0})
    assert r.status_code == 201 and r.json()["position"] == 0
    after = await _pipeline(client, acct, sales["id"])
    assert [s["name"] for s in after["stages"]] == ["First", "Qualification", "Demo", "Proposal", "Negotiation",
                                                    "Won", "Lost", "Churned", "Parked"]
    assert [s["position"] for s in after["stages"]] == list(range(9))


async def test_reorder_stages_needs_every_stage_exactly_once(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    ids = [s["id"] for s in sales["stages"]]
    new_order = [ids[2], ids[0], ids[1], ids[4], ids[3]]
    r = await client.post(f"/v1/pipelines/{sales['id']}/stages/reorder", headers=acct.headers,
                          json={"stage_ids": new_order})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["id"] for s in body["stages"]] == new_order
    assert [s["position"] for s in body["stages"]] == [0, 1, 2, 3, 4]
    assert [s["name"] for s in body["stages"]] == ["Negotiation", "Qualification", "Proposal", "Lost", "Won"]
    assert (await _pipeline(client, acct, sales["id"]))["stages"] == body["stages"]

    other = await _create_pipeline(client, acct)
    for bad in (new_order[:-1],  # one missing
                new_order + [new_order[0]],  # one twice
                new_order[:-1] + [new_order[0]],  # right length, one twice, one missing
                new_order[:-1] + [other["stages"][0]["id"]]):  # a stage of another pipeline
        r = await client.post(f"/v1/pipelines/{sales['id']}/stages/reorder", headers=acct.headers,
                              json={"stage_ids": bad})
        body = _problem(r, 422)
        assert ["body", "stage_ids"] in _locs(body)
    # Nothing changed by the rejected attempts.
    assert [s["id"] for s in (await _pipeline(client, acct, sales["id"]))["stages"]] == new_order


async def test_rename_and_change_probability_of_a_stage(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    proposal = _by_name(sales)["Proposal"]
    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{proposal['id']}", headers=acct.headers,
                           json={"name": "Offer sent", "probability": 55, "rotting_days": 10})
    assert r.status_code == 200, r.text
    stage = r.json()
    assert (stage["name"], stage["probability"], stage["rotting_days"]) == ("Offer sent", 55, 10)
    assert stage["kind"] == "open" and stage["position"] == 1
    assert r.headers["ETag"] == f'"{stage["version"]}"'
    after = await _pipeline(client, acct, sales["id"])
    assert after["stages"][1] == stage
    assert [s["name"] for s in after["stages"]] == ["Qualification", "Offer sent", "Negotiation", "Won", "Lost"]

    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{proposal['id']}", headers=acct.headers,
                           json={"probability": 101})
    _problem(r, 422)
    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{proposal['id']}", headers=acct.headers,
                           json={"position": 3})
    _problem(r, 422)  # unknown field: order changes go through reorder

    # Someone else renames it; an edit based on the old stage ETag is refused.
    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{proposal['id']}", headers=acct.headers,
                           json={"name": "Stale"})
    assert r.status_code == 200
    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{proposal['id']}",
                           headers={**acct.headers, "If-Match": f'"{stage["version"]}"'}, json={"name": "Lost update"})
    _problem(r, 412)
    assert _by_name(await _pipeline(client, acct, sales["id"]))["Stale"]["probability"] == 55


async def test_stage_forecast_categories(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    assert [s["forecast_category"] for s in sales["stages"]] == ["pipeline", "best_case", "commit", "commit",
                                                                 "omitted"]
    pipeline = await _create_pipeline(client, acct, stages=[
        {"name": "Lead in", "probability": 10, "forecast_category": "best_case"},
        {"name": "Demo", "probability": 50}, STAGES[2], STAGES[3]])
    lead_in, demo = _by_name(pipeline)["Lead in"], _by_name(pipeline)["Demo"]
    assert (lead_in["forecast_category"], demo["forecast_category"]) == ("best_case", "best_case")
    base = f"/v1/pipelines/{pipeline['id']}/stages"

    # A stage on its default follows its probability; one set explicitly keeps its category.
    r = await client.patch(f"{base}/{demo['id']}", headers=acct.headers, json={"probability": 80})
    assert r.status_code == 200 and r.json()["forecast_category"] == "commit"
    r = await client.patch(f"{base}/{lead_in['id']}", headers=acct.headers, json={"probability": 90})
    assert r.status_code == 200 and r.json()["forecast_category"] == "best_case"
    r = await client.patch(f"{base}/{lead_in['id']}", headers=acct.headers, json={"forecast_category": None})
    assert r.status_code == 200 and r.json()["forecast_category"] == "commit"  # null: back to the default
    r = await client.patch(f"{base}/{demo['id']}", headers=acct.headers, json={"forecast_category": "omitted"})
    assert r.status_code == 200 and r.json()["forecast_category"] == "omitted"

    # Deals copy the category when they enter the stage; a stage edit leaves the deals already there alone.
    deal = await _deal(client, acct, pipeline_id=pipeline["id"], stage_id=demo["id"])
    assert deal["forecast_category"] == "omitted"
    r = await client.patch(f"{base}/{demo['id']}", headers=acct.headers, json={"forecast_category": "pipeline"})
    assert r.status_code == 200
    r = await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers)
    assert r.json()["forecast_category"] == "omitted"

    r = await client.post(base, headers=acct.headers, json={"name": "Closing", "probability": 45})
    assert r.status_code == 201 and r.json()["forecast_category"] == "best_case"
    r = await client.post(base, headers=acct.headers, json={"name": "X", "probability": 5, "forecast_category": "no"})
    _problem(r, 422)


async def test_changing_the_kind_of_a_stage(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    stages = _by_name(sales)
    await _deal(client, acct, stage_id=stages["Proposal"]["id"])

    # Proposal holds a deal whose status depends on the kind: 409, nothing changed.
    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{stages['Proposal']['id']}", headers=acct.headers,
                           json={"kind": "won"})
    body = _problem(r, 409)
    assert "deal" in body["detail"]
    assert _by_name(await _pipeline(client, acct, sales["id"]))["Proposal"]["kind"] == "open"

    # An empty stage may change kind, as long as the pipeline keeps an open, a won and a lost stage.
    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{stages['Negotiation']['id']}",
                           headers=acct.headers, json={"kind": "won"})
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "won"
    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{stages['Lost']['id']}", headers=acct.headers,
                           json={"kind": "open"})
    assert r.status_code in (409, 422)
    assert _by_name(await _pipeline(client, acct, sales["id"]))["Lost"]["kind"] == "lost"


async def test_deleting_a_stage_that_holds_deals(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    stages = _by_name(sales)
    proposal, negotiation = stages["Proposal"]["id"], stages["Negotiation"]["id"]
    d1 = await _deal(client, acct, title="One", stage_id=proposal)
    d2 = await _deal(client, acct, title="Two", stage_id=proposal)
    other = await _deal(client, acct, title="Elsewhere", stage_id=stages["Qualification"]["id"])

    r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{proposal}", headers=acct.headers)
    body = _problem(r, 409)
    assert "2 deal" in body["detail"] and "move_deals_to" in body["detail"]
    assert len((await _pipeline(client, acct, sales["id"]))["stages"]) == 5

    # A target that is not another stage of this pipeline is refused.
    foreign = (await _create_pipeline(client, acct))["stages"][0]["id"]
    for target in (proposal, foreign):
        r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{proposal}", headers=acct.headers,
                                params={"move_deals_to": target})
        assert r.status_code == 422, r.text
    assert len((await _pipeline(client, acct, sales["id"]))["stages"]) == 5

    r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{proposal}", headers=acct.headers,
                            params={"move_deals_to": negotiation})
    assert r.status_code == 204, r.text
    after = await _pipeline(client, acct, sales["id"])
    assert [s["name"] for s in after["stages"]] == ["Qualification", "Negotiation", "Won", "Lost"]
    assert [s["position"] for s in after["stages"]] == [0, 1, 2, 3]

    for deal in (d1, d2):
        moved = (await client.get(f"/v1/deals/{deal['id']}", headers=acct.headers)).json()
        assert moved["stage_id"] == negotiation and moved["status"] == "open"
        history = (await client.get(f"/v1/deals/{deal['id']}/stage-history", headers=acct.headers)).json()["data"]
        assert [(h["from_stage_id"], h["to_stage_id"]) for h in history] == [(None, proposal), (proposal, negotiation)]
        assert history[-1]["moved_by"] == {"type": "user", "id": acct.user_id}
    untouched = (await client.get(f"/v1/deals/{other['id']}/stage-history", headers=acct.headers)).json()["data"]
    assert len(untouched) == 1
    listed = (await client.get("/v1/deals", headers=acct.headers, params={"stage_id": negotiation})).json()["data"]
    assert {d["id"] for d in listed} == {d1["id"], d2["id"]}

    r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{negotiation}", headers=acct.headers)
    assert r.status_code == 409  # it holds the two moved deals now
    # The deleted stage is gone for good.
    r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{proposal}", headers=acct.headers,
                           json={"name": "Zombie"})
    assert r.status_code == 404


async def test_deleting_the_last_stage_of_a_kind_is_refused(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    stages = _by_name(sales)
    for name in ("Won", "Lost"):
        r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{stages[name]['id']}", headers=acct.headers)
        assert r.status_code in (409, 422), r.text
        assert name.lower() in r.json()["detail"]
    # Remove two of the three open stages; the third is the last open one.
    for name in ("Qualification", "Proposal"):
        r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{stages[name]['id']}", headers=acct.headers)
        assert r.status_code == 204, r.text
    r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{stages['Negotiation']['id']}",
                            headers=acct.headers)
    assert r.status_code in (409, 422)
    after = await _pipeline(client, acct, sales["id"])
    assert [(s["name"], s["position"]) for s in after["stages"]] == [("Negotiation", 0), ("Won", 1), ("Lost", 2)]

    # With a second won stage, the first may go.
    r = await client.post(f"/v1/pipelines/{sales['id']}/stages", headers=acct.headers,
                          json={"name": "Paid", "probability": 100, "kind": "won"})
    assert r.status_code == 201
    r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{stages['Won']['id']}", headers=acct.headers)
    assert r.status_code == 204
    assert [s["kind"] for s in (await _pipeline(client, acct, sales["id"]))["stages"]] == ["open", "lost", "won"]


async def test_only_one_default_pipeline(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    partners = await _create_pipeline(client, acct)
    r = await client.patch(f"/v1/pipelines/{partners['id']}", headers=acct.headers, json={"is_default": True})
    assert r.status_code == 200, r.text
    assert r.json()["is_default"] is True
    listed = (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"]
    assert {p["name"]: p["is_default"] for p in listed} == {"Sales": False, "Partners": True}
    old = await _pipeline(client, acct, sales["id"])
    assert old["is_default"] is False
    assert old["version"] > sales["version"]  # its ETag moved with the change

    # New deals now land in the new default pipeline's first open stage.
    deal = await _deal(client, acct)
    assert deal["pipeline_id"] == partners["id"] and deal["stage_id"] == partners["stages"][0]["id"]

    # A pipeline created as default takes over as well.
    third = await _create_pipeline(client, acct, "Third", is_default=True)
    listed = (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"]
    assert [p["id"] for p in listed if p["is_default"]] == [third["id"]]

    # Un-defaulting the default leaves the org without one: refused.
    r = await client.patch(f"/v1/pipelines/{third['id']}", headers=acct.headers, json={"is_default": False})
    _problem(r, 422)
    assert (await _pipeline(client, acct, third["id"]))["is_default"] is True


async def test_delete_pipeline_rules(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    r = await client.delete(f"/v1/pipelines/{sales['id']}", headers=acct.headers)
    body = _problem(r, 409)
    assert "default" in body["detail"]

    partners = await _create_pipeline(client, acct)
    deal = await _deal(client, acct, pipeline_id=partners["id"])
    r = await client.delete(f"/v1/pipelines/{partners['id']}", headers=acct.headers)
    body = _problem(r, 409)
    assert "deal" in body["detail"]
    assert (await client.get(f"/v1/pipelines/{partners['id']}", headers=acct.headers)).status_code == 200

    # Once its deal lives elsewhere, the pipeline can go.
    r = await client.patch(f"/v1/deals/{deal['id']}", headers=acct.headers,
                           json={"pipeline_id": sales["id"], "stage_id": sales["stages"][0]["id"]})
    assert r.status_code == 200, r.text
    r = await client.delete(f"/v1/pipelines/{partners['id']}", headers=acct.headers)
    assert r.status_code == 204
    assert (await client.get(f"/v1/pipelines/{partners['id']}", headers=acct.headers)).status_code == 404
    listed = (await client.get("/v1/pipelines", headers=acct.headers)).json()["data"]
    assert [p["id"] for p in listed] == [sales["id"]]


async def test_pipeline_etag_and_if_match(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    r = await client.get(f"/v1/pipelines/{sales['id']}", headers=acct.headers)
    etag = r.headers["ETag"]
    r = await client.get(f"/v1/pipelines/{sales['id']}", headers={**acct.headers, "If-None-Match": etag})
    assert r.status_code == 304

    r = await client.patch(f"/v1/pipelines/{sales['id']}", headers={**acct.headers, "If-Match": etag},
                           json={"name": "New business"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "New business"
    new_etag = r.headers["ETag"]
    assert new_etag != etag

    r = await client.patch(f"/v1/pipelines/{sales['id']}", headers={**acct.headers, "If-Match": etag},
                           json={"name": "Lost update"})
    body = _problem(r, 412)
    assert body["detail"]
    assert (await _pipeline(client, acct, sales["id"]))["name"] == "New business"

    # A stage edit moves the pipeline's ETag too, so an editor holding the old one is stopped.
    r = await client.post(f"/v1/pipelines/{sales['id']}/stages", headers=acct.headers,
                          json={"name": "Demo", "probability": 30})
    assert r.status_code == 201
    r = await client.patch(f"/v1/pipelines/{sales['id']}", headers={**acct.headers, "If-Match": new_etag},
                           json={"currency": "USD"})
    _problem(r, 412)
    r = await client.post(f"/v1/pipelines/{sales['id']}/stages/reorder",
                          headers={**acct.headers, "If-Match": new_etag},
                          json={"stage_ids": [s["id"] for s in sales["stages"]]})
    _problem(r, 412)


async def test_only_admins_manage_pipelines(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    stage = sales["stages"][0]
    body = {"name": "Mine", "stages": STAGES}
    for role in ("viewer", "member", "manager"):
        user = await acct.invite(role)
        assert (await client.get("/v1/pipelines", headers=user.headers)).status_code == 200
        r = await client.post("/v1/pipelines", headers=user.headers, json=body)
        _problem(r, 403)
        r = await client.patch(f"/v1/pipelines/{sales['id']}", headers=user.headers, json={"name": "Mine"})
        assert r.status_code == 403
        r = await client.post(f"/v1/pipelines/{sales['id']}/stages", headers=user.headers,
                              json={"name": "Mine", "probability": 1})
        assert r.status_code == 403
        r = await client.patch(f"/v1/pipelines/{sales['id']}/stages/{stage['id']}", headers=user.headers,
                               json={"name": "Mine"})
        assert r.status_code == 403
        r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{stage['id']}", headers=user.headers)
        assert r.status_code == 403
    admin = await acct.invite("admin")
    r = await client.post("/v1/pipelines", headers=admin.headers, json=body)
    assert r.status_code == 201
    assert (await _pipeline(client, acct, sales["id"])) == sales  # untouched by the refused writes


async def test_another_orgs_pipeline_is_404(client):
    a, b = await signup(client, "Org A"), await signup(client, "Org B")
    theirs = await _default_pipeline(client, a)
    stage = theirs["stages"][0]
    assert (await client.get(f"/v1/pipelines/{theirs['id']}", headers=b.headers)).status_code == 404
    r = await client.patch(f"/v1/pipelines/{theirs['id']}", headers=b.headers, json={"name": "pwned"})
    assert r.status_code == 404
    r = await client.delete(f"/v1/pipelines/{theirs['id']}/stages/{stage['id']}", headers=b.headers)
    assert r.status_code == 404
    r = await client.post(f"/v1/pipelines/{theirs['id']}/stages", headers=b.headers,
                          json={"name": "x", "probability": 1})
    assert r.status_code == 404
    assert (await _pipeline(client, a, theirs["id"])) == theirs


async def test_a_restored_deal_never_sits_in_a_deleted_stage(client):
    acct = await signup(client)
    sales = await _default_pipeline(client, acct)
    stages = _by_name(sales)
    deal = await _deal(client, acct, stage_id=stages["Proposal"]["id"])
    assert (await client.delete(f"/v1/deals/{deal['id']}", headers=acct.headers)).status_code == 204
    r = await client.delete(f"/v1/pipelines/{sales['id']}/stages/{stages['Proposal']['id']}", headers=acct.headers,
                            params={"move_deals_to": stages["Negotiation"]["id"]})
    assert r.status_code in (204, 409), r.text
    r = await client.post(f"/v1/deals/{deal['id']}/restore", headers=acct.headers)
    assert r.status_code == 200, r.text
    live_stages = {s["id"] for s in (await _pipeline(client, acct, sales["id"]))["stages"]}
    restored = r.json()
    assert restored["stage_id"] in live_stages
    board = (await client.get("/v1/deals", headers=acct.headers, params={"pipeline_id": sales["id"]})).json()["data"]
    assert all(d["stage_id"] in live_stages for d in board)


async def test_stage_positions_given_on_create_are_an_order(client):
    """Positions 1..5 (not 0-based), gaps, negatives and ties: the stages come back in that order, stable for
    ties, stored 0..n-1; stages without a position come last in the order given."""
    acct = await signup(client)

    async def names(stages: list[dict]) -> list[tuple[str, int]]:
        r = await client.post("/v1/pipelines", headers=acct.headers, json={"name": "P", "stages": stages})
        assert r.status_code == 201, r.text
        return [(s["name"], s["position"]) for s in r.json()["stages"]]

    won, lost = {"kind": "won", "probability": 100}, {"kind": "lost", "probability": 0}
    one_based = [{"name": f"S{i}", "probability": 10, "position": i} for i in range(1, 4)]
    assert await names([*one_based, {"name": "Won", **won, "position": 4}, {"name": "Lost", **lost, "position": 5}]) \
        == [("S1", 0), ("S2", 1), ("S3", 2), ("Won", 3), ("Lost", 4)]
    assert await names([{"name": "Lost", **lost, "position": 900}, {"name": "B", "probability": 5, "position": 10},
                        {"name": "A", "probability": 5, "position": -3}, {"name": "Tie", "probability": 5,
                                                                             "position": 10},
                        {"name": "Won", **won}]) \
        == [("A", 0), ("B", 1), ("Tie", 2), ("Lost", 3), ("Won", 4)]
