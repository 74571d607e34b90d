"""Mail scenarios of `python -m bench`, each a ratio to a bare client doing the same work in the same run:

- `imap_sync`: a mailbox of N messages synced through the API's worker (parse, thread, link, store, events)
  against a bare aioimaplib fetch of the same messages from the same Dovecot;
- `campaign_send`: a campaign to N contacts through the worker (render, record each recipient before the
  server accepts its message) against aiosmtplib sending the same messages over one connection to the same
  SMTP server; every recipient must get exactly one message.

The servers are the tests' (Debian's Dovecot and aiosmtpd, `tests/mail_servers.py`), on 127.0.0.1."""

from __future__ import annotations

import asyncio
import imaplib
import time
import uuid
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import aioimaplib
import aiosmtplib
import httpx

from tests.mail_servers import PASSWORD, Dovecot, SmtpSink

if TYPE_CHECKING:
    from bench.harness import Run


def _message(i: int, to: str) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"] = f"Client {i} <client{i}@bench-mail.example.org>", to
    m["Subject"], m["Message-ID"] = f"Question {i} about the offer", f"<bench-{i}@bench-mail.example.org>"
    m["Date"] = "Thu, 03 Dec 2026 10:00:00 +0000"
    m.set_content(f"Hello,\n\nquestion number {i}: " + "could you send the price list? " * 20)
    m.add_alternative(f"<p>Hello,</p><p>question number {i}</p>" + "<p>price list please</p>" * 20, subtype="html")
    return m


def _seed(dovecot: Dovecot, user: str, count: int) -> None:
    with imaplib.IMAP4("127.0.0.1", dovecot.port) as c:
        c.login(user, PASSWORD)
        stamp = imaplib.Time2Internaldate(time.time())
        for i in range(count):
            c.append("INBOX", "", stamp, _message(i, f"{user}@bench-mail.example.com").as_bytes())


async def _bare_fetch(dovecot: Dovecot, user: str) -> tuple[float, int]:
    started = time.perf_counter()
    client = aioimaplib.IMAP4(host="127.0.0.1", port=dovecot.port, timeout=60)
    await client.wait_hello_from_server()
    await client.login(user, PASSWORD)
    await client.select("INBOX")
    found = (await client.uid_search("ALL")).lines[0].split()
    fetched = 0
    for start in range(0, len(found), 50):
        chunk = b",".join(found[start:start + 50]).decode()
        response = await client.uid("fetch", chunk, "(UID BODY.PEEK[])")
        fetched += sum(1 for line in response.lines if isinstance(line, bytearray))
    await client.logout()
    return time.perf_counter() - started, fetched


async def _api(run: Run) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=run.stack.base_url, timeout=120, headers={"Authorization": run.stack.auth})


async def _synced(run: Run, api: httpx.AsyncClient, dovecot: Dovecot, user: str, count: int) -> tuple[float, int]:
    """Connect the mailbox and wait until its `count` messages are stored: -> (seconds, stored)."""
    started = time.perf_counter()
    r = await api.post("/v1/mailboxes", json={
        "email": f"{user}-{run.tag}@bench-mail.example.com",
        "imap": {"host": "127.0.0.1", "port": dovecot.port, "ssl": False, "username": user, "password": PASSWORD},
        "smtp": {"host": "127.0.0.1", "port": 9, "starttls": False}, "sync_since_days": 3650})
    r.raise_for_status()
    box = r.json()
    stored = 0
    while time.perf_counter() - started < 900:
        page = (await api.get("/v1/mailboxes/" + box["id"])).json()
        stored = int((await run.sql("SELECT count(*) FROM emails WHERE org_id = $1 AND mailbox_id = $2",
                                    run.org_id, uuid.UUID(box["id"])))[0][0])
        if stored >= count and page["last_synced_at"] is not None:
            break
        await asyncio.sleep(0.1)
    return time.perf_counter() - started, stored


async def imap_sync(run: Run, count: int) -> dict[str, Any]:
    from bench.harness import scenario

    dovecot = Dovecot()
    try:
        user = "carol"
        await asyncio.to_thread(_seed, dovecot, "dave", 20)
        await asyncio.to_thread(_seed, dovecot, user, count)
        raw_seconds, fetched = await _bare_fetch(dovecot, user)
        async with await _api(run) as api:
            await _synced(run, api, dovecot, "dave", 20)  # warm-up: the worker has run a sync before
            api_seconds, stored = await _synced(run, api, dovecot, user, count)
    finally:
        dovecot.stop()
    ratio = raw_seconds / api_seconds
    result = scenario("imap_sync", ">= 0.3 x a bare aioimaplib fetch of the same messages", ratio,
                      ratio >= 0.3 and stored == count == fetched, messages=count, stored=stored,
                      api_seconds=round(api_seconds, 2), raw_seconds=round(raw_seconds, 2),
                      api_messages_per_s=round(count / api_seconds), raw_messages_per_s=round(count / raw_seconds))
    run.add(result)
    return result


async def _bare_send(sink: SmtpSink, count: int) -> float:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=60)
    started = time.perf_counter()
    await client.connect()
    await client.login("alice", PASSWORD)
    for i in range(count):
        m = EmailMessage()
        m["From"], m["To"] = "news@bench-mail.example.com", f"raw{i}@bench-mail.example.org"
        m["Subject"] = f"Spring offer for Client{i}"
        m["List-Unsubscribe"] = "<http://127.0.0.1/v1/public/unsubscribe/" + "x" * 64 + ">"
        m["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        m.set_content(f"Hello Client{i}! Unsubscribe: http://127.0.0.1/v1/public/unsubscribe/" + "x" * 64)
        m.add_alternative(f"<p>Hello Client{i}</p><a href='x'>unsubscribe</a>", subtype="html")
        await client.send_message(m)
    await client.quit()
    return time.perf_counter() - started


async def campaign_send(run: Run, count: int) -> dict[str, Any]:
    from bench.harness import scenario

    sink = SmtpSink()
    try:
        raw_seconds = await _bare_send(sink, count)
        raw_delivered = len(sink.messages)
        sink.messages.clear()
        tag = f"bench-{run.tag}"
        async with await _api(run) as api:
            for start in range(0, count, 100):
                r = await api.post("/v1/contacts/batch", json={"mode": "create", "items": [
                    {"first_name": f"Client{i}", "email": f"c{i}-{run.tag}@bench-mail.example.org", "tags": [tag]}
                    for i in range(start, min(start + 100, count))]})
                r.raise_for_status()
            template = (await api.post("/v1/templates", json={
                "name": "Offer", "subject": "Spring offer for {{ contact.first_name }}",
                "body_text": "Hello {{ contact.first_name }}! Unsubscribe: {{ unsubscribe_url }}",
                "body_html": "<p>Hello {{ contact.first_name }}</p><a href='{{ unsubscribe_url }}'>unsubscribe</a>"}
            )).json()
            segment = (await api.post("/v1/segments", json={"name": tag, "filter": {"tags": [tag]}})).json()
            box = (await api.post("/v1/mailboxes", json={
                "email": "news@bench-mail.example.com", "shared": True, "rate_per_minute": 10_000,
                "imap": {"host": "127.0.0.1", "port": 9, "ssl": False, "username": "alice", "password": PASSWORD},
                "smtp": sink.smtp("alice")})).json()
            campaign = (await api.post("/v1/campaigns", json={
                "name": tag, "template_id": template["id"], "segment_id": segment["id"],
                "mailbox_id": box["id"]})).json()
            started = time.perf_counter()
            (await api.post(f"/v1/campaigns/{campaign['id']}/send")).raise_for_status()
            shown: dict[str, Any] = {}
            while time.perf_counter() - started < 1800:
                shown = (await api.get(f"/v1/campaigns/{campaign['id']}")).json()
                if shown["status"] == "sent":
                    break
                await asyncio.sleep(0.2)
            api_seconds = time.perf_counter() - started
    finally:
        sink.stop()
    delivered = [m["X-Rcpt-To"] for m in sink.messages]
    exact = len(delivered) == count == len(set(delivered)) and raw_delivered == count
    ratio = raw_seconds / api_seconds
    result = scenario("campaign_send", ">= 0.5 x aiosmtplib sending the same messages, exactly one each", ratio,
                      ratio >= 0.5 and exact, recipients=count, delivered=len(delivered),
                      distinct=len(set(delivered)), stats=shown.get("stats"), api_seconds=round(api_seconds, 2),
                      raw_seconds=round(raw_seconds, 2), api_messages_per_s=round(count / api_seconds),
                      raw_messages_per_s=round(count / raw_seconds))
    run.add(result)
    return result
