"""OAuth2 mailboxes (Gmail, Microsoft 365) end to end: XOAUTH2 against Dovecot's oauth2 passdb and aiosmtpd, both
checking tokens with a real token server that also stands in for the providers' token endpoints. Access tokens
bought with the refresh token, reused while valid, refreshed before they expire; rotated refresh tokens kept;
a revoked grant shown on the mailbox and its syncs stopped; secrets never returned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.domain.mail.models import Mailbox
from app.domain.mail.oauth import REVOKED
from app.domain.sealing import seal, unseal
from tests.factories import signup
from tests.mail_servers import USERS, Dovecot, Grant, SmtpSink, TokenServer
from tests.servers import free_port
from tests.test_mail import emails, message, synced
from tests.workers import eventually, running_worker


@pytest.fixture(scope="session")
def tokens():
    server = TokenServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oauth_dovecot(tokens):
    server = Dovecot(tokens)
    yield server
    server.stop()


@pytest.fixture
def oauth_sink(tokens):
    sink = SmtpSink(tokens)
    yield sink
    sink.stop()


@pytest.fixture
def fast_settings(fast_settings, tokens):
    """The API and the worker ask the token server instead of Google's and Microsoft's token endpoints."""
    return fast_settings.model_copy(update={"oauth_token_urls": {"google": f"{tokens.url}/token",
                                                                 "microsoft": f"{tokens.url}/token"}})


_users = iter(USERS)


def a_user() -> str:
    """An IMAP user of its own per test (this Dovecot serves this file only)."""
    return next(_users)


async def oauth_mailbox(api, acct, dovecot: Dovecot, sink: SmtpSink | None, grant: Grant,
                        provider: str = "google", **extra) -> dict:
    user = grant.user
    r = await api.post("/v1/mailboxes", headers=acct.headers, json={
        "email": f"{user}@crm-mail.example.com", "auth": "oauth2",
        "imap": {"host": "127.0.0.1", "port": dovecot.port, "ssl": False, "username": user},
        "smtp": {"host": "127.0.0.1", "port": sink.port if sink else free_port(), "starttls": False,
                 "username": user},
        "oauth": {"provider": provider, "client_id": grant.client_id, "client_secret": grant.client_secret,
                  "refresh_token": grant.refresh_token}, **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def check(api, acct, box: dict) -> dict:
    r = await api.post(f"/v1/mailboxes/{box['id']}/test", headers=acct.headers)
    assert r.status_code == 200, r.text
    return r.json()


OK = {"imap": {"ok": True, "error": None, "detail": None}, "smtp": {"ok": True, "error": None, "detail": None}}


async def stored(database, settings, box: dict) -> dict:
    """The mailbox's secrets as the database holds them, unsealed."""
    async with database.sessions() as s:
        return unseal(settings, await s.scalar(select(Mailbox.sealed_secrets).where(Mailbox.id == box["id"])))


async def expiring_in(database, settings, box: dict, left: timedelta) -> None:
    """As if time had passed: the stored access token has `left` before it expires (the token server still
    takes it for its whole life)."""
    secrets = await stored(database, settings, box)
    secrets["oauth_expires_at"] = (datetime.now(UTC) + left).isoformat()
    async with database.sessions.begin() as s:
        await s.execute(update(Mailbox).where(Mailbox.id == box["id"]).values(sealed_secrets=seal(settings, secrets)))


def asked(tokens: TokenServer, grant: Grant) -> list[dict]:
    """What was posted to the token endpoint for this grant."""
    with tokens.lock:
        return [r for r in tokens.requests if r.get("client_id") == grant.client_id]


async def test_an_oauth2_mailbox_syncs_its_inbox_with_a_refreshed_access_token(api, fast_settings, database,
                                                                               oauth_dovecot, tokens):
    acct = await signup(api)
    grant = tokens.grant(a_user())
    own = f"{grant.user}@crm-mail.example.com"
    ana = (await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana",
                                                                       "email": "ana@client.org"})).json()
    oauth_dovecot.append(grant.user, message("Ana <ana@client.org>", own, "Quote for 5 seats", "How much?"))
    async with running_worker(fast_settings):
        box = await oauth_mailbox(api, acct, oauth_dovecot, None, grant)
        assert box["auth"] == "oauth2" and box["oauth"] == {"provider": "google", "client_id": grant.client_id}
        assert (await synced(api, acct, box["id"]))["status"] == "ok"
    [mail] = await emails(api, acct, contact_id=ana["id"])
    assert (mail["subject"], mail["direction"], mail["text"].strip()) == ("Quote for 5 seats", "inbound", "How much?")
    timeline = (await api.get(f"/v1/contacts/{ana['id']}/timeline", headers=acct.headers)).json()["data"]
    assert [e["data"]["subject"] for e in timeline if e["kind"] == "email"] == ["Quote for 5 seats"]
    assert grant.refreshes == 1
    assert asked(tokens, grant) == [{"grant_type": "refresh_token", "client_id": grant.client_id,
                                     "client_secret": grant.client_secret, "refresh_token": grant.refresh_token}]
    secrets = await stored(database, fast_settings, box)
    assert tokens.introspect(secrets["oauth_access_token"])["active"]  # kept for the next jobs
    assert datetime.fromisoformat(secrets["oauth_expires_at"]) > datetime.now(UTC) + timedelta(minutes=5)


async def test_the_check_and_sending_log_in_with_xoauth2_on_one_token(api, fast_settings, oauth_dovecot, oauth_sink,
                                                                      tokens):
    acct = await signup(api)
    grant = tokens.grant(a_user())
    box = await oauth_mailbox(api, acct, oauth_dovecot, oauth_sink, grant)
    assert await check(api, acct, box) == OK
    assert grant.refreshes == 1 and oauth_sink.oauth_logins == [grant.user]  # one token for both servers
    r = await api.post("/v1/emails", headers=acct.headers, json={
        "mailbox_id": box["id"], "to": ["ana@client.org"], "subject": "Your quote", "text": "1200 EUR"})
    assert r.status_code == 202, r.text

    async def sent():
        [email] = await emails(api, acct, mailbox_id=box["id"])
        return email if email["status"] == "sent" else None

    async with running_worker(fast_settings):
        await eventually(sent, within=180)
    [delivered] = oauth_sink.messages
    assert delivered["Subject"] == "Your quote" and delivered["X-Rcpt-To"] == "ana@client.org"
    assert oauth_sink.oauth_logins == [grant.user, grant.user]
    assert grant.refreshes == 1  # the worker used the token the check had saved


async def test_a_campaign_goes_out_through_xoauth2(api, fast_settings, oauth_dovecot, oauth_sink, tokens):
    acct = await signup(api)
    h = acct.headers
    grant = tokens.grant(a_user())
    for name in ("Ana", "Bo"):
        await api.post("/v1/contacts", headers=h, json={"first_name": name, "email": f"{name.lower()}@client.org",
                                                         "tags": ["vip"]})
    template = (await api.post("/v1/templates", headers=h, json={
        "name": "Offer", "subject": "Offer for {{ contact.first_name }}", "body_text": "Hello"})).json()
    segment = (await api.post("/v1/segments", headers=h, json={
        "name": "VIP", "object": "contact", "filter": {"tags": ["vip"]}})).json()
    box = await oauth_mailbox(api, acct, oauth_dovecot, oauth_sink, grant, shared=True, rate_per_minute=6000)
    campaign = (await api.post("/v1/campaigns", headers=h, json={
        "name": "Spring", "template_id": template["id"], "segment_id": segment["id"], "mailbox_id": box["id"]})).json()

    async def finished():
        c = (await api.get(f"/v1/campaigns/{campaign['id']}", headers=h)).json()
        return c if c["status"] == "sent" else None

    async with running_worker(fast_settings):
        await synced(api, acct, box["id"])  # the mailbox's first sync bought the token
        assert (await api.post(f"/v1/campaigns/{campaign['id']}/send", headers=h)).status_code == 202
        await eventually(finished, within=180)
    assert sorted(m["Subject"] for m in oauth_sink.messages) == ["Offer for Ana", "Offer for Bo"]
    assert oauth_sink.oauth_logins == [grant.user] and grant.refreshes == 1  # which the campaign reused


async def test_a_token_is_reused_while_valid_and_refreshed_before_it_expires(api, fast_settings, database,
                                                                             oauth_dovecot, oauth_sink, tokens):
    acct = await signup(api)
    grant = tokens.grant(a_user(), expires_in=3600)
    box = await oauth_mailbox(api, acct, oauth_dovecot, oauth_sink, grant)
    for _ in range(2):
        assert await check(api, acct, box) == OK
    assert grant.refreshes == 1
    first = (await stored(database, fast_settings, box))["oauth_access_token"]
    await expiring_in(database, fast_settings, box, timedelta(minutes=4))
    assert await check(api, acct, box) == OK
    assert grant.refreshes == 2 and tokens.introspect(first)["active"]  # replaced while it still worked
    second = (await stored(database, fast_settings, box))["oauth_access_token"]
    assert second != first
    await expiring_in(database, fast_settings, box, timedelta(minutes=6))
    assert await check(api, acct, box) == OK
    assert grant.refreshes == 2 and (await stored(database, fast_settings, box))["oauth_access_token"] == second


async def test_a_rotated_microsoft_refresh_token_is_stored_and_used_next(api, fast_settings, database,
                                                                        oauth_dovecot, oauth_sink, tokens):
    acct = await signup(api)
    grant = tokens.grant(a_user(), rotate=True)
    original = grant.refresh_token
    box = await oauth_mailbox(api, acct, oauth_dovecot, oauth_sink, grant, provider="microsoft")
    assert await check(api, acct, box) == OK
    rotated = grant.refresh_token
    assert rotated != original and (await stored(database, fast_settings, box))["oauth_refresh_token"] == rotated
    await expiring_in(database, fast_settings, box, timedelta(minutes=1))
    assert await check(api, acct, box) == OK
    requests = asked(tokens, grant)
    assert [r["refresh_token"] for r in requests] == [original, rotated]
    assert {r["scope"] for r in requests} == {"https://outlook.office.com/IMAP.AccessAsUser.All "
                                              "https://outlook.office.com/SMTP.Send offline_access"}
    assert (await stored(database, fast_settings, box))["oauth_refresh_token"] == grant.refresh_token != rotated


async def test_a_revoked_grant_shows_on_the_mailbox_and_stops_its_syncs_until_reconnected(
        api, fast_settings, database, oauth_dovecot, oauth_sink, tokens):
    acct = await signup(api)
    user = a_user()
    grant = tokens.grant(user)
    box = await oauth_mailbox(api, acct, oauth_dovecot, oauth_sink, grant)
    url = f"/v1/mailboxes/{box['id']}"
    tokens.revoke(grant)
    refused = {"ok": False, "error": "auth_failed", "detail": REVOKED}
    assert await check(api, acct, box) == {"imap": refused, "smtp": refused}
    async with running_worker(fast_settings):
        failed = await synced(api, acct, box["id"])
    assert failed["status"] == "error" and failed["last_error"] == f"auth_failed: {REVOKED}"
    assert failed["next_sync_at"] is None  # not retried on a schedule
    tries = len(asked(tokens, grant))

    async def refused_again():
        now = (await api.get(url, headers=acct.headers)).json()
        return now if len(asked(tokens, grant)) > tries and now["last_error_at"] > failed["last_error_at"] \
            and now["next_sync_at"] is None else None

    async with running_worker(fast_settings):  # asked for, a sync tries once more
        r = await api.post(f"{url}/sync", headers=acct.headers)
        assert r.status_code == 202 and r.json()["next_sync_at"] is not None
        again = await eventually(refused_again, within=180)
    assert again["status"] == "error" and again["last_error"] == f"auth_failed: {REVOKED}"

    renewed = tokens.grant(user)

    async def ok():
        now = (await api.get(url, headers=acct.headers)).json()
        return now if now["status"] == "ok" else None

    async with running_worker(fast_settings):  # reconnected with a new consent
        r = await api.patch(url, headers=acct.headers, json={"oauth": {
            "provider": "google", "client_id": renewed.client_id, "client_secret": renewed.client_secret,
            "refresh_token": renewed.refresh_token}})
        assert r.status_code == 200, r.text
        assert r.json()["last_error"] is None and r.json()["next_sync_at"] is not None
        synced_again = await eventually(ok, within=180)
    assert synced_again["next_sync_at"] is not None and renewed.refreshes == 1
    assert await check(api, acct, box) == OK


async def test_a_token_endpoint_outage_is_retried_with_back_off(api, fast_settings, oauth_dovecot, tokens):
    acct = await signup(api)
    grant = tokens.grant(a_user(), fail_with=503)
    box = await oauth_mailbox(api, acct, oauth_dovecot, None, grant)
    checked = await check(api, acct, box)
    assert checked["imap"]["error"] == "unreachable" and "503" in checked["imap"]["detail"]
    async with running_worker(fast_settings):
        failed = await synced(api, acct, box["id"])
    assert failed["status"] == "error" and failed["last_error"].startswith("unreachable: the google token endpoint")
    assert failed["next_sync_at"] > failed["last_error_at"]  # backed off, still scheduled


async def test_a_client_the_provider_refuses_is_named(api, oauth_dovecot, tokens):
    acct = await signup(api)
    grant = tokens.grant(a_user())
    box = await oauth_mailbox(api, acct, oauth_dovecot, None, grant, oauth={
        "provider": "google", "client_id": grant.client_id, "client_secret": "not-the-secret",
        "refresh_token": grant.refresh_token})
    checked = await check(api, acct, box)
    assert checked["imap"]["error"] == "auth_failed" and "invalid_client" in checked["imap"]["detail"]


async def test_oauth_secrets_are_never_returned_and_oauth2_needs_its_grant(api, fast_settings, database,
                                                                           oauth_dovecot, oauth_sink, tokens):
    acct = await signup(api)
    grant = tokens.grant(a_user())
    renewed = tokens.grant(grant.user)
    box = await oauth_mailbox(api, acct, oauth_dovecot, oauth_sink, grant)
    url = f"/v1/mailboxes/{box['id']}"
    answers = [(await api.get(url, headers=acct.headers)).text,
               (await api.post(f"{url}/test", headers=acct.headers)).text]
    access = (await stored(database, fast_settings, box))["oauth_access_token"]
    answers += [(await api.get(url, headers=acct.headers)).text,
                (await api.get("/v1/mailboxes", headers=acct.headers)).text]
    patched = await api.patch(url, headers=acct.headers, json={"oauth": {
        "provider": "google", "client_id": renewed.client_id, "client_secret": renewed.client_secret,
        "refresh_token": renewed.refresh_token}})
    assert patched.status_code == 200 and patched.json()["oauth"]["client_id"] == renewed.client_id
    audit = await api.get("/v1/audit-log", headers=acct.headers)
    assert audit.status_code == 200 and box["id"] in audit.text
    answers += [patched.text, audit.text]
    for secret in (grant.client_secret, grant.refresh_token, access, renewed.client_secret, renewed.refresh_token):
        assert not [a for a in answers if secret in a]
    after = await stored(database, fast_settings, box)  # the old grant's access token is dropped with it
    assert after["oauth_refresh_token"] == renewed.refresh_token and "oauth_access_token" not in after

    body = {"email": "x@crm-mail.example.com", "imap": {"host": "127.0.0.1", "port": 993, "username": "x"},
            "smtp": {"host": "127.0.0.1", "port": 587, "username": "x"}}
    oauth = {"provider": "google", "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    assert (await api.post("/v1/mailboxes", headers=acct.headers, json={**body, "auth": "oauth2"})).status_code == 422
    with_password = {**body, "imap": {**body["imap"], "password": "p"}}
    r = await api.post("/v1/mailboxes", headers=acct.headers, json={**with_password, "oauth": oauth})
    assert r.status_code == 422  # auth password with an oauth block
    plain = await api.post("/v1/mailboxes", headers=acct.headers, json=with_password)
    r = await api.patch(f"/v1/mailboxes/{plain.json()['id']}", headers=acct.headers, json={"oauth": oauth})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "oauth"]
