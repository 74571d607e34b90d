"""Record visibility by team: roles × `record_visibility` modes × every read path, and the write rules.

The org: team A (manager `lead_a`, members `alice`, `amy`, viewer `vic`), team B (member `bob`). Each of
`alice` and `bob` owns a contact with an external id, a deal, a lead and an activity. What each caller may see
is decided by one rule (`app.domain.kinds`), so every path must agree with the expectation table below."""

from __future__ import annotations

import uuid

import pytest

from tests.factories import Account, signup

# who sees whose records, per mode (admins, the org key and `all` mode see both)
SEES = {
    "team": {"alice": {"alice"}, "amy": {"alice"}, "vic": {"alice"}, "lead_a": {"alice"}, "bob": {"bob"}},
    "own": {"alice": {"alice"}, "amy": set(), "vic": set(), "lead_a": {"alice"}, "bob": {"bob"}},
}
OWNERS = ("alice", "bob")


async def _world(client) -> dict:
    owner = await signup(client, "Visible Co")
    people: dict[str, Account] = {"owner": owner}
    for name, role in (("lead_a", "manager"), ("alice", "member"), ("amy", "member"), ("vic", "viewer"),
                       ("bob", "member"), ("admin", "admin")):
        people[name] = await owner.invite(role)
    ids = {n: p.user_id for n, p in people.items()}
    r = await client.post("/v1/teams", headers=owner.headers, json={
        "name": "Team A", "manager_id": ids["lead_a"], "member_ids": [ids["alice"], ids["amy"], ids["vic"]]})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/teams", headers=owner.headers, json={"name": "Team B", "member_ids": [ids["bob"]]})
    assert r.status_code == 201, r.text
    records: dict[str, dict] = {}
    for name in OWNERS:
        tag = f"{name}-{uuid.uuid4().hex[:6]}"
        contact = (await client.post("/v1/contacts", headers=owner.headers, json={
            "first_name": name.title(), "last_name": tag, "email": f"{tag}@client.example", "owner_id": ids[name],
            "external_ids": [{"source": "erp", "id": tag}]})).json()
        deal = (await client.post("/v1/deals", headers=owner.headers, json={
            "title": f"Deal {tag}", "value": {"amount": "1000.00", "currency": "EUR"}, "contact_id": contact["id"], "owner_id": ids[name]})).json()
        lead = (await client.post("/v1/leads", headers=owner.headers, json={
            "title": f"Lead {tag}", "owner_id": ids[name]})).json()
        activity = (await client.post("/v1/activities", headers=owner.headers, json={
            "type": "note", "subject": f"Note {tag}", "contact_id": contact["id"], "owner_id": ids[name]})).json()
        records[name] = {"tag": tag, "contact": contact["id"], "deal": deal["id"], "lead": lead["id"],
                         "activity": activity["id"]}
        assert all(records[name].values()), records[name]
    key = await owner.api_key(["*"])
    return {"owner": owner, "people": people, "ids": ids, "records": records, "key": key}


async def _set_mode(client, owner: Account, mode: str) -> None:
    r = await client.patch("/v1/org", headers=owner.headers, json={"record_visibility": mode})
    assert r.status_code == 200 and r.json()["record_visibility"] == mode, r.text


async def _seen_through_every_path(client, headers: dict, world: dict) -> dict[str, set[str]]:
    """For each read path: whose records (alice/bob) this caller sees there."""
    recs = world["records"]
    seen: dict[str, set[str]] = {}

    def owners_of(ids: set[str], kind: str) -> set[str]:
        return {n for n in OWNERS if recs[n][kind] in ids}

    for kind in ("contacts", "deals", "leads", "activities"):
        r = await client.get(f"/v1/{kind}", headers=headers, params={"limit": 200})
        assert r.status_code == 200, r.text
        seen[f"list {kind}"] = owners_of({x["id"] for x in r.json()["data"]}, kind[:-1] if kind != "activities"
                                         else "activity")
        got = set()
        for name in OWNERS:
            one = await client.get(f"/v1/{kind}/{recs[name][kind[:-1] if kind != 'activities' else 'activity']}",
                                   headers=headers)
            assert one.status_code in (200, 404), one.text  # never 403: an invisible record does not exist
            if one.status_code == 200:
                got.add(name)
        seen[f"get {kind}"] = got
        export = await client.get(f"/v1/{kind}/export.csv", headers=headers)
        assert export.status_code == 200
        seen[f"export {kind}"] = {n for n in OWNERS if recs[n][kind[:-1] if kind != "activities" else "activity"]
                                  in export.text}
    seen["search contacts"] = set()
    for name in OWNERS:
        r = await client.get("/v1/contacts", headers=headers, params={"q": recs[name]["tag"]})
        if any(x["id"] == recs[name]["contact"] for x in r.json()["data"]):
            seen["search contacts"].add(name)
    seen["external id"] = {n for n in OWNERS if (await client.get(
        f"/v1/contacts/by-external-id/erp/{recs[n]['tag']}", headers=headers)).status_code == 200}
    seen["timeline"] = set()
    for name in OWNERS:
        r = await client.get(f"/v1/contacts/{recs[name]['contact']}/timeline", headers=headers)
        assert r.status_code in (200, 404)
        if r.status_code == 200:
            seen["timeline"].add(name)
    changes = await client.get("/v1/changes", headers=headers, params={"limit": 1000})
    assert changes.status_code == 200
    objects = {e["object_id"] for e in changes.json()["data"]}
    seen["changes feed"] = {n for n in OWNERS if {recs[n]["contact"], recs[n]["deal"], recs[n]["lead"],
                                                  recs[n]["activity"]} & objects}
    funnel = await client.get("/v1/reports/funnel", headers=headers)
    assert funnel.status_code == 200, funnel.text
    deals = funnel.json()["totals"]["deals"]
    seen["report"] = {"alice", "bob"} if deals == 2 else ({"?"} if deals == 1 else set())
    return seen


@pytest.mark.parametrize("mode", ["all", "team", "own"])
async def test_every_read_path_follows_the_visibility_rule(committed_client, mode):
    client = committed_client  # the changes feed shows committed transactions only
    world = await _world(client)
    await _set_mode(client, world["owner"], mode)
    callers = {name: p.headers for name, p in world["people"].items()}
    callers["org key"] = world["key"]
    for name, headers in callers.items():
        expected = set(OWNERS) if mode == "all" or name not in SEES[mode] else SEES[mode][name]
        seen = await _seen_through_every_path(client, headers, world)
        for path, owners in seen.items():
            if path == "report":  # an aggregate: counts exactly the deals the caller may see
                want = {"alice", "bob"} if len(expected) == 2 else ({"?"} if len(expected) == 1 else set())
                assert owners == want, (mode, name, path)
            else:
                assert owners == expected, (mode, name, path, owners, expected)


async def test_a_member_in_team_mode_cannot_touch_a_colleagues_deal_of_another_team(client):
    world = await _world(client)
    await _set_mode(client, world["owner"], "team")
    alice, bob_deal = world["people"]["alice"], world["records"]["bob"]["deal"]
    assert (await client.patch(f"/v1/deals/{bob_deal}", headers=alice.headers, json={"title": "mine"})).status_code == 404
    assert (await client.delete(f"/v1/deals/{bob_deal}", headers=alice.headers)).status_code == 404
    r = await client.post("/v1/deals/batch", headers=alice.headers,
                          json={"mode": "update", "items": [{"id": bob_deal, "title": "mine"}]})
    assert r.json()["results"][0]["status"] == "failed"
    assert r.json()["results"][0]["error"]["status"] == 404
    r = await client.put(f"/v1/contacts/by-external-id/erp/{world['records']['bob']['tag']}",
                         headers=alice.headers, json={"first_name": "Mine"})
    assert r.status_code == 404, r.text


async def test_who_sees_may_edit_except_viewers_and_deleting_needs_owner_manager_or_admin(client):
    world = await _world(client)
    await _set_mode(client, world["owner"], "team")
    p, recs = world["people"], world["records"]
    # amy sees alice's deal (same team): she may edit it, not delete it
    r = await client.patch(f"/v1/deals/{recs['alice']['deal']}", headers=p["amy"].headers, json={"title": "Edited"})
    assert r.status_code == 200, r.text
    r = await client.delete(f"/v1/deals/{recs['alice']['deal']}", headers=p["amy"].headers)
    assert r.status_code == 403, r.text
    # the viewer sees it and may not edit it
    r = await client.patch(f"/v1/deals/{recs['alice']['deal']}", headers=p["vic"].headers, json={"title": "No"})
    assert r.status_code == 403
    # the team's manager may delete alice's deal; the owner herself her lead; an admin bob's
    assert (await client.delete(f"/v1/deals/{recs['alice']['deal']}", headers=p["lead_a"].headers)).status_code == 204
    assert (await client.delete(f"/v1/leads/{recs['alice']['lead']}", headers=p["alice"].headers)).status_code == 204
    assert (await client.delete(f"/v1/deals/{recs['bob']['deal']}", headers=p["admin"].headers)).status_code == 204


async def test_a_manager_of_no_team_is_restricted_like_a_member(client):
    owner = await signup(client, "Flat Co")
    manager, member = await owner.invite("manager"), await owner.invite("member")
    deal = (await client.post("/v1/deals", headers=owner.headers,
                              json={"title": "Theirs", "owner_id": member.user_id})).json()
    await _set_mode(client, owner, "own")
    assert (await client.get(f"/v1/deals/{deal['id']}", headers=manager.headers)).status_code == 404
    await client.patch(f"/v1/users/{member.user_id}", headers=owner.headers, json={"manager_id": manager.user_id})
    # a direct report's records stay invisible without a team, but the manager may delete them once shown
    await _set_mode(client, owner, "all")
    assert (await client.delete(f"/v1/deals/{deal['id']}", headers=manager.headers)).status_code == 204


async def test_teams_crud_and_manager_default(client):
    owner = await signup(client, "Teams Co")
    boss, rep, other = await owner.invite("manager"), await owner.invite("member"), await owner.invite("member")
    r = await client.post("/v1/teams", headers=owner.headers,
                          json={"name": "North", "manager_id": boss.user_id, "member_ids": [rep.user_id]})
    assert r.status_code == 201 and r.headers["location"] == f"/v1/teams/{r.json()['id']}"
    team = r.json()
    assert team["member_ids"] == [rep.user_id] and team["manager_id"] == boss.user_id
    assert (await client.get(f"/v1/users/{rep.user_id}", headers=owner.headers)).json()["manager_id"] == boss.user_id
    # everyone reads teams; only admins write them
    assert (await client.get("/v1/teams", headers=rep.headers)).json()["data"][0]["id"] == team["id"]
    assert (await client.post("/v1/teams", headers=boss.headers, json={"name": "Mine"})).status_code == 403
    r = await client.patch(f"/v1/teams/{team['id']}", headers={**owner.headers, "If-Match": r.headers["etag"]},
                           json={"member_ids": [rep.user_id, other.user_id]})
    assert r.status_code == 200 and sorted(r.json()["member_ids"]) == sorted([rep.user_id, other.user_id])
    assert r.json()["version"] == team["version"] + 1
    # a user of another org cannot join
    stranger = await signup(client, "Elsewhere")
    r = await client.patch(f"/v1/teams/{team['id']}", headers=owner.headers, json={"member_ids": [stranger.user_id]})
    assert r.status_code == 422
    assert (await client.get(f"/v1/teams/{team['id']}", headers=stranger.headers)).status_code == 404
    assert (await client.delete(f"/v1/teams/{team['id']}", headers=owner.headers)).status_code == 204
    assert (await client.get(f"/v1/teams/{team['id']}", headers=owner.headers)).status_code == 404
