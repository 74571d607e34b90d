"""Admins reactivate users and set an invitee's (or any user's) password."""

from __future__ import annotations

import uuid

from tests.factories import PASSWORD, login, signup, unique_email

NEW_PASSWORD = "another long passphrase"


async def _token(client, email: str, password: str) -> int:
    return (await client.post("/v1/auth/token", data={"username": email, "password": password})).status_code


async def test_reactivate_lets_a_deactivated_user_log_in_again(client):
    owner = await signup(client)
    member = await owner.invite("member")
    r = await client.post(f"/v1/users/{member.user_id}/deactivate", headers=owner.headers, json={})
    assert r.status_code == 200 and r.json()["active"] is False
    assert await _token(client, member.email, PASSWORD) == 401
    assert (await client.get("/v1/me", headers=member.headers)).status_code == 401
    r = await client.post(f"/v1/users/{member.user_id}/reactivate", headers=owner.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active"] is True and body["deactivated_at"] is None and r.headers["etag"] == f'"{body["version"]}"'
    assert await _token(client, member.email, PASSWORD) == 200
    assert (await client.get("/v1/me", headers=member.headers)).status_code == 200
    listed = await client.get("/v1/users", headers=owner.headers, params={"active": "true"})
    assert member.user_id in {u["id"] for u in listed.json()["data"]}
    again = await client.post(f"/v1/users/{member.user_id}/reactivate", headers=owner.headers)
    assert again.status_code == 200 and again.json()["version"] == body["version"]  # nothing to do


async def test_reactivate_needs_an_admin_and_an_owner_needs_an_owner(client):
    owner = await signup(client)
    member = await owner.invite("member")
    admin = await owner.invite("admin")
    second = await owner.invite("owner")
    await client.post(f"/v1/users/{member.user_id}/deactivate", headers=owner.headers, json={})
    await client.post(f"/v1/users/{second.user_id}/deactivate", headers=owner.headers, json={})
    assert (await client.post(f"/v1/users/{member.user_id}/reactivate")).status_code == 401
    manager = await owner.invite("manager")
    assert (await client.post(f"/v1/users/{member.user_id}/reactivate", headers=manager.headers)).status_code == 403
    read_key = await owner.api_key(["users:read"])
    assert (await client.post(f"/v1/users/{member.user_id}/reactivate", headers=read_key)).status_code == 403
    assert (await client.post(f"/v1/users/{second.user_id}/reactivate", headers=admin.headers)).status_code == 403
    assert (await client.post(f"/v1/users/{second.user_id}/reactivate", headers=owner.headers)).status_code == 200
    assert (await client.post(f"/v1/users/{uuid.uuid4()}/reactivate", headers=owner.headers)).status_code == 404
    other = await signup(client, "Other")
    r = await client.post(f"/v1/users/{member.user_id}/reactivate", headers=other.headers)
    assert r.status_code == 404


async def test_set_an_invitees_password_then_they_log_in(client):
    owner = await signup(client)
    email = unique_email("invitee")
    r = await client.post("/v1/users", headers=owner.headers, json={"email": email, "name": "Ivo", "role": "member"})
    user_id = r.json()["id"]
    assert await _token(client, email, PASSWORD) == 401
    r = await client.post(f"/v1/users/{user_id}/password", headers=owner.headers, json={"password": PASSWORD})
    assert r.status_code == 204, r.text
    assert await _token(client, email, PASSWORD) == 200


async def test_setting_a_password_revokes_sessions_and_follows_the_role_rules(client):
    owner = await signup(client)
    admin = await owner.invite("admin")
    member = await owner.invite("member")
    r = await client.post(f"/v1/users/{member.user_id}/password", headers=admin.headers,
                          json={"password": NEW_PASSWORD})
    assert r.status_code == 204
    assert await _token(client, member.email, PASSWORD) == 401
    assert await _token(client, member.email, NEW_PASSWORD) == 200
    r = await client.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token})
    assert r.status_code == 401  # the old sessions end
    # an owner's password: only an owner
    r = await client.post(f"/v1/users/{owner.user_id}/password", headers=admin.headers, json={"password": NEW_PASSWORD})
    assert r.status_code == 403
    assert await _token(client, owner.email, PASSWORD) == 200
    second = await owner.invite("owner")
    r = await client.post(f"/v1/users/{second.user_id}/password", headers=owner.headers, json={"password": NEW_PASSWORD})
    assert r.status_code == 204
    assert (await login(client, second.email, NEW_PASSWORD))["access_token"]
    # members cannot; weak passwords and unknown fields are 422; foreign users 404
    manager = await owner.invite("manager")
    r = await client.post(f"/v1/users/{member.user_id}/password", headers=manager.headers,
                          json={"password": NEW_PASSWORD})
    assert r.status_code == 403
    r = await client.post(f"/v1/users/{member.user_id}/password", headers=owner.headers, json={"password": "short"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "password"]
    r = await client.post(f"/v1/users/{member.user_id}/password", headers=owner.headers,
                          json={"password": NEW_PASSWORD, "current": "x"})
    assert r.status_code == 422
    other = await signup(client, "Other")
    r = await client.post(f"/v1/users/{member.user_id}/password", headers=other.headers, json={"password": NEW_PASSWORD})
    assert r.status_code == 404
    assert (await client.post(f"/v1/users/{member.user_id}/password", json={"password": NEW_PASSWORD})).status_code == 401
