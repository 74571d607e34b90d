"""Mail end to end against real servers: Debian's Dovecot (IMAP), aiosmtpd (SMTP), PostgreSQL, Redis and a
real arq worker. Mailboxes, `/test`, sync onto timelines (charsets, attachments, threads, UIDVALIDITY),
sending that threads back, failures and back-off, who may see what."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from app.domain.mail.models import Mailbox
from tests.factories import signup
from tests.mail_servers import Dovecot, SmtpSink
from tests.servers import free_port
from tests.workers import eventually, running_worker


@pytest.fixture(scope="session")
def dovecot():
    server = Dovecot()
    yield server
    server.stop()


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    yield sink
    sink.stop()


_users = iter(range(10_000))


def user_of(dovecot: Dovecot) -> str:
    """A mailbox of its own for each test (the server lives for the whole session); alice and bob are left for
    mailboxes that are never synced."""
    from tests.mail_servers import USERS

    index = next(_users) + 2
    if index >= len(USERS):
        pytest.fail("more mail tests than IMAP users: add users to tests.mail_servers.USERS")
    return USERS[index]


def message(sender: str, to: str, subject: str, body: str = "Hello", charset: str = "utf-8",
            message_id: str | None = None, in_reply_to: str | None = None, **headers: str) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Message-ID"] = message_id or make_msgid(domain="example.org")
    m["Date"] = "Thu, 03 Dec 2026 10:00:00 +0000"
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    m.set_content(body, charset=charset)
    return m


async def mailbox(api, acct, dovecot: Dovecot, sink: SmtpSink | None, user: str, **extra) -> dict:
    body = {"email": f"{user}@crm-mail.example.com", "imap": dovecot.imap(user),
            "smtp": sink.smtp(user) if sink else {"host": "127.0.0.1", "port": free_port(), "starttls": False},
            **extra}
    r = await api.post("/v1/mailboxes", headers=acct.headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def emails(api, acct, **params) -> list[dict]:
    r = await api.get("/v1/emails", headers=acct.headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def synced(api, acct, box_id: str) -> dict:
    async def done():
        r = (await api.get(f"/v1/mailboxes/{box_id}", headers=acct.headers)).json()
        return r if r["status"] != "never_synced" else None

    return await eventually(done, within=180)


async def test_credentials_are_write_only_and_members_hold_only_their_own(api, dovecot, smtp_sink):
    acct = await signup(api)
    box = await mailbox(api, acct, dovecot, smtp_sink, user_of(dovecot), shared=True)
    assert box["imap"] == {"host": "127.0.0.1", "port": dovecot.port, "ssl": False, "username": box["imap"]["username"]}
    for path in ("/v1/mailboxes", f"/v1/mailboxes/{box['id']}"):
        assert "secret" not in (await api.get(path, headers=acct.headers)).text  # the password (PASSWORD)
    member = await acct.invite("member")
    shared = await api.post("/v1/mailboxes", headers=member.headers, json={
        "email": "team@crm-mail.example.com", "shared": True, "imap": dovecot.imap("bob"), "smtp": smtp_sink.smtp("bob")})
    assert shared.status_code == 403
    own = await api.post("/v1/mailboxes", headers=member.headers, json={
        "email": "me@crm-mail.example.com", "imap": dovecot.imap("bob"), "smtp": smtp_sink.smtp("bob")})
    assert own.status_code == 201 and own.json()["owner_id"] == member.user_id
    listed = (await api.get("/v1/mailboxes", headers=member.headers)).json()["data"]
    assert [b["id"] for b in listed] == [own.json()["id"]]
    assert (await api.get(f"/v1/mailboxes/{box['id']}", headers=member.headers)).status_code == 404
    other = await signup(api, "Other")
    assert (await api.get(f"/v1/mailboxes/{box['id']}", headers=other.headers)).status_code == 404
    assert (await api.post(f"/v1/mailboxes/{box['id']}/test", headers=other.headers)).status_code == 404
    stored = await api.post("/v1/mailboxes", headers=acct.headers, json={
        "email": "x@crm-mail.example.com", "imap": {**dovecot.imap("bob"), "password": None}, "smtp": smtp_sink.smtp("bob")})
    assert stored.status_code == 422  # auth password needs one


async def test_the_check_names_what_failed(api, dovecot, smtp_sink):
    acct = await signup(api)
    user = user_of(dovecot)
    good = await mailbox(api, acct, dovecot, smtp_sink, user)
    r = await api.post(f"/v1/mailboxes/{good['id']}/test", headers=acct.headers)
    assert r.status_code == 200 and r.json() == {"imap": {"ok": True, "error": None, "detail": None},
                                                 "smtp": {"ok": True, "error": None, "detail": None}}
    wrong = await api.post("/v1/mailboxes", headers=acct.headers, json={
        "email": "w@crm-mail.example.com", "imap": {**dovecot.imap(user), "password": "wrong"},
        "smtp": {**smtp_sink.smtp(user), "password": "wrong"}})
    checked = (await api.post(f"/v1/mailboxes/{wrong.json()['id']}/test", headers=acct.headers)).json()
    assert checked["imap"]["error"] == "auth_failed" and checked["smtp"]["error"] == "auth_failed"
    closed = free_port()
    down = await api.post("/v1/mailboxes", headers=acct.headers, json={
        "email": "d@crm-mail.example.com", "imap": {**dovecot.imap(user), "port": closed},
        "smtp": {"host": "127.0.0.1", "port": closed, "starttls": False}})
    checked = (await api.post(f"/v1/mailboxes/{down.json()['id']}/test", headers=acct.headers)).json()
    assert checked["imap"]["error"] == "unreachable" and checked["smtp"]["error"] == "unreachable"
    tls = await api.post("/v1/mailboxes", headers=acct.headers, json={  # TLS spoken to a plain-text server
        "email": "t@crm-mail.example.com", "imap": {**dovecot.imap(user), "ssl": True}, "smtp": {**smtp_sink.smtp(user), "ssl": True}})
    checked = (await api.post(f"/v1/mailboxes/{tls.json()['id']}/test", headers=acct.headers)).json()
    assert checked["imap"]["ok"] is False and checked["imap"]["error"] in ("tls_error", "timeout")
    assert checked["smtp"]["ok"] is False and checked["smtp"]["error"] in ("tls_error", "timeout")


async def test_inbox_and_sent_land_on_the_right_timelines_once(api, fast_settings, dovecot):
    acct = await signup(api)
    user = user_of(dovecot)
    ana = (await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana", "email": "ana@client.org"})).json()
    deal = (await api.post("/v1/deals", headers=acct.headers, json={"title": "Ana: 5 seats", "contact_id": ana["id"]})).json()
    lead = (await api.post("/v1/leads", headers=acct.headers, json={"first_name": "Lea", "email": "lea@prospect.org"})).json()
    own = f"{user}@crm-mail.example.com"
    question = message("Ana <ana@client.org>", own, "Preis für 5 Plätze?", "Grüße aus Köln", charset="iso-8859-1")
    dovecot.append(user, question)
    cyrillic = message("ana@client.org", own, "Счёт", "Добрый день", charset="koi8-r")
    dovecot.append(user, cyrillic)
    with_file = message("lea@prospect.org", own, "Our brief", "See the attachment")
    with_file.add_alternative("<p>See the <b>attachment</b></p>", subtype="html")
    with_file.add_attachment(b"%PDF-1.4 brief", maintype="application", subtype="pdf", filename="brief.pdf")
    dovecot.append(user, with_file)
    answer = message(own, "ana@client.org", "Re: Preis für 5 Plätze?", "1200 EUR",
                     in_reply_to=question["Message-ID"])
    dovecot.append(user, answer, folder="Sent")
    stranger = message("nobody@else.org", own, "Newsletter", "Hi")
    dovecot.append(user, stranger)
    async with running_worker(fast_settings):
        box = await mailbox(api, acct, dovecot, None, user)
        assert (await synced(api, acct, box["id"]))["status"] == "ok"
    mail = await emails(api, acct, mailbox_id=box["id"])
    assert len(mail) == 5
    of_ana = await emails(api, acct, contact_id=ana["id"])
    subjects = {e["subject"]: e for e in of_ana}
    assert set(subjects) == {"Preis für 5 Plätze?", "Счёт", "Re: Preis für 5 Plätze?"}
    assert subjects["Preis für 5 Plätze?"]["text"].strip() == "Grüße aus Köln"  # Latin-1 read as such
    assert subjects["Счёт"]["text"].strip() == "Добрый день"  # KOI8-R
    assert subjects["Preis für 5 Plätze?"]["direction"] == "inbound"
    sent = subjects["Re: Preis für 5 Plätze?"]
    assert sent["direction"] == "outbound" and sent["status"] == "sent"
    assert sent["thread_id"] == subjects["Preis für 5 Plätze?"]["thread_id"] != subjects["Счёт"]["thread_id"]
    assert deal["id"] in subjects["Счёт"]["deal_ids"]  # the contact's open deal
    of_lea = await emails(api, acct, lead_id=lead["id"])
    assert [e["subject"] for e in of_lea] == ["Our brief"]
    brief = of_lea[0]
    assert "<b>attachment</b>" in brief["html"]
    [attachment] = brief["attachments"]
    assert (attachment["filename"], attachment["content_type"], attachment["size"]) == (
        "brief.pdf", "application/pdf", len(b"%PDF-1.4 brief"))
    file = await api.get(f"/v1/emails/{brief['id']}/attachments/{attachment['file_id']}", headers=acct.headers)
    assert file.status_code == 200 and file.content == b"%PDF-1.4 brief"
    assert file.headers["content-disposition"].startswith("attachment")
    timeline = (await api.get(f"/v1/contacts/{ana['id']}/timeline", headers=acct.headers)).json()["data"]
    assert sorted(e["data"]["subject"] for e in timeline if e["kind"] == "email") == sorted(subjects)
    deal_timeline = (await api.get(f"/v1/deals/{deal['id']}/timeline", headers=acct.headers)).json()["data"]
    assert {e["data"]["subject"] for e in deal_timeline if e["kind"] == "email"} == set(subjects)

    # Again, with one new message and the Sent folder restored under a new UIDVALIDITY: only the new one.
    dovecot.append(user, message("ana@client.org", own, "Danke", "Passt", in_reply_to=answer["Message-ID"]))
    dovecot.recreate(user, "Sent")
    async with running_worker(fast_settings):
        r = await api.post(f"/v1/mailboxes/{box['id']}/sync", headers=acct.headers)
        assert r.status_code == 202

        async def six():
            return len(await emails(api, acct, mailbox_id=box["id"])) == 6 or None

        await eventually(six, within=180)
        await eventually(lambda: _last_synced_after(api, acct, box, r.json()["last_synced_at"]), within=180)
    mail = await emails(api, acct, mailbox_id=box["id"])
    assert len(mail) == 6 and len({e["message_id"] for e in mail}) == 6
    thanks = next(e for e in mail if e["subject"] == "Danke")
    assert thanks["thread_id"] == sent["thread_id"]  # In-Reply-To the answer in Sent
    feed = (await api.get("/v1/changes", headers=acct.headers, params={"types": "email"})).json()["data"]
    assert sorted(e["type"] for e in feed) == ["email.received"] * 6


async def _last_synced_after(api, acct, box, before) -> bool:
    now = (await api.get(f"/v1/mailboxes/{box['id']}", headers=acct.headers)).json()["last_synced_at"]
    return now is not None and (before is None or now > before)


async def test_a_sent_email_threads_back_when_the_client_replies(api, fast_settings, dovecot, smtp_sink):
    acct = await signup(api)
    user = user_of(dovecot)
    ana = (await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana", "email": "ana@client.org"})).json()
    box = await mailbox(api, acct, dovecot, smtp_sink, user)
    r = await api.post("/v1/emails", headers=acct.headers, json={
        "mailbox_id": box["id"], "to": ["ana@client.org"], "subject": "Your quote", "text": "Hello Ana",
        "html": "<p>Hello Ana</p>"})
    assert r.status_code == 202, r.text
    queued = r.json()
    assert queued["status"] == "queued" and queued["contact_ids"] == [ana["id"]]
    async with running_worker(fast_settings):
        async def sent():
            e = (await api.get(f"/v1/emails/{queued['id']}", headers=acct.headers)).json()
            return e if e["status"] == "sent" else None

        done = await eventually(sent, within=180)
        [delivered] = smtp_sink.messages
        assert delivered["Message-ID"] == queued["message_id"] == done["message_id"]
        assert delivered["X-Rcpt-To"] == "ana@client.org" and delivered["Subject"] == "Your quote"
        assert delivered.get_body(("plain",)).get_content().strip() == "Hello Ana"
        # Ana answers; the copy of our mail in Sent (as many servers keep one) is not a second row.
        dovecot.append(user, message("ana@client.org", f"{user}@crm-mail.example.com", "Re: Your quote", "Deal!",
                                     in_reply_to=queued["message_id"]))
        dovecot.append(user, delivered.as_bytes(), folder="Sent")
        await api.post(f"/v1/mailboxes/{box['id']}/sync", headers=acct.headers)

        async def replied():
            rows = await emails(api, acct, thread_id=queued["thread_id"])
            return rows if len(rows) == 2 else None

        thread = await eventually(replied, within=180)
        await eventually(lambda: _last_synced_after(api, acct, box, None), within=180)
    assert sorted(e["subject"] for e in thread) == ["Re: Your quote", "Your quote"]
    assert len(await emails(api, acct, mailbox_id=box["id"])) == 2
    # Answer in the thread: the reply carries In-Reply-To and References.
    reply = next(e for e in thread if e["subject"] == "Re: Your quote")
    r = await api.post("/v1/emails", headers=acct.headers, json={
        "mailbox_id": box["id"], "to": ["ana@client.org"], "text": "Great", "in_reply_to": reply["id"]})
    assert r.status_code == 202 and r.json()["thread_id"] == queued["thread_id"]
    assert r.json()["subject"] == "Re: Your quote"
    async with running_worker(fast_settings):
        await eventually(lambda: _async(len(smtp_sink.messages) == 2), within=180)
    assert smtp_sink.messages[1]["In-Reply-To"] == reply["message_id"]
    assert queued["message_id"] in smtp_sink.messages[1]["References"]


async def _async(value):
    return value


async def test_temporary_failures_are_retried_and_refusals_recorded(api, fast_settings, dovecot, smtp_sink):
    acct = await signup(api)
    box = await mailbox(api, acct, dovecot, smtp_sink, user_of(dovecot))
    smtp_sink.defer = 2  # two 451s, then accepted
    smtp_sink.refuse["gone@client.org"] = "550 5.1.1 no such user"
    later = (await api.post("/v1/emails", headers=acct.headers, json={
        "mailbox_id": box["id"], "to": ["ana@client.org"], "subject": "Later", "text": "x"})).json()
    never = (await api.post("/v1/emails", headers=acct.headers, json={
        "mailbox_id": box["id"], "to": ["gone@client.org"], "subject": "Never", "text": "x"})).json()
    settings = fast_settings.model_copy(update={"mail_retry_schedule": [0.2, 0.2, 0.2]})
    async with running_worker(settings):
        async def settled():
            rows = {e["subject"]: e for e in await emails(api, acct, mailbox_id=box["id"])}
            return rows if {r["status"] for r in rows.values()} <= {"sent", "failed"} else None

        rows = await eventually(settled, within=180)
    assert rows["Later"]["status"] == "sent" and rows["Later"]["attempts"] == 2
    assert rows["Never"]["status"] == "failed" and "550" in rows["Never"]["error"]
    assert [m["Subject"] for m in smtp_sink.messages] == ["Later"]
    types = [e["type"] for e in (await api.get("/v1/changes", headers=acct.headers,
                                               params={"types": "email"})).json()["data"]]
    assert sorted(types) == ["email.failed", "email.sent"]
    assert later["id"] != never["id"]


async def test_a_server_that_is_down_backs_off_and_shows_its_error(api, fast_settings, dovecot, database):
    acct = await signup(api)
    closed = free_port()
    r = await api.post("/v1/mailboxes", headers=acct.headers, json={
        "email": "down@crm-mail.example.com", "imap": {**dovecot.imap("bob"), "port": closed},
        "smtp": {"host": "127.0.0.1", "port": closed, "starttls": False}})
    box = r.json()
    async with running_worker(fast_settings):
        failed = await synced(api, acct, box["id"])
    assert failed["status"] == "error" and failed["last_error"].startswith("unreachable")
    async with database.sessions() as s:
        row = await s.scalar(select(Mailbox).where(Mailbox.id == box["id"]))
    assert row.failures >= 1 and row.next_sync_at > row.last_error_at  # backed off


async def test_a_password_no_key_opens_stops_the_sync_and_says_so(api, fast_settings, dovecot, database):
    """Stored credentials sealed with a key that was since removed: the sync fails once as `auth_failed` with
    what to do, and waits (no retry loop) until the mailbox is updated; `/test` says the same."""
    from cryptography.fernet import Fernet
    from sqlalchemy import update

    acct = await signup(api)
    box = await mailbox(api, acct, dovecot, None, user_of(dovecot))
    lost_key = Fernet(Fernet.generate_key())
    async with database.sessions() as s:
        await s.execute(update(Mailbox).where(Mailbox.id == box["id"]).values(
            sealed_secrets=lost_key.encrypt(b'{"imap_password": "secret"}').decode()))
        await s.commit()
    async with running_worker(fast_settings):
        failed = await synced(api, acct, box["id"])
    assert failed["status"] == "error" and failed["last_error"].startswith("auth_failed")
    assert "CRM_SECRET_KEYS" in failed["last_error"]
    async with database.sessions() as s:
        row = await s.scalar(select(Mailbox).where(Mailbox.id == box["id"]))
    # not scheduled again (a sweep that found it due before the first failure was recorded may try once more)
    assert row.next_sync_at is None and row.failures <= 2
    checked = (await api.post(f"/v1/mailboxes/{box['id']}/test", headers=acct.headers)).json()
    assert checked["imap"]["ok"] is False and checked["imap"]["error"] == "auth_failed"


async def test_private_mail_is_its_owners_and_mail_follows_the_records_visibility(api, fast_settings, dovecot):
    acct = await signup(api)
    user = user_of(dovecot)
    member = await acct.invite("member")
    colleague = await acct.invite("member")
    own = f"{user}@crm-mail.example.com"
    mine = (await api.post("/v1/contacts", headers=member.headers, json={"first_name": "M", "email": "m@client.org"})).json()
    dovecot.append(user, message("m@client.org", own, "Private matter"))
    async with running_worker(fast_settings):
        box = (await api.post("/v1/mailboxes", headers=member.headers, json={
            "email": own, "private": True, "imap": dovecot.imap(user),
            "smtp": {"host": "127.0.0.1", "port": free_port(), "starttls": False}})).json()
        await synced(api, acct, box["id"])
    assert [e["subject"] for e in await emails(api, member)] == ["Private matter"]
    assert [e["subject"] for e in await emails(api, acct)] == ["Private matter"]  # the owner of the org
    assert await emails(api, colleague) == []  # may read the contact (visibility all), not private mail
    assert (await api.get(f"/v1/contacts/{mine['id']}", headers=colleague.headers)).status_code == 200
    timeline = (await api.get(f"/v1/contacts/{mine['id']}/timeline", headers=colleague.headers)).json()["data"]
    assert [e for e in timeline if e["kind"] == "email"] == []
    email_id = (await emails(api, member))[0]["id"]
    assert (await api.get(f"/v1/emails/{email_id}", headers=colleague.headers)).status_code == 404
    other = await signup(api, "Other")
    assert (await api.get(f"/v1/emails/{email_id}", headers=other.headers)).status_code == 404
    assert await emails(api, other) == []
    key = await acct.api_key(["contacts:read"])
    assert (await api.get("/v1/emails", headers=key)).status_code == 403


async def test_credentials_are_sealed_at_rest_and_a_key_rotation_reseals_them(api, settings, dovecot, smtp_sink,
                                                                            database, redis_server, tmp_path):
    import asyncio
    import json
    import subprocess

    from cryptography.fernet import Fernet
    from pydantic import SecretStr

    from app.domain.sealing import Unsealable, _keys, unseal
    from app.domain.sms.models import SmsGateway
    from tests.servers import crm_command, crm_env

    acct = await signup(api)
    box = await mailbox(api, acct, dovecot, smtp_sink, "alice")

    async def stored() -> str:
        async with database.sessions() as s:
            return await s.scalar(select(Mailbox.sealed_secrets).where(Mailbox.id == box["id"]))

    sealed = await stored()
    assert "secret" not in sealed and unseal(settings, sealed)["imap_password"] == "secret"
    r = await api.put("/v1/settings/sms", headers=acct.headers, json={
        "url": "https://sms.example.com/send", "headers": {"Authorization": "Bearer sms-key"}, "from": "ACME"})
    assert r.status_code == 200, r.text
    new = Fernet.generate_key().decode()
    old = _keys(settings)[0]
    env = crm_env(settings.migration_url, redis_server.url, tmp_path, CRM_SECRET_KEYS=f"{new},{old}",
                  CRM_ENV="test", CRM_JWT_SECRET=settings.jwt_key())
    ran = await asyncio.to_thread(subprocess.run, [*crm_command(), "reseal"], env=env, capture_output=True, text=True,
                                  timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    counted = json.loads(ran.stdout)
    assert counted["mailboxes"] >= 1 and counted["sms_gateways"] >= 1
    rotated = settings.model_copy(update={"secret_keys": [SecretStr(new)]})
    assert unseal(rotated, await stored())["smtp_password"] == "secret"  # the new key alone opens it
    async with database.sessions() as s:
        headers = await s.scalar(select(SmsGateway.sealed_headers).where(SmsGateway.org_id == acct.org_id))
    assert "sms-key" not in headers and unseal(rotated, headers) == {"Authorization": "Bearer sms-key"}
    with pytest.raises(Unsealable):
        unseal(settings, await stored())  # the old one no longer does


async def test_a_strangers_mail_to_a_shared_inbox_becomes_an_assigned_lead(api, fast_settings, dovecot):
    acct = await signup(api)
    user = user_of(dovecot)
    rep1, rep2, away = await acct.invite("member"), await acct.invite("member"), await acct.invite("member")
    await api.patch(f"/v1/users/{away.user_id}", headers=acct.headers, json={"out_of_office": True})
    known = (await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "K", "email": "known@client.org"})).json()
    own = f"{user}@crm-mail.example.com"
    dovecot.append(user, message("Sam Stranger <sam@new.org>", own, "Need 40 chairs"))
    dovecot.append(user, message("sam@new.org", own, "Also tables"))  # the same stranger: one lead
    dovecot.append(user, message("tina@new.org", own, "Quote please"))
    dovecot.append(user, message("known@client.org", own, "Reorder"))  # a contact: no lead
    dovecot.append(user, message("news@list.org", own, "Weekly digest", Precedence="bulk"))  # bulk: no lead
    dovecot.append(user, message("bounce@mailer.org", own, "Undelivered", Auto_Submitted="auto-replied"))
    async with running_worker(fast_settings):
        box = await mailbox(api, acct, dovecot, None, user, shared=True, routing={
            "unknown_sender": "create_lead", "assignees": [rep1.user_id, away.user_id, rep2.user_id]})
        await synced(api, acct, box["id"])
    made = (await api.get("/v1/leads", headers=acct.headers, params={"source": "email"})).json()["data"]
    by_email = {lead["email"]: lead for lead in made}
    assert set(by_email) == {"sam@new.org", "tina@new.org"}
    assert (by_email["sam@new.org"]["first_name"], by_email["sam@new.org"]["last_name"]) == ("Sam", "Stranger")
    assert {lead["owner_id"] for lead in made} == {rep1.user_id, rep2.user_id}  # round-robin, the absent skipped
    sam = await emails(api, acct, lead_id=by_email["sam@new.org"]["id"])
    assert sorted(e["subject"] for e in sam) == ["Also tables", "Need 40 chairs"]  # on the lead's timeline
    timeline = (await api.get(f"/v1/leads/{by_email['sam@new.org']['id']}/timeline", headers=acct.headers)).json()
    assert sum(e["kind"] == "email" for e in timeline["data"]) == 2
    assert [e["subject"] for e in await emails(api, acct, contact_id=known["id"])] == ["Reorder"]
    # Synced again: nothing new, no second lead.
    async with running_worker(fast_settings):
        before = (await api.get(f"/v1/mailboxes/{box['id']}", headers=acct.headers)).json()["last_synced_at"]
        await api.post(f"/v1/mailboxes/{box['id']}/sync", headers=acct.headers)
        await eventually(lambda: _last_synced_after(api, acct, box, before), within=180)
    again = (await api.get("/v1/leads", headers=acct.headers, params={"source": "email"})).json()["data"]
    assert len(again) == 2


async def test_auto_replies_go_once_a_day_and_never_to_automatic_mail(api, fast_settings, dovecot, smtp_sink):
    acct = await signup(api)
    user = user_of(dovecot)
    own = f"{user}@crm-mail.example.com"
    template = (await api.post("/v1/templates", headers=acct.headers, json={
        "name": "Thanks", "subject": "Thanks, {{ contact.first_name }}",
        "body_text": "Hello {{ contact.first_name }}, {{ org.name }} will answer within a day."})).json()
    first = message("Sam Stranger <sam@new.org>", own, "Need 40 chairs")
    dovecot.append(user, first)
    dovecot.append(user, message("sam@new.org", own, "And tables"))  # same sender, same day: no second reply
    dovecot.append(user, message("news@list.org", own, "Digest", Precedence="list"))
    dovecot.append(user, message("robot@other.org", own, "Out of office", Auto_Submitted="auto-replied"))
    async with running_worker(fast_settings):
        box = await mailbox(api, acct, dovecot, smtp_sink, user, shared=True, routing={
            "unknown_sender": "create_lead", "auto_reply_template_id": template["id"]})
        await synced(api, acct, box["id"])
        await eventually(lambda: _async(len(smtp_sink.messages) >= 1), within=180)

        async def replies_settled():
            rows = [e for e in await emails(api, acct, mailbox_id=box["id"]) if e["direction"] == "outbound"]
            return rows if rows and all(e["status"] == "sent" for e in rows) else None

        replies = await eventually(replies_settled, within=180)
    assert len(replies) == 1 and len(smtp_sink.messages) == 1
    [sent] = smtp_sink.messages
    assert sent["X-Rcpt-To"] == "sam@new.org" and sent["Subject"] == "Thanks, Sam"
    assert sent["Auto-Submitted"] == "auto-replied" and sent["In-Reply-To"] == first["Message-ID"]
    assert "Acme will answer" in sent.get_body(("plain",)).get_content()
    inbound = next(e for e in await emails(api, acct, mailbox_id=box["id"]) if e["subject"] == "Need 40 chairs")
    assert replies[0]["thread_id"] == inbound["thread_id"] and replies[0]["lead_ids"] == inbound["lead_ids"]


async def test_mail_servers_on_internal_addresses_are_refused(settings, app_database, redis):
    import httpx

    from app.main import create_app

    guarded = settings.model_copy(update={"allow_private_networks": False})
    application = create_app(guarded, db=app_database, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://crm.test") as c:
        acct = await signup(c)
        box = (await c.post("/v1/mailboxes", headers=acct.headers, json={
            "email": "x@crm-mail.example.com", "imap": {"host": "127.0.0.1", "port": 143, "ssl": False,
                                                       "username": "alice", "password": "secret"},
            "smtp": {"host": "169.254.169.254", "port": 25, "starttls": False}})).json()
        checked = (await c.post(f"/v1/mailboxes/{box['id']}/test", headers=acct.headers)).json()
    assert checked["imap"]["error"] == "unreachable" and "non-public" in checked["imap"]["detail"]
    assert checked["smtp"]["error"] == "unreachable" and "non-public" in checked["smtp"]["detail"]


async def test_a_contacts_mail_is_in_their_export_and_erased_with_them(api, fast_settings, dovecot):
    acct = await signup(api)
    user = user_of(dovecot)
    own = f"{user}@crm-mail.example.com"
    ana = (await api.post("/v1/contacts", headers=acct.headers, json={"first_name": "Ana", "email": "ana@client.org"})).json()
    note = message("Ana Silva <ana@client.org>", f"{own}, boss@crm-mail.example.com", "My new address",
                   "I live at Rua Augusta 12 now")
    note.add_attachment(b"passport scan", maintype="image", subtype="png", filename="passport.png")
    dovecot.append(user, note)
    async with running_worker(fast_settings):
        box = await mailbox(api, acct, dovecot, None, user)
        await synced(api, acct, box["id"])
    exported = (await api.get(f"/v1/contacts/{ana['id']}/export", headers=acct.headers)).json()
    [mail] = exported["emails"]
    assert mail["subject"] == "My new address" and "Rua Augusta" in mail["text"]
    assert "email.received" in [e["type"] for e in exported["events"]]
    file_url = f"/v1/emails/{mail['id']}/attachments/{mail['attachments'][0]['file_id']}"
    assert (await api.get(file_url, headers=acct.headers)).status_code == 200
    key = await acct.api_key(["contacts:read", "activities:read", "deals:read", "leads:read", "changes:read"])
    assert (await api.get(f"/v1/contacts/{ana['id']}/export", headers=key)).status_code == 403  # no mail:read

    r = await api.post(f"/v1/contacts/{ana['id']}/erase", headers=acct.headers)
    assert r.status_code == 202 and r.json()["counts"]["emails"] == 1
    erased = (await api.get(f"/v1/emails/{mail['id']}", headers=acct.headers)).json()
    assert (erased["subject"], erased["text"], erased["html"], erased["attachments"]) == ("(erased)", None, None, [])
    assert erased["from"] == "" and erased["to"] == [own, "boss@crm-mail.example.com"] and erased["contact_ids"] == []
    assert (await api.get(file_url, headers=acct.headers)).status_code == 404  # the file is gone
    feed = (await api.get("/v1/changes", headers=acct.headers, params={"types": "email"})).text
    assert "Rua Augusta" not in feed and "ana@client.org" not in feed and "Ana Silva" not in feed
