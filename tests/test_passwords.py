"""Password policy, password expiry and `POST /v1/me/password`, login lockout (per account and per address),
login history."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import text

from tests.factories import PASSWORD, login, signup, unique_email
from tests.workers import eventually

WEAK = ["password123", "1234567890", "aaaaaaaaaa", "qwertyuiop", "abcdefghijkl", "9876543210"]
NEW_PASSWORD = "violet tractor on the moon"


@asynccontextmanager
async def from_address(app, ip: str):
    """A client whose requests come from `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as c:
        yield c


def _token(client, email: str, password: str):
    return client.post("/v1/auth/token", data={"username": email, "password": password})


@pytest.mark.parametrize("weak", WEAK)
async def test_weak_passwords_are_422_naming_the_password(client, weak):
    signup_r = await client.post("/v1/auth/signup", json={"org_name": "B", "email": unique_email(), "password": weak,
                                                          "name": "X"})
    assert signup_r.status_code == 422 and signup_r.json()["errors"][0]["loc"] == ["body", "password"]
    assert "password" in signup_r.json()["errors"][0]["msg"]
    acct = await signup(client)
    invite = await client.post("/v1/users", headers=acct.headers,
                               json={"email": unique_email(), "name": "X", "role": "member", "password": weak})
    assert invite.status_code == 422 and invite.json()["errors"][0]["loc"] == ["body", "password"]
    change = await client.post("/v1/me/password", headers=acct.headers, json={"current": PASSWORD, "new": weak})
    assert change.status_code == 422 and change.json()["errors"][0]["loc"] == ["body", "new"]
    assert "password" in change.json()["errors"][0]["msg"]
    assert (await _token(client, acct.email, PASSWORD)).status_code == 200  # unchanged


async def test_change_password_with_a_token(client):
    acct = await signup(client)
    wrong = await client.post("/v1/me/password", headers=acct.headers, json={"current": "not my password", "new": NEW_PASSWORD})
    assert wrong.status_code == 401
    same = await client.post("/v1/me/password", headers=acct.headers, json={"current": PASSWORD, "new": PASSWORD})
    assert same.status_code == 422 and same.json()["errors"][0]["loc"] == ["body", "new"]
    r = await client.post("/v1/me/password", headers=acct.headers, json={"current": PASSWORD, "new": NEW_PASSWORD})
    assert r.status_code == 204
    assert (await _token(client, acct.email, PASSWORD)).status_code == 401
    assert (await _token(client, acct.email, NEW_PASSWORD)).status_code == 200
    nobody = await client.post("/v1/me/password", json={"current": PASSWORD, "new": NEW_PASSWORD})
    assert nobody.status_code == 401
    key = await acct.api_key(["*"])
    assert (await client.post("/v1/me/password", headers=key,
                              json={"current": NEW_PASSWORD, "new": "another long passphrase"})).status_code == 403


async def test_changing_your_password_ends_your_other_sessions(client):
    """A phone still logged in with the old password cannot renew its session; the change is in the audit log."""
    acct = await signup(client)
    phone = (await _token(client, acct.email, PASSWORD)).json()["refresh_token"]
    laptop = (await _token(client, acct.email, PASSWORD)).json()
    r = await client.post("/v1/me/password", headers={"Authorization": f"Bearer {laptop['access_token']}"},
                          json={"current": PASSWORD, "new": NEW_PASSWORD})
    assert r.status_code == 204
    for refresh in (phone, laptop["refresh_token"]):
        renewed = await client.post("/v1/auth/refresh", json={"refresh_token": refresh})
        assert renewed.status_code == 401, renewed.text
    fresh = (await _token(client, acct.email, NEW_PASSWORD)).json()
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})).status_code == 200
    log = (await client.get("/v1/audit-log", headers=acct.headers, params={"object_id": acct.user_id})).json()["data"]
    assert any("password_changed_at" in (e["changes"] or {}) for e in log)


async def test_expired_password_is_401_until_changed(client, session):
    acct = await signup(client)
    member = await acct.invite("member")
    r = await client.patch("/v1/org", headers=acct.headers, json={"password_max_age_days": 30})
    assert r.status_code == 200 and r.json()["password_max_age_days"] == 30
    assert (await client.get("/v1/org", headers=member.headers)).json()["password_max_age_days"] == 30
    assert (await client.get("/v1/me", headers=member.headers)).status_code == 200  # fresh password
    await session.execute(text("UPDATE users SET password_changed_at = now() - interval '31 days' "
                               "WHERE org_id = :org AND id = :id"),
                          {"org": uuid.UUID(acct.org_id), "id": uuid.UUID(member.user_id)})
    await session.commit()

    expired = await _token(client, member.email, PASSWORD)
    assert expired.status_code == 401
    assert expired.json()["error"] == "password_expired" and expired.json()["code"] == "password_expired"
    assert expired.headers["content-type"] == "application/problem+json"
    bearer = await client.get("/v1/me", headers=member.headers)
    assert bearer.status_code == 401 and bearer.json()["error"] == "password_expired"
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200  # only that user

    # No token needed: the email and the current password prove who it is.
    wrong = await client.post("/v1/me/password", json={"email": member.email, "current": "not it at all",
                                                       "new": NEW_PASSWORD})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
    changed = await client.post("/v1/me/password", json={"email": member.email, "current": PASSWORD,
                                                         "new": NEW_PASSWORD})
    assert changed.status_code == 204
    assert (await client.get("/v1/me", headers=member.headers)).status_code == 200
    assert (await _token(client, member.email, NEW_PASSWORD)).status_code == 200

    assert (await client.patch("/v1/org", headers=acct.headers,
                               json={"password_max_age_days": None})).json()["password_max_age_days"] is None
    assert (await client.patch("/v1/org", headers=acct.headers,
                               json={"password_max_age_days": 0})).status_code == 422


async def test_expired_password_can_be_changed_with_the_old_access_token(client, session):
    acct = await signup(client)
    await client.patch("/v1/org", headers=acct.headers, json={"password_max_age_days": 1})
    await session.execute(text("UPDATE users SET password_changed_at = now() - interval '2 days' WHERE id = :id"),
                          {"id": uuid.UUID(acct.user_id)})
    await session.commit()
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 401
    r = await client.post("/v1/me/password", headers=acct.headers, json={"current": PASSWORD, "new": NEW_PASSWORD})
    assert r.status_code == 204
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200


async def test_twelve_wrong_passwords_then_the_right_one_is_429(client, app):
    acct = await signup(client)
    other = await acct.invite("member")
    async with from_address(app, "198.51.100.7") as c:
        statuses = [(await _token(c, acct.email, f"wrong password {i}")).status_code for i in range(12)]
        assert statuses == [401] * 5 + [429] * 7
        r = await _token(c, acct.email, PASSWORD)
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["ratelimit-limit"] == "5" and r.headers["ratelimit-remaining"] == "0"
        assert int(r.headers["ratelimit-reset"]) == int(r.headers["retry-after"])
        assert (await _token(c, acct.email.upper(), PASSWORD)).status_code == 429  # the same account
        assert (await _token(c, other.email, PASSWORD)).status_code == 200  # other accounts are not locked
    failed = await client.get("/v1/audit-log", headers=other.headers)
    assert failed.status_code == 403
    rows = (await client.get("/v1/audit-log", headers=acct.headers,
                             params={"action": "login.failed", "object_id": acct.user_id, "limit": 50})).json()["data"]
    assert len(rows) == 14
    reasons = [row["changes"]["reason"][1] for row in rows]
    assert reasons.count("invalid_credentials") == 5 and reasons.count("locked") == 9
    assert {row["ip"] for row in rows} == {"198.51.100.7"}


async def test_lock_passes_and_grows(client, app, settings):
    app.state.settings = settings.model_copy(update={"login_max_failures": 2, "login_lockout_seconds": 1})
    acct = await signup(client)
    async with from_address(app, "198.51.100.8") as c:
        assert [(await _token(c, acct.email, "wrong password!")).status_code for _ in range(3)] == [401, 401, 429]

        async def unlocked():
            r = await _token(c, acct.email, "wrong password!")
            return r.status_code == 401

        await eventually(unlocked, within=30)  # the first lock (1 s) passed; that failure locks for 2 s
        r = await _token(c, acct.email, PASSWORD)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1

        async def logged_in():
            return (await _token(c, acct.email, PASSWORD)).status_code == 200

        await eventually(logged_in, within=30)
        # A successful login clears the count: one more failure does not lock.
        assert (await _token(c, acct.email, "wrong password!")).status_code == 401
        assert (await _token(c, acct.email, PASSWORD)).status_code == 200


async def test_one_address_with_many_failures_is_locked(client, app, settings):
    app.state.settings = settings.model_copy(update={"login_max_failures_per_ip": 3})
    acct = await signup(client)
    async with from_address(app, "198.51.100.9") as attacker:
        for _ in range(3):
            assert (await _token(attacker, unique_email(), "guessing passwords")).status_code == 401
        r = await _token(attacker, acct.email, PASSWORD)
        assert r.status_code == 429 and r.headers["ratelimit-limit"] == "3"
    async with from_address(app, "198.51.100.10") as elsewhere:
        assert (await _token(elsewhere, acct.email, PASSWORD)).status_code == 200


async def test_login_history(client, app):
    acct = await signup(client)
    member = await acct.invite("member")
    async with from_address(app, "203.0.113.5") as c:
        assert (await c.post("/v1/auth/token", headers={"User-Agent": "phone-app/2"},
                             data={"username": member.email, "password": "wrong password!"})).status_code == 401
        assert (await c.post("/v1/auth/token", headers={"User-Agent": "phone-app/2"},
                             data={"username": member.email, "password": PASSWORD})).status_code == 200
    mine = await client.get("/v1/me/logins", headers=member.headers)
    assert mine.status_code == 200
    latest, failed = mine.json()["data"][:2]
    assert latest["succeeded"] is True and latest["reason"] is None
    assert latest["ip"] == "203.0.113.5" and latest["user_agent"] == "phone-app/2"
    assert failed["succeeded"] is False and failed["reason"] == "invalid_credentials"
    assert len(mine.json()["data"]) == 3  # the invite helper's login, the failure, the success

    by_admin = await client.get(f"/v1/users/{member.user_id}/logins", headers=acct.headers)
    assert by_admin.status_code == 200 and by_admin.json()["data"] == mine.json()["data"]
    self_view = await client.get(f"/v1/users/{member.user_id}/logins", headers=member.headers)
    assert self_view.status_code == 200
    assert (await client.get(f"/v1/users/{acct.user_id}/logins", headers=member.headers)).status_code == 403
    stranger = await signup(client)
    assert (await client.get(f"/v1/users/{member.user_id}/logins", headers=stranger.headers)).status_code == 404
    assert (await client.get("/v1/me/logins")).status_code == 401
    paged = await client.get("/v1/me/logins", headers=member.headers, params={"limit": 1})
    assert len(paged.json()["data"]) == 1 and paged.json()["next_cursor"]


async def test_login_still_works_for_accounts_never_locked(client):
    acct = await signup(client)
    assert (await login(client, acct.email))["token_type"] == "bearer"
