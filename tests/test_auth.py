"""Sign-up, password login, refresh rotation and reuse detection, logout, JWT validation."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import orjson
from jose import jwt

from app.domain.auth import secrets as sec
from tests.factories import PASSWORD, login, signup, unique_email


async def test_signup_returns_org_owner_and_working_tokens(client):
    email = unique_email("Founder").upper()
    r = await client.post("/v1/auth/signup", json={"org_name": "Acme", "email": email, "password": PASSWORD,
                                                   "name": "Fay Founder"})
    assert r.status_code == 201
    body = r.json()
    assert body["user"]["email"] == email.lower()
    assert body["user"]["role"] == "owner"
    assert body["org"]["name"] == "Acme" and body["org"]["timezone"] == "UTC"
    assert body["token_type"] == "bearer" and body["expires_in"] == 900
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["type"] == "user" and me.json()["org"]["id"] == body["org"]["id"]
    assert "password_hash" not in r.text


async def test_signup_rejects_taken_email_weak_password_and_bad_email(client):
    acct = await signup(client)
    taken = await client.post("/v1/auth/signup", json={"org_name": "B", "email": acct.email, "password": PASSWORD,
                                                       "name": "X"})
    assert taken.status_code == 409
    short = await client.post("/v1/auth/signup", json={"org_name": "B", "email": unique_email(), "password": "short",
                                                       "name": "X"})
    assert short.status_code == 422 and short.json()["errors"][0]["loc"] == ["body", "password"]
    bad = await client.post("/v1/auth/signup", json={"org_name": "B", "email": "not-an-email", "password": PASSWORD,
                                                     "name": "X"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "email"]


async def test_signup_disabled_is_404(client, app, settings):
    app.state.settings = settings.model_copy(update={"signup_enabled": False})
    r = await client.post("/v1/auth/signup", json={"org_name": "B", "email": unique_email(), "password": PASSWORD,
                                                   "name": "X"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_password_login(client):
    acct = await signup(client)
    tokens = await login(client, acct.email.upper())
    assert tokens["token_type"] == "bearer"
    wrong = await client.post("/v1/auth/token", data={"username": acct.email, "password": "wrong password!"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_grant"
    assert wrong.headers["www-authenticate"] == "Bearer"
    unknown = await client.post("/v1/auth/token", data={"username": unique_email(), "password": PASSWORD})
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]  # no hint whether the email exists


async def test_refresh_rotates_and_old_token_stops_working(client):
    acct = await signup(client)
    r = await client.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})
    assert r.status_code == 200
    new = r.json()
    assert new["refresh_token"] != acct.refresh_token
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"})).status_code == 200
    again = await client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert again.status_code == 200


async def test_reused_refresh_token_revokes_the_whole_family(client):
    acct = await signup(client)
    first = (await client.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})).json()
    # An attacker replays the rotated token: 401, and the legitimate newer token dies with it.
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})
    assert replay.status_code == 401
    assert replay.json()["type"] == "/problems/refresh-token-reused"
    victim = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert victim.status_code == 401
    # Another login (another family) is unaffected.
    other = await login(client, acct.email)
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})).status_code == 200


async def test_refresh_rejects_garbage_and_tampered_tokens(client):
    acct = await signup(client)
    for bad in ("nonsense", "crt_" + "0" * 100, acct.refresh_token[:-1] + ("A" if acct.refresh_token[-1] != "A" else "B")):
        r = await client.post("/v1/auth/refresh", json={"refresh_token": bad})
        assert r.status_code == 401, bad
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})).status_code == 200


async def test_refresh_token_is_not_an_access_token(client):
    acct = await signup(client)
    r = await client.get("/v1/me", headers={"Authorization": f"Bearer {acct.refresh_token}"})
    assert r.status_code == 401


async def test_logout_revokes_family(client):
    acct = await signup(client)
    rotated = (await client.post("/v1/auth/refresh", json={"refresh_token": acct.refresh_token})).json()
    r = await client.post("/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]})
    assert r.status_code == 204
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})).status_code == 401
    bad = await client.post("/v1/auth/logout", json={"refresh_token": "crt_garbage"})
    assert bad.status_code == 401


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


async def test_jwt_alg_none_wrong_signature_and_expired_are_401(client, settings):
    acct = await signup(client)
    claims = jwt.get_unverified_claims(acct.access_token)
    none_token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    forged = jwt.encode(claims, "another-secret-of-sufficient-length-000", algorithm="HS256")
    expired = sec.encode_access_token(settings, claims["org"] and __import__("uuid").UUID(claims["org"]),
                                      __import__("uuid").UUID(claims["sub"]),
                                      now=datetime.now(UTC) - timedelta(hours=1))
    hs512 = jwt.encode(claims, settings.jwt_key(), algorithm="HS512")  # right key, algorithm not allowed
    for token in (none_token, forged, expired, hs512, "a.b.c"):
        r = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert r.headers["www-authenticate"] == "Bearer"
    assert "expired" in (await client.get("/v1/me", headers={"Authorization": f"Bearer {expired}"})).json()["detail"]
    assert (await client.get("/v1/me", headers=acct.headers)).status_code == 200


async def test_access_token_claims(client, settings):
    acct = await signup(client)
    claims = jwt.decode(acct.access_token, settings.jwt_key(), algorithms=["HS256"], issuer=settings.jwt_issuer)
    assert claims["sub"] == acct.user_id and claims["org"] == acct.org_id
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    assert abs(claims["iat"] - time.time()) < 60
