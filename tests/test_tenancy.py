"""One organisation can never read, change or even detect another's records."""

from __future__ import annotations

import uuid

from tests.factories import signup


def _shape(response) -> tuple:
    body = response.json()
    body.pop("instance", None)
    body["detail"] = body["detail"]
    return response.status_code, body


async def test_users_and_keys_of_another_org_are_404_like_missing_ones(client):
    a, b = await signup(client, "Org A"), await signup(client, "Org B")
    a_member = await a.invite("member")
    key = (await client.post("/v1/api-keys", headers=a.headers, json={"name": "A key", "scopes": ["*"]})).json()
    missing_user, missing_key = str(uuid.uuid4()), str(uuid.uuid4())

    for path, missing in ((f"/v1/users/{a_member.user_id}", f"/v1/users/{missing_user}"),
                          (f"/v1/api-keys/{key['id']}", f"/v1/api-keys/{missing_key}")):
        theirs = await client.get(path, headers=b.headers)
        nobody = await client.get(missing, headers=b.headers)
        assert theirs.status_code == 404
        assert _shape(theirs) == _shape(nobody)  # indistinguishable from a record that does not exist

    assert (await client.patch(f"/v1/users/{a_member.user_id}", headers=b.headers, json={"name": "pwned"})).status_code == 404
    assert (await client.post(f"/v1/users/{a_member.user_id}/deactivate", headers=b.headers, json={})).status_code == 404
    assert (await client.delete(f"/v1/users/{a_member.user_id}", headers=b.headers)).status_code == 404
    assert (await client.delete(f"/v1/api-keys/{key['id']}", headers=b.headers)).status_code == 404

    # Nothing changed on A's side, and lists never mix.
    assert (await client.get(f"/v1/users/{a_member.user_id}", headers=a.headers)).json()["name"] != "pwned"
    assert (await client.get(f"/v1/users/{a_member.user_id}", headers=a.headers)).json()["active"] is True
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {key['secret']}"})).status_code == 200
    b_users = (await client.get("/v1/users", headers=b.headers, params={"limit": 200})).json()["data"]
    assert {u["id"] for u in b_users} == {b.user_id}
    b_keys = (await client.get("/v1/api-keys", headers=b.headers)).json()["data"]
    assert b_keys == []


async def test_cannot_point_at_another_orgs_user(client):
    a, b = await signup(client, "Org A"), await signup(client, "Org B")
    r = await client.patch(f"/v1/users/{b.user_id}", headers=b.headers, json={"manager_id": a.user_id})
    assert r.status_code == 422
    r = await client.post(f"/v1/users/{b.user_id}/deactivate", headers=b.headers, json={"reassign_to": a.user_id})
    assert r.status_code == 409  # the last owner cannot leave
    b_member = await b.invite("member")
    r = await client.post(f"/v1/users/{b_member.user_id}/deactivate", headers=b.headers,
                          json={"reassign_to": a.user_id})
    assert r.status_code == 422


async def test_org_endpoints_only_show_the_callers_org(client):
    a, b = await signup(client, "Org A"), await signup(client, "Org B")
    assert (await client.get("/v1/org", headers=a.headers)).json()["id"] == a.org_id
    assert (await client.get("/v1/org", headers=b.headers)).json()["id"] == b.org_id
    await client.patch("/v1/org", headers=b.headers, json={"name": "Renamed B"})
    assert (await client.get("/v1/org", headers=a.headers)).json()["name"] == "Org A"


async def test_cursor_from_another_org_reveals_nothing(client):
    a, b = await signup(client, "Org A"), await signup(client, "Org B")
    for _ in range(3):
        await a.invite("member")
    page = (await client.get("/v1/users", headers=a.headers, params={"limit": 1})).json()
    r = await client.get("/v1/users", headers=b.headers, params={"cursor": page["next_cursor"]})
    assert r.status_code == 200
    assert {u["id"] for u in r.json()["data"]} <= {b.user_id}
