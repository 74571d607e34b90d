"""The worker's side of a campaign: recipients are claimed in chunks (FOR UPDATE SKIP LOCKED, with a lease, so
several workers share a campaign without overlap), each message rendered for its contact and sent over one
SMTP connection per chunk at the mailbox's `rate_per_minute`.

Exactly one message per recipient: a recipient is recorded `sent` (committed) after its whole message is
written to the server and before the final `.` that makes the server accept it (`servers.send_recorded`). A
worker killed before that commit leaves a `queued` row whose claim expires and an unfinished message the
server drops; killed once the `.` is written, the message completes. A recorded row is never sent again, and
a row cancelled meanwhile is not recorded, hence not sent. Only a kill in the instant between the commit and
the `.` loses that one message: never a second copy."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import String, bindparam, case, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.domain.campaigns import service
from app.domain.campaigns.models import Campaign, Recipient
from app.domain.errors import CRMError
from app.domain.events import service as events
from app.domain.mail import servers
from app.domain.mail import service as mail
from app.domain.mail.models import Mailbox
from app.domain.sms import sending as sms_sending
from app.domain.sms import service as sms_service
from app.domain.sms.models import SmsGateway
from app.domain.templates import service as templates
from app.logging import log
from app.settings import Settings

CHUNK = 50


class Cancelled(Exception):
    """The recipient is no longer queued (the campaign was cancelled): its message must not complete."""


def _now() -> datetime:
    return datetime.now(UTC)


def public_base(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


async def _claim(session: AsyncSession, org_id: UUID, campaign_id: UUID, lease_seconds: float) -> list[Recipient]:
    now = _now()
    due = (select(Recipient.id).where(
        Recipient.org_id == org_id, Recipient.campaign_id == campaign_id, Recipient.status == "queued",
        (Recipient.claimed_until.is_(None)) | (Recipient.claimed_until < now))
        .order_by(Recipient.id).limit(CHUNK).with_for_update(skip_locked=True))
    return list((await session.scalars(
        update(Recipient).where(Recipient.org_id == org_id, Recipient.id.in_(due.scalar_subquery()))
        .values(claimed_until=now + timedelta(seconds=lease_seconds), attempts=Recipient.attempts + 1)
        .returning(Recipient).execution_options(synchronize_session=False))).all())


async def run(db: Database, settings: Settings, http: httpx.AsyncClient, org_id: UUID, campaign_id: UUID,
              budget_seconds: float) -> tuple[str, list[tuple[UUID, UUID]]]:
    """Send chunks until none is left or the budget is spent. -> (`sent` | `more` | `retry` | `idle`, events)."""
    started = time.monotonic()
    written: list[tuple[UUID, UUID]] = []
    while time.monotonic() - started < budget_seconds:
        async with db.for_org(org_id) as session:
            campaign = await session.scalar(select(Campaign).where(Campaign.org_id == org_id,
                                                                   Campaign.id == campaign_id))
            if campaign is None or campaign.status != "sending":
                return "idle", written
            box: Mailbox | SmsGateway | None
            if campaign.channel == "sms":
                box = await sms_service.gateway(session, org_id)
            else:
                box = await session.scalar(select(Mailbox).where(Mailbox.org_id == org_id,
                                                                 Mailbox.id == campaign.mailbox_id))
            if box is None:
                return "idle", written
            # the lease covers sending the chunk at the channel's rate; a dead worker's chunk is free soon after
            lease = CHUNK * 60.0 / max(box.rate_per_minute, 1) + 2 * settings.mail_timeout_seconds + 5
            claimed = await _claim(session, org_id, campaign_id, lease)
            if not claimed:
                left = await session.scalar(select(Recipient.id).where(
                    Recipient.org_id == org_id, Recipient.campaign_id == campaign_id,
                    Recipient.status == "queued").limit(1))
                if left is None:
                    await _finish(session, campaign)
                    written += events.committed_event_ids(session)
                    return "sent", written
                return "waiting", written  # claimed by another worker (or a dead one: its lease expires)
        if isinstance(box, SmsGateway):
            outcome = await _text_chunk(db, settings, http, campaign, box, claimed)
        elif box.deleted_at is not None:
            await _fail_all(db, org_id, claimed, "the campaign's mailbox was deleted")
            continue
        else:
            outcome = await _send_chunk(db, settings, campaign, box, claimed)
        if outcome == "retry":
            return "retry", written
    return "more", written


async def _finish(session: AsyncSession, campaign: Campaign) -> None:
    before = service.CAMPAIGN.dump(campaign)
    campaign.status, campaign.finished_at = "sent", _now()
    updated = await service.CAMPAIGN.updated(session, None, campaign, before)
    await events.emit(session, None, "campaign.sent", "campaign", campaign.id, campaign.org_id,
                      {"object": (await service.dump_campaigns(session, [updated]))[0]}, updated.version)


async def _fail_all(db: Database, org_id: UUID, rows: list[Recipient], reason: str) -> None:
    async with db.for_org(org_id) as session:
        await session.execute(update(Recipient).where(
            Recipient.org_id == org_id, Recipient.id.in_([r.id for r in rows]), Recipient.status == "queued")
            .values(status="failed", reason=reason[:300], claimed_until=None))


def _part(text: str, subtype: str) -> MIMEText:
    return MIMEText(text, subtype, "us-ascii" if text.isascii() else "utf-8")


def _message(box: Mailbox, recipient: Recipient, rendered: dict[str, Any], unsubscribe_url: str) -> Message:
    """Built with the compat32 MIME classes: the header objects of `policy.default` cost a campaign a quarter
    of its time per message, and its headers need none of their parsing (one address each, our own ids)."""
    text = _part(rendered["text"] or "", "plain")
    message: Message = text
    if rendered["html"]:
        message = MIMEMultipart("alternative")
        message.attach(text)
        message.attach(_part(rendered["html"], "html"))
    subject = rendered["subject"] or ""
    message["From"] = box.email
    message["To"] = recipient.address or ""
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
    message["Date"] = format_datetime(_now())
    message["Message-ID"] = f"<{recipient.id}@{box.email.rpartition('@')[2]}>"
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    return message


async def _send_chunk(db: Database, settings: Settings, campaign: Campaign, box: Mailbox,
                      claimed: list[Recipient]) -> str:
    """-> `done`, or `retry` when the SMTP server failed for the whole chunk (the rest stays queued)."""
    org_id, pause = campaign.org_id, 60.0 / max(box.rate_per_minute, 1)
    prepared = []
    urls = [f"{public_base(settings)}/v1/public/unsubscribe/{service.unsubscribe_token(settings, org_id, r.id)}"
            for r in claimed]
    async with db.for_org(org_id) as session:
        rendered = await templates.render_many(session, org_id, campaign.template_id, campaign.created_by,
                                               [(r.contact_id, url) for r, url in zip(claimed, urls, strict=True)])
    for r, url, out in zip(claimed, urls, rendered, strict=True):
        if isinstance(out, CRMError):
            prepared.append((r, None, f"cannot render: {out}"))
        else:
            prepared.append((r, _message(box, r, out, url), None))
    try:
        async with servers.smtp_session(box.smtp, await mail.credentials(settings, box, "smtp", db.for_org),
                                        settings.mail_timeout_seconds, settings.allow_private_networks) as client:
            for r, message, problem in prepared:
                if message is None:
                    await _record(db, org_id, r.id, "failed", problem)
                    continue
                began = time.monotonic()
                try:
                    await servers.send_recorded(client, message, r.address or "",
                                                lambda r=r, m=message: _record(db, org_id, r.id, "sent", None,
                                                                               m["Message-ID"]),
                                                settings.mail_timeout_seconds)
                except Cancelled:  # the campaign was cancelled: drop the unfinished message with the connection
                    client.close()
                    return "done"
                except servers.MailServerError as exc:
                    if exc.permanent:
                        await _record(db, org_id, r.id, "failed", f"{exc.kind}: {exc.detail}", force=True)
                        continue
                    raise
                await asyncio.sleep(max(0.0, pause - (time.monotonic() - began)))
    except servers.MailServerError as exc:
        log.warning("campaign_chunk_failed", campaign_id=str(campaign.id), error=exc.kind, detail=exc.detail[:200])
        async with db.for_org(org_id) as session:  # what was not recorded goes back to the queue
            await session.execute(update(Recipient).where(
                Recipient.org_id == org_id, Recipient.id.in_([r.id for r in claimed]), Recipient.status == "queued")
                .values(claimed_until=None, reason=f"retrying: {exc.kind}: {exc.detail}"[:300]))
        return "retry"
    return "done"


async def _text_chunk(db: Database, settings: Settings, http: httpx.AsyncClient, campaign: Campaign,
                      gateway: SmsGateway, claimed: list[Recipient]) -> str:
    """SMS: each text is marked handed (committed) before its request; a claimed row that already was handed
    belongs to a worker that died waiting for the gateway, and fails rather than risk a second text. A gateway
    that is down (nothing taken) sends the rest of the chunk back to the queue: `retry`."""
    org_id, pause = campaign.org_id, 60.0 / max(gateway.rate_per_minute, 1)
    urls = [f"{public_base(settings)}/v1/public/unsubscribe/{service.unsubscribe_token(settings, org_id, r.id)}"
            for r in claimed]
    async with db.for_org(org_id) as session:
        rendered = await templates.render_many(session, org_id, campaign.template_id, campaign.created_by,
                                               [(r.contact_id, url) for r, url in zip(claimed, urls, strict=True)])
    for r, out in zip(claimed, rendered, strict=True):
        if isinstance(out, CRMError) or not (out["text"] or "").strip():
            await _record(db, org_id, r.id, "failed", f"cannot render: {out}" if isinstance(out, CRMError)
                          else "the template renders an empty text")
            continue
        if r.handed_at is not None:
            await _record(db, org_id, r.id, "failed", "interrupted while the gateway had it; not sent again so "
                                                      "that nobody gets the text twice")
            continue
        if not await _hand(db, org_id, r.id):
            return "done"  # cancelled meanwhile
        began = time.monotonic()
        handed = await sms_sending.hand_over(settings, http, gateway, r.id, r.address or "", (out["text"] or "")[:1600])
        if handed.outcome == "temporary":
            log.warning("campaign_chunk_failed", campaign_id=str(campaign.id), error="gateway", detail=handed.detail)
            async with db.for_org(org_id) as session:  # nothing was taken: this one and the rest go back
                await session.execute(update(Recipient).where(
                    Recipient.org_id == org_id, Recipient.id.in_([c.id for c in claimed]),
                    Recipient.status == "queued").values(claimed_until=None, reason=f"retrying: {handed.detail}"[:300])
                    .values(handed_at=case((Recipient.id == r.id, None), else_=Recipient.handed_at)))
            return "retry"
        if handed.outcome == "sent":
            await _record(db, org_id, r.id, "sent", None, force=True)
        else:
            await _record(db, org_id, r.id, "failed", handed.detail, force=True)
        await asyncio.sleep(max(0.0, pause - (time.monotonic() - began)))
    return "done"


async def _hand(db: Database, org_id: UUID, recipient_id: UUID) -> bool:
    """Mark a queued recipient's text as handed to the gateway, committed; False if it is no longer queued."""
    async with db.for_org(org_id) as session:
        result = await session.execute(update(Recipient).where(
            Recipient.org_id == org_id, Recipient.id == recipient_id, Recipient.status == "queued")
            .values(handed_at=_now()))
    return bool(result.rowcount)


_RECORD = text("SELECT record_recipient(:org_id, :id, :status, :reason, :message_id, :allowed)").bindparams(
    bindparam("org_id", type_=PGUUID(as_uuid=True)), bindparam("id", type_=PGUUID(as_uuid=True)),
    bindparam("allowed", type_=ARRAY(String)))


async def _record(db: Database, org_id: UUID, recipient_id: UUID, status: str, reason: str | None,
                  message_id: str | None = None, force: bool = False) -> None:
    """The recipient's outcome, committed, in one round trip (`record_recipient`, migration 0027). `sent` only
    for a row still queued (not cancelled meanwhile); `force`: an outcome after the row was recorded (a
    refusal of the end of the data) or handed to a gateway while it was cancelled."""
    allowed = ["queued", "sent", "skipped"] if force else ["queued"]
    changed = await db.call(_RECORD, {"org_id": org_id, "id": recipient_id, "status": status,
                                      "reason": reason and reason[:300], "message_id": message_id,
                                      "allowed": allowed})
    if changed == 0 and status == "sent":
        raise Cancelled()


async def due(session: AsyncSession) -> tuple[list[Campaign], list[tuple[UUID, UUID]]]:
    """Scheduled campaigns whose time came (to start), and sending ones (a worker may have died)."""
    now = _now()
    scheduled = list((await session.scalars(select(Campaign).where(
        Campaign.status == "scheduled", Campaign.send_at <= now, Campaign.deleted_at.is_(None))
        .with_for_update(skip_locked=True).limit(100))).all())
    sending = [(r.org_id, r.id) for r in await session.execute(select(Campaign.org_id, Campaign.id).where(
        Campaign.status == "sending", Campaign.deleted_at.is_(None)).limit(1000))]
    return scheduled, sending
