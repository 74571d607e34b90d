"""Synced mail taken in: each message parsed, stored once per mailbox (by Message-ID), threaded and linked to
the contacts, leads and deals of its addresses, with `email.received`; and, for a shared mailbox whose routing
says `create_lead`, a stranger's mail becomes a lead (`source: email`) assigned round-robin; with an
`auto_reply_template_id` the sender gets that template back (queued like any email, sent by the worker).

Locking (rule 2 of `app.domain.flows`): a stranger's address is a person key, taken before looking for a
contact or an open lead with it, as form intake does; a form submission and an email from the same new person
therefore make one lead between them. Mail already stored (a re-sync) causes nothing again."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import assignment, locks
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.contacts import service as contacts
from app.domain.errors import CRMError
from app.domain.events import service as events
from app.domain.leads import service as leads
from app.domain.mail import service as mail
from app.domain.mail.models import Email, Mailbox
from app.domain.mail.parse import Parsed, Part, parse
from app.domain.mail.sync import file_path
from app.domain.records import org_settings
from app.domain.templates import render
from app.domain.templates import service as templates
from app.ids import new_id
from app.logging import log
from app.settings import Settings

SYSTEM = {"type": "system", "id": None}


def _clean(text: str | None) -> str | None:
    return None if text is None else text.replace("\x00", "")


async def store(session: AsyncSession, settings: Settings, box: Mailbox, role: str,
                messages: list[tuple[int, bytes]]) -> None:
    parsed: list[tuple[int, Parsed]] = []
    for uid, raw in messages:
        try:
            parsed.append((uid, parse(raw)))
        except Exception as exc:  # noqa: BLE001 - one broken message must not stop the mailbox
            log.warning("mail_message_unreadable", mailbox_id=str(box.id), uid=uid, error=type(exc).__name__)
    known = set(await session.scalars(select(Email.message_id).where(
        Email.org_id == box.org_id, Email.mailbox_id == box.id,
        Email.message_id.in_([p.message_id for _, p in parsed])))) if parsed else set()
    fresh: list[tuple[int, Parsed]] = []
    for uid, message in parsed:
        if message.message_id not in known:
            known.add(message.message_id)  # the same message twice in one chunk (a copy in another folder)
            fresh.append((uid, message))
    own = box.email.lower()
    for _, message in fresh:
        if _outbound(box, role, message) is False and box.shared and \
                (box.routing or {}).get("unknown_sender") == "create_lead":
            await _lead_for_stranger(session, box, message)
    linked = await mail.links_many(session, box.org_id, [
        [a for a in (m.from_address, *m.to, *m.cc) if a and a != own] for _, m in fresh])
    threads = await mail.threads_many(session, box.org_id, [
        (m.message_id, [*([m.in_reply_to] if m.in_reply_to else []), *m.references]) for _, m in fresh])
    rows, replies, answered = [], [], set()
    for (uid, message), link, thread in zip(fresh, linked, threads, strict=True):
        row = _row(settings, box, role, uid, message, link, thread)
        rows.append(row)
        if row["direction"] == "inbound" and message.from_address not in answered and \
                await _answers(session, box, message):
            answered.add(message.from_address)
            try:
                replies.append(await _auto_reply(session, box, message, row))
            except CRMError as exc:  # the template was deleted or does not render: the mail is still taken in
                log.warning("auto_reply_skipped", mailbox_id=str(box.id), error=type(exc).__name__, detail=str(exc))
    if not rows:
        return
    # executemany (insertmanyvalues): one cached statement; a multi-row VALUES would be compiled anew per chunk
    stored = (await session.scalars(
        insert(Email).on_conflict_do_nothing(index_elements=["org_id", "mailbox_id", "message_id"])
        .returning(Email), rows)).all()
    await events.emit_many(session, SYSTEM, box.org_id, [
        ("email.received", "email", e.id, e.version, {"object": mail.dump_email(e)}) for e in stored])
    session.add_all(replies)  # queued: the worker's mail sweep sends them


AUTO_REPLY_EVERY = timedelta(days=1)


async def _answers(session: AsyncSession, box: Mailbox, message: Parsed) -> bool:
    """An auto-reply goes to a person's mail to a shared mailbox whose routing names a template: never to
    automatic or bulk mail, never to the mailbox itself, at most once per sender and day."""
    template_id = (box.routing or {}).get("auto_reply_template_id")
    sender = message.from_address
    if not (box.shared and template_id and sender and "@" in sender) or message.auto_submitted:
        return False
    if sender == box.email.lower() or sender.split("@")[0] in ("mailer-daemon", "postmaster", "noreply", "no-reply"):
        return False
    await locks.keys(session, f"auto-reply:{box.org_id}:{box.id}:{sender}")
    recent = await session.scalar(select(Email.id).where(
        Email.org_id == box.org_id, Email.mailbox_id == box.id, Email.auto_reply.is_(True),
        Email.to_addresses.contains([sender]), Email.created_at > datetime.now(UTC) - AUTO_REPLY_EVERY).limit(1))
    return recent is None


async def _auto_reply(session: AsyncSession, box: Mailbox, message: Parsed, inbound: dict[str, Any]) -> Email:
    template = await templates.TEMPLATE.get(session, box.org_id, UUID(str(box.routing["auto_reply_template_id"])))
    first, _, last = (message.from_name or "").partition(" ")
    org = await org_settings(session, box.org_id)
    rendered = render.render(
        {"subject": template.subject, "body_html": template.body_html, "body_text": template.body_text},
        {"contact": {"first_name": first or None, "last_name": last or None, "email": message.from_address},
         "company": {}, "deal": {}, "user": {}, "org": {"id": str(org.id), "name": org.name}, "unsubscribe_url": ""})
    email_id, now = new_id(), datetime.now(UTC)
    return Email(
        org_id=box.org_id, id=email_id, mailbox_id=box.id, direction="outbound", status="queued",
        subject=(rendered["subject"] or f"Re: {message.subject}")[:998], from_address=box.email, from_name=None,
        to_addresses=[message.from_address], cc_addresses=[], sent_at=now,
        message_id=f"<{email_id}@{box.email.rpartition('@')[2]}>", in_reply_to=message.message_id,
        references=[*message.references, message.message_id][-50:], thread_id=inbound["thread_id"],
        contact_ids=inbound["contact_ids"], lead_ids=inbound["lead_ids"], deal_ids=inbound["deal_ids"],
        body_text=rendered["text"], body_html=rendered["html"], attachments=[], auto_reply=True, next_attempt_at=now)


def _outbound(box: Mailbox, role: str, message: Parsed) -> bool:
    return role == "sent" or message.from_address == box.email.lower()


def _row(settings: Settings, box: Mailbox, role: str, uid: int, message: Parsed,
         link: tuple[list[UUID], list[UUID], list[UUID]], thread: UUID) -> dict[str, Any]:
    outbound = _outbound(box, role, message)
    contact_ids, lead_ids, deal_ids = link
    return {
        "org_id": box.org_id, "id": new_id(), "mailbox_id": box.id, "version": 1,
        "direction": "outbound" if outbound else "inbound", "status": "sent" if outbound else "received",
        "subject": _clean(message.subject) or "", "from_address": message.from_address,
        "from_name": _clean(message.from_name), "to_addresses": message.to, "cc_addresses": message.cc,
        "sent_at": message.sent_at, "message_id": message.message_id, "in_reply_to": message.in_reply_to,
        "references": message.references,
        "thread_id": thread,
        "contact_ids": contact_ids, "lead_ids": lead_ids, "deal_ids": deal_ids,
        "body_text": _clean(message.text), "body_html": _clean(message.html),
        "attachments": [_keep(settings, box.org_id, part) for part in message.attachments], "folder_uid": uid,
    }


async def _lead_for_stranger(session: AsyncSession, box: Mailbox, message: Parsed) -> None:
    """A lead for mail from an address that is no contact's and no open lead's (the routing's round-robin
    owner); bulk and automatic mail (`Auto-Submitted`, `Precedence: bulk|list`) makes none."""
    sender = message.from_address
    if not sender or "@" not in sender or message.auto_submitted:
        return
    await locks.keys(session, *locks.person(box.org_id, sender, None))
    if await contacts.find_by_email_or_phone(session, box.org_id, sender, None) is not None:
        return
    if await leads.find_open_by_email_or_phone(session, box.org_id, sender, None) is not None:
        return
    owner = await _next_assignee(session, box)
    if owner is None:
        return
    first, _, last = (message.from_name or "").partition(" ")
    who = Principal(box.org_id, "system", box.id, Role.member, frozenset(["*"]), owner)
    await leads.create(session, who, {
        "title": (message.subject or f"Email from {sender}")[:200], "first_name": first[:100] or None,
        "last_name": last[:100] or None, "email": sender, "source": "email", "owner_id": owner, "status": "new",
        "external_ids": []})


async def _next_assignee(session: AsyncSession, box: Mailbox) -> UUID | None:
    """Round-robin among the routing's active, not out-of-office assignees (the mailbox's turn counter, in
    its row); without any, the mailbox's owner, then the first active admin."""
    async def turn() -> int:
        return await session.scalar(  # type: ignore[return-value]
            update(Mailbox).where(Mailbox.org_id == box.org_id, Mailbox.id == box.id)
            .values(round_robin=Mailbox.round_robin + 1, version=Mailbox.version, updated_at=Mailbox.updated_at)
            .returning(Mailbox.round_robin).execution_options(synchronize_session=False))

    candidates = [UUID(str(u)) for u in (box.routing or {}).get("assignees", [])]
    return await assignment.next_assignee(session, box.org_id, candidates, turn, box.owner_id)


def _keep(settings: Settings, org_id: UUID, part: Part) -> dict[str, Any]:
    """An attachment written under the data dir (`files/<org>/<file id>`); -> its metadata."""
    file_id = new_id()
    path = file_path(settings, org_id, file_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(part.data)
    return {"file_id": str(file_id), "filename": part.filename[:255], "content_type": part.content_type,
            "size": len(part.data), "sha256": hashlib.sha256(part.data).hexdigest()}
