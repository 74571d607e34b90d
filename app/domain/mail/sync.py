"""The worker's side of mail: syncing a mailbox over IMAP and sending queued email over SMTP.

Sync: a mailbox is leased (one worker at a time, whatever the number of replicas), then INBOX and the Sent
folder are read by UID above the last one stored for the folder's UIDVALIDITY (the first time, or after the
UIDVALIDITY changed, mail of the last `sync_since_days`). Each batch of messages is stored with the folder's
new position in one transaction, while the next chunk is being fetched: a worker that dies mid-sync repeats at
most one batch, and the unique Message-ID per mailbox keeps repeats (and the Sent copy of mail sent from here)
from becoming second rows. What a batch's messages become (rows, links, leads) is the `store` given
(`app.domain.flows.mail_intake`). A server that fails is retried with growing back-off; the mailbox shows the
error until a sync succeeds.

Sending: a queued email is leased, handed to the mailbox's SMTP server, then recorded `sent` or, for a
refusal or after the last retry, `failed` (`CRM_MAIL_RETRY_SCHEDULE`). A worker dying between the SMTP
server's answer and the record sends it again after the lease: at least once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.domain import outgoing
from app.domain.events import service as events
from app.domain.mail import servers, service
from app.domain.mail.models import Email, Mailbox, MailFolder
from app.logging import log
from app.settings import Settings

MAX_PER_RUN = 1000  # messages per folder and run; a larger backlog goes on in the next run, at once
STORE_BATCH = 250  # messages stored per transaction (fetched servers.FETCH_CHUNK at a time)...
STORE_BATCH_BYTES = 16 * 1024 * 1024  # ...or fewer, once their raw size reaches this
BACKOFF_CAP_SECONDS = 3600


def _now() -> datetime:
    return datetime.now(UTC)


# --- sync ----------------------------------------------------------------------------------------------


async def _claim_mailbox(session: AsyncSession, org_id: UUID, mailbox_id: UUID, lease_seconds: float) -> Mailbox | None:
    now = _now()
    return (await session.execute(
        update(Mailbox).where(Mailbox.org_id == org_id, Mailbox.id == mailbox_id, Mailbox.deleted_at.is_(None),
                              or_(Mailbox.leased_until.is_(None), Mailbox.leased_until < now))
        .values(leased_until=now + timedelta(seconds=lease_seconds))
        .returning(Mailbox).execution_options(synchronize_session=False))).scalar_one_or_none()


Store = Callable[[AsyncSession, Settings, Mailbox, str, list[tuple[int, bytes]]], Awaitable[None]]
"""Takes in one chunk of a folder's raw messages (uid, bytes), in the chunk's transaction: parsing, linking,
routing and the rows themselves (`app.domain.flows.mail_intake.store`)."""


async def sync_mailbox(db: Database, settings: Settings, org_id: UUID, mailbox_id: UUID, lease_seconds: float,
                       store: Store) -> tuple[str, list[tuple[UUID, UUID]]]:
    """-> (outcome, the events written): `skipped` (another worker holds it, or it is gone), `synced`,
    `more` (a backlog remains: run again), or `failed: <kind>`."""
    async with db.for_org(org_id) as session:
        box = await _claim_mailbox(session, org_id, mailbox_id, lease_seconds)
    if box is None:
        return "skipped", []
    written: list[tuple[UUID, UUID]] = []
    more = False
    try:
        creds = await service.credentials(settings, box, "imap", db.for_org)
        assert creds is not None
        seconds = settings.mail_timeout_seconds
        async with servers.imap_session(box.imap, creds, seconds, settings.allow_private_networks) as client:
            for role, name in (await servers.folders(client, seconds)).items():
                folder_more, folder_events = await _sync_folder(db, settings, box, client, role, name, store)
                more, written = more or folder_more, written + folder_events
    except servers.MailServerError as exc:
        async with db.for_org(org_id) as session:
            failures = box.failures + 1
            delay = min(settings.mail_sync_seconds * 2 ** failures, BACKOFF_CAP_SECONDS)
            # Refused credentials stay refused: no more syncs until the mailbox is updated or a sync is asked for.
            next_sync_at = None if isinstance(exc, servers.CredentialsRefused) else _now() + timedelta(seconds=delay)
            await session.execute(update(Mailbox).where(Mailbox.org_id == org_id, Mailbox.id == mailbox_id).values(
                last_error=f"{exc.kind}: {exc.detail}"[:500], last_error_at=_now(), failures=failures,
                next_sync_at=next_sync_at, leased_until=None))
        log.warning("mail_sync_failed", mailbox_id=str(mailbox_id), error=exc.kind, detail=exc.detail[:200])
        return f"failed: {exc.kind}", written
    except BaseException:
        async with db.for_org(org_id) as session:  # let another run take it soon
            await session.execute(update(Mailbox).where(Mailbox.org_id == org_id, Mailbox.id == mailbox_id)
                                  .values(leased_until=None))
        raise
    async with db.for_org(org_id) as session:
        await session.execute(update(Mailbox).where(Mailbox.org_id == org_id, Mailbox.id == mailbox_id).values(
            last_synced_at=_now(), last_error=None, last_error_at=None, failures=0, leased_until=None,
            next_sync_at=_now() if more else _now() + timedelta(seconds=settings.mail_sync_seconds)))
    return ("more" if more else "synced"), written


async def _sync_folder(db: Database, settings: Settings, box: Mailbox, client: Any, role: str,
                       name: str, store: Store) -> tuple[bool, list[tuple[UUID, UUID]]]:
    seconds = settings.mail_timeout_seconds
    uidvalidity = await servers.select(client, name, seconds)
    async with db.for_org(box.org_id) as session:
        folder = await session.scalar(select(MailFolder).where(
            MailFolder.org_id == box.org_id, MailFolder.mailbox_id == box.id, MailFolder.role == role))
        last_uid = folder.last_uid if folder is not None and folder.uidvalidity == uidvalidity else 0
    since = (_now() - timedelta(days=box.sync_since_days)).strftime("%d-%b-%Y")
    wanted = await servers.uids(client, last_uid, since, seconds)
    more = len(wanted) > MAX_PER_RUN
    written: list[tuple[UUID, UUID]] = []
    chunks = [wanted[i:i + servers.FETCH_CHUNK] for i in range(0, min(len(wanted), MAX_PER_RUN), servers.FETCH_CHUNK)]
    if not chunks:
        return more, written
    # The next chunk is fetched while a batch is stored: the IMAP server and the database work at once.
    pending: asyncio.Future[list[tuple[int, bytes]]] | None = asyncio.ensure_future(
        servers.fetch(client, chunks[0], seconds))
    batch: list[tuple[int, bytes]] = []
    size = 0
    try:
        for k, chunk in enumerate(chunks):
            assert pending is not None
            messages = await pending
            pending = asyncio.ensure_future(servers.fetch(client, chunks[k + 1], seconds)) \
                if k + 1 < len(chunks) else None
            batch += messages
            size += sum(len(raw) for _, raw in messages)
            if pending is not None and len(batch) < STORE_BATCH and size < STORE_BATCH_BYTES:
                continue
            async with db.for_org(box.org_id) as session:
                await store(session, settings, box, role, batch)
                await session.execute(insert(MailFolder).values(
                    org_id=box.org_id, mailbox_id=box.id, role=role, name=name, uidvalidity=uidvalidity,
                    last_uid=chunk[-1]).on_conflict_do_update(
                    index_elements=["org_id", "mailbox_id", "role"],
                    set_={"name": name, "uidvalidity": uidvalidity, "last_uid": chunk[-1]}))
                written += events.committed_event_ids(session)  # dispatched once the position is committed
            batch, size = [], 0
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
    return more, written


def file_path(settings: Settings, org_id: UUID, file_id: UUID) -> Path:
    return settings.data_dir / "files" / str(org_id) / str(file_id)


async def due_mailboxes(session: AsyncSession, limit: int = 500) -> list[tuple[UUID, UUID]]:
    now = _now()
    rows = await session.execute(select(Mailbox.org_id, Mailbox.id).where(
        Mailbox.deleted_at.is_(None), Mailbox.next_sync_at <= now,
        or_(Mailbox.leased_until.is_(None), Mailbox.leased_until < now)).order_by(Mailbox.next_sync_at).limit(limit))
    return [(r.org_id, r.id) for r in rows]


# --- sending -------------------------------------------------------------------------------------------


async def due_emails(session: AsyncSession, limit: int = 1000) -> list[tuple[UUID, UUID]]:
    return await outgoing.due(session, Email, limit)


def _message(email: Email, box: Mailbox) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((email.from_name or "", box.email))
    message["To"] = ", ".join(email.to_addresses)
    if email.cc_addresses:
        message["Cc"] = ", ".join(email.cc_addresses)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(_now())
    message["Message-ID"] = email.message_id
    if email.in_reply_to:
        message["In-Reply-To"] = email.in_reply_to
    if email.references:
        message["References"] = " ".join(email.references)
    if email.auto_reply:  # RFC 3834: other responders do not answer it
        message["Auto-Submitted"] = "auto-replied"
    message.set_content(email.body_text or "")
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    return message


async def send_email(db: Database, settings: Settings, org_id: UUID, email_id: UUID,
                     lease_seconds: float) -> tuple[str, list[tuple[UUID, UUID]]]:
    """-> (outcome, events written): `skipped`, `sent`, `retry in <s>` or `failed` (`app.domain.outgoing`)."""
    email = await outgoing.lease(db, Email, org_id, email_id, lease_seconds)
    if email is None:
        return "skipped", []
    async with db.for_org(org_id) as session:
        box = await session.scalar(select(Mailbox).where(Mailbox.org_id == org_id, Mailbox.id == email.mailbox_id))
    if box is None:
        return "skipped", []
    outcome: str
    values: dict[str, Any]
    try:
        creds = await service.credentials(settings, box, "smtp", db.for_org)
        answer = await servers.send(box.smtp, creds, _message(email, box), settings.mail_timeout_seconds,
                                    settings.allow_private_networks)
        outcome, values = "sent", {"status": "sent", "sent_at": _now(), "error": None, "next_attempt_at": None}
        log.info("email_sent", email_id=str(email_id), answer=answer[:200])
    except servers.MailServerError as exc:
        outcome, values = outgoing.not_sent(email.attempts + 1, settings.mail_retry_schedule, exc.permanent,
                                            f"{exc.kind}: {exc.detail}")
        log.warning("email_not_sent", email_id=str(email_id), error=exc.kind, detail=exc.detail[:200],
                    outcome=outcome)
    return outcome, await outgoing.record(db, Email, "email", org_id, email_id, outcome, values,
                                          service.dump_email)
