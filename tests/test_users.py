"""Users: invite, roles, managers, deactivation; role rules are enforced server-side."""

from __future__ import annotations

import uuid

from tests.factories import PASSWORD, login, signup, unique_email


async def test_invite_list_get_and_login(client):
    owner = await signup(client)
    email = unique_email("rep")
    r = await client.post("/v1/users", headers=owner.headers,
                          json={"email": email, "name": "Rui Rep", "role": "member", "password": PASSWORD,
                                "manager_id": owner.user_id})
    assert r.status_code == 201
    user = r.json()
    assert user["role"] == "member" and user["manager_id"] == owner.user_id and user["active"] is True
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/v1/users/{user['id']}"
    assert (await login(client, email))["access_token"]
    got = await client.get(f"/v1/users/{user['id']}", headers=owner.headers)
    assert got.status_code == 200
    assert got.json()["last_login_at"] is not None
    assert {**got.json(), "last_login_at": None} == user  # logging in is not an edit: same version
    page = await client.get("/v1/users", headers=owner.headers, params={"sort": "created_at"})
    assert [u["email"] for u in page.json()["data"]] == [owner.email, email]


async def test_invite_without_password_cannot_log_in(client):
    owner = await signup(client)
    email = unique_email()
    r = await client.post("/v1/users", headers=owner.headers, json={"email": email, "name": "No Pass"})
    assert r.status_code == 201 and r.json()["role"] == "member"
    assert (await client.post("/v1/auth/token", data={"username": email, "password": ""})).status_code in (401, 422)
    assert (await client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})).status_code == 401


async def test_duplicate_email_is_409(client):
    owner = await signup(client)
    other = await signup(client)
    r = await client.post("/v1/users", headers=owner.headers, json={"email": other.email, "name": "Dup"})
    assert r.status_code == 409


async def test_members_managers_and_viewers_cannot_manage_users(client):
    owner = await signup(client)
    for role in ("member", "manager", "viewer"):
        someone = await owner.invite(role)
        r = await client.post("/v1/users", headers=someone.headers, json={"email": unique_email(), "name": "X"})
        assert r.status_code == 403, role
        assert r.headers["content-type"] == "application/problem+json"
        r = await client.patch(f"/v1/users/{owner.user_id}", headers=someone.headers, json={"role": "viewer"})
        assert r.status_code == 403, role
        r = await client.post(f"/v1/users/{owner.user_id}/deactivate", headers=someone.headers, json={})
        assert r.status_code == 403, role
        assert (await client.get("/v1/users", headers=someone.headers)).status_code == 200  # reading is fine


async def test_self_service_fields(client):
    owner = await signup(client)
    member = await owner.invite("member")
    r = await client.patch(f"/v1/users/{member.user_id}", headers=member.headers,
                           json={"name": "New Name", "out_of_office": True})
    assert r.status_code == 200 and r.json()["name"] == "New Name" and r.json()["out_of_office"] is True
    assert r.json()["version"] == 2
    r = await client.patch(f"/v1/users/{member.user_id}", headers=member.headers, json={"role": "admin"})
    assert r.status_code == 403


async def test_only_owner_makes_owners_and_last_owner_stays(client):
    owner = await signup(client)
    admin = await owner.invite("admin")
    r = await client.post("/v1/users", headers=admin.headers, json={"email": unique_email(), "name": "O",
                                                                  "role": "owner"})
    assert r.status_code == 403
    r = await client.patch(f"/v1/users/{owner.user_id}", headers=admin.headers, json={"name": "Hijack"})
    assert r.status_code == 403
    r = await client.patch(f"/v1/users/{owner.user_id}", headers=owner.headers, json={"role": "admin"})
    assert r.status_code == 409  # the last owner cannot step down
    r = await client.patch(f"/v1/users/{admin.user_id}", headers=owner.headers, json={"role": "owner"})
    assert r.status_code == 200 and r.json()["role"] == "owner"
    r = await client.patch(f"/v1/users/{owner.user_id}", headers=owner.headers, json={"role": "admin"})
    assert r.status_code == 200


async def test_manager_must_exist_and_not_loop(client):
    owner = await signup(client)
    a = await owner.invite("manager")
    b = await owner.invite("member", manager_id=a.user_id)
    r = await client.patch(f"/v1/users/{a.user_id}", headers=owner.headers, json={"manager_id": b.user_id})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "manager_id"]
    r = await client.patch(f"/v1/users/{a.user_id}", headers=owner.headers, json={"manager_id": a.user_id})
    assert r.status_code == 422
    r = await client.patch(f"/v1/users/{a.user_id}", headers=owner.headers, json={"manager_id": str(uuid.uuid4())})
    assert r.status_code == 422
    r = await client.patch(f"/v1/users/{b.user_id}", headers=owner.headers, json={"manager_id": None})
    assert r.status_code == 200 and r.json()["manager_id"] is None


async def test_deactivation_stops_login_tokens_and_refresh(client):
    owner = await signup(client)
    rep = await owner.invite("member")
    r = await client.post(f"/v1/users/{rep.user_id}/deactivate", headers=owner.headers,
                          json={"reassign_to": owner.user_id})
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["deactivated_at"]
    assert (await client.get("/v1/me", headers=rep.headers)).status_code == 401
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": rep.refresh_token})).status_code == 401
    assert (await client.post("/v1/auth/token", data={"username": rep.email, "password": PASSWORD})).status_code == 401
    inactive = await client.get("/v1/users", headers=owner.headers, params={"active": "false"})
    assert [u["id"] for u in inactive.json()["data"]] == [rep.user_id]


async def test_deactivate_validates_heir_and_delete_deactivates(client):
    owner = await signup(client)
    rep = await owner.invite("member")
    r = await client.post(f"/v1/users/{rep.user_id}/deactivate", headers=owner.headers,
                          json={"reassign_to": rep.user_id})
    assert r.status_code == 422
    r = await client.delete(f"/v1/users/{rep.user_id}", headers=owner.headers)
    assert r.status_code == 204
    assert (await client.get(f"/v1/users/{rep.user_id}", headers=owner.headers)).json()["active"] is False


async def test_etag_if_match_and_if_none_match(client):
    owner = await signup(client)
    rep = await owner.invite("member")
    got = await client.get(f"/v1/users/{rep.user_id}", headers=owner.headers)
    etag = got.headers["etag"]
    assert (await client.get(f"/v1/users/{rep.user_id}", headers={**owner.headers, "If-None-Match": etag})).status_code == 304
    r = await client.patch(f"/v1/users/{rep.user_id}", headers={**owner.headers, "If-Match": etag},
                           json={"name": "Renamed"})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    stale = await client.patch(f"/v1/users/{rep.user_id}", headers={**owner.headers, "If-Match": etag},
                               json={"name": "Lost update"})
    assert stale.status_code == 412
    assert (await client.get(f"/v1/users/{rep.user_id}", headers=owner.headers)).json()["name"] == "Renamed"
    assert (await client.get(f"/v1/users/{rep.user_id}", headers={**owner.headers, "If-None-Match": etag})).status_code == 200


async def test_keyset_pagination_walks_every_user_once(client):
    owner = await signup(client)
    for _ in range(6):
        await owner.invite("member")
    seen, cursor = [], None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/users", headers=owner.headers, params=params)).json()
        seen += [u["id"] for u in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    newest_first = (await client.get("/v1/users", headers=owner.headers, params={"limit": 200})).json()["data"]
    assert [u["id"] for u in newest_first] == seen
    by_name = (await client.get("/v1/users", headers=owner.headers, params={"sort": "name", "limit": 3})).json()
    other_sort = await client.get("/v1/users", headers=owner.headers,
                                  params={"sort": "-name", "cursor": by_name["next_cursor"]})
    assert other_sort.status_code == 422
