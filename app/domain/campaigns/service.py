"""Segments and campaigns: CRUD, the count of a segment, and the start of a sending, which writes one recipient
row per segment member in one statement (`skipped` with its reason for whoever may not be mailed).
Sending itself is the worker's (`app.domain.campaigns.sending`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds, listing, metrics
from app.domain.auth.principal import Principal
from app.domain.campaigns.models import Campaign, Recipient, Segment
from app.domain.campaigns.schemas import CampaignCreate, CampaignUpdate, SegmentCreate, SegmentFilter, SegmentUpdate
from app.domain.concurrency import check_version
from app.domain.contacts.models import Contact
from app.domain.errors import Conflict, NotFound, ValidationFailed
from app.domain.events import service as events
from app.domain.leads.models import Lead
from app.domain.mail.models import Email
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, org_settings, require_ref
from app.domain.sms.models import SmsGateway
from app.settings import Settings

SEGMENT = Kind.of(kinds.SEGMENT)
CAMPAIGN = Kind.of(kinds.CAMPAIGN)
SEGMENT_SORTS = {"created_at": Segment.created_at, "name": Segment.name}
CAMPAIGN_SORTS = {"created_at": Campaign.created_at, "name": Campaign.name}
RECIPIENT_SORTS = {"id": Recipient.id}
JOBS = "campaign_jobs"


def _now() -> datetime:
    return datetime.now(UTC)


# --- segments ------------------------------------------------------------------------------------------


async def create_segment(session: AsyncSession, who: Principal, body: SegmentCreate) -> Segment:
    segment = Segment(org_id=who.org_id, name=body.name, object=body.object,
                      filter=body.filter.model_dump(mode="json", exclude_none=True, exclude_defaults=True))
    return await SEGMENT.created(session, who, segment)


async def update_segment(session: AsyncSession, who: Principal, segment_id: UUID, patch: SegmentUpdate,
                         expected_version: int | None) -> Segment:
    segment = await SEGMENT.get(session, who, segment_id, for_update=True)
    check_version(segment.version, expected_version)
    before = SEGMENT.dump(segment)
    if patch.name is not None:
        segment.name = patch.name
    if patch.filter is not None:
        SegmentCreate(name=segment.name, object=segment.object, filter=patch.filter)  # fits the object
        segment.filter = patch.filter.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    return await SEGMENT.updated(session, who, segment, before)


async def members(session: AsyncSession, who: Principal | UUID, segment: Segment) -> Any:
    """The segment's records `who` may read, as a SELECT (the list endpoint's filters, the same rule)."""
    f = SegmentFilter.model_validate(segment.filter)
    kind = Kind.of(kinds.named(segment.object))
    model: Any = Contact if segment.object == "contact" else Lead
    where = []
    if f.source is not None:
        where.append(model.source == f.source)
    if f.tags:
        where.append(Contact.tags.contains(f.tags))
    if f.company_id is not None:
        where.append(Contact.company_id == f.company_id)
    if f.status is not None:
        where.append(Lead.status == f.status)
    where += metrics.filters(model, f.won_deals_count_gte, f.lifetime_value_gte, f.last_won_before,
                             f.last_activity_before)
    query = listing.ListQuery(q=f.q, owner_id=f.owner_id, created_after=f.created_after,
                              created_before=f.created_before, updated_since=f.updated_since, cf=f.cf)
    return await listing.filtered(session, kind, who, query, where)


async def count(session: AsyncSession, who: Principal, segment_id: UUID) -> int:
    segment = await SEGMENT.get(session, who, segment_id)
    stmt = await members(session, who, segment)
    return int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


# --- campaigns -----------------------------------------------------------------------------------------


async def _check_refs(session: AsyncSession, who: Principal, channel: str, values: dict[str, Any]) -> None:
    if values.get("template_id") is not None:
        template = await require_ref(session, Kind.of(kinds.TEMPLATE), who, values["template_id"], "template_id")
        if template.channel != channel:
            raise ValidationFailed(f"template_id: an {channel} campaign needs an {channel} template",
                                   loc=("body", "template_id"))
    if values.get("segment_id") is not None:
        segment = await require_ref(session, SEGMENT, who, values["segment_id"], "segment_id")
        if segment.object != "contact":
            raise ValidationFailed("segment_id: campaigns go to contacts (a lead segment: convert them first)",
                                   loc=("body", "segment_id"))
    if values.get("mailbox_id") is not None:
        if channel == "sms":
            raise ValidationFailed("mailbox_id: an sms campaign goes through the SMS gateway",
                                   loc=("body", "mailbox_id"))
        await require_ref(session, Kind.of(kinds.MAILBOX), who, values["mailbox_id"], "mailbox_id")
    elif channel == "email" and "mailbox_id" in values:
        raise ValidationFailed("mailbox_id: an email campaign needs a mailbox", loc=("body", "mailbox_id"))


async def create_campaign(session: AsyncSession, who: Principal, body: CampaignCreate) -> Campaign:
    values = body.model_dump()
    await _check_refs(session, who, body.channel, values)
    campaign = Campaign(org_id=who.org_id, status="draft", created_by=who.user_id, **values)
    return await CAMPAIGN.created(session, who, campaign)


async def update_campaign(session: AsyncSession, who: Principal, campaign_id: UUID, patch: CampaignUpdate,
                          expected_version: int | None) -> Campaign:
    campaign = await CAMPAIGN.get(session, who, campaign_id, for_update=True)
    check_version(campaign.version, expected_version)
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"A campaign that is {campaign.status} cannot be changed")
    before = CAMPAIGN.dump(campaign)
    values = patch.model_dump(exclude_unset=True)
    await _check_refs(session, who, campaign.channel, values)
    for key, value in values.items():
        if value is not None or key == "send_at":
            setattr(campaign, key, value)
    return await CAMPAIGN.updated(session, who, campaign, before)


async def send(session: AsyncSession, who: Principal, campaign_id: UUID) -> Campaign:
    """Schedule it (a future `send_at`) or start it now: recipients written, the worker asked to send."""
    campaign = await CAMPAIGN.get(session, who, campaign_id, for_update=True)
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"The campaign is {campaign.status}; only a draft or scheduled one can be sent")
    if campaign.channel == "sms" and await session.scalar(
            select(SmsGateway.org_id).where(SmsGateway.org_id == campaign.org_id)) is None:
        raise Conflict("SMS is not configured for this organisation: an admin sets PUT /v1/settings/sms first")
    before = CAMPAIGN.dump(campaign)
    if campaign.send_at is not None and campaign.send_at > _now():
        campaign.status = "scheduled"
        return await CAMPAIGN.updated(session, who, campaign, before)
    await start(session, campaign)
    return await CAMPAIGN.updated(session, who, campaign, before)


async def start(session: AsyncSession, campaign: Campaign) -> int:
    """One recipient row per segment member, in one statement: `queued`, or `skipped` with the reason (no
    address or phone, unsubscribed from the channel, over the org's weekly cap of marketing messages, both
    channels counted). The campaign becomes `sending`."""
    segment = await SEGMENT.get(session, campaign.org_id, campaign.segment_id)
    org = await org_settings(session, campaign.org_id)
    people = (await members(session, campaign.org_id, segment)).subquery()
    week_ago = _now() - timedelta(days=7)
    recent = (select(func.count()).select_from(Recipient).where(
        Recipient.org_id == campaign.org_id, Recipient.contact_id == people.c.id, Recipient.status == "sent",
        Recipient.sent_at > week_ago).scalar_subquery())
    cap = org.max_marketing_per_week
    address = people.c.email if campaign.channel == "email" else people.c.phone
    reason = case(
        (address.is_(None), literal("no email address" if campaign.channel == "email" else "no phone number")),
        (people.c.consent[campaign.channel].astext == "unsubscribed", literal("unsubscribed")),
        *([(recent >= cap, literal(f"over the weekly cap ({cap})"))] if cap else []),
        else_=literal(None))
    rows = select(people.c.org_id, func.gen_random_uuid(), literal(campaign.id), people.c.id, address,
                  case((reason.is_(None), literal("queued")), else_=literal("skipped")), reason)
    result = await session.execute(
        insert(Recipient).from_select(["org_id", "id", "campaign_id", "contact_id", "address", "status", "reason"],
                                      rows).on_conflict_do_nothing(index_elements=["org_id", "campaign_id",
                                                                                   "contact_id"]))
    campaign.status, campaign.started_at = "sending", _now()
    await session.flush()
    await events.emit(session, None, "campaign.started", "campaign", campaign.id, campaign.org_id,
                      {"object": (await dump_campaigns(session, [campaign]))[0]}, campaign.version)
    send_after_commit(session, campaign)
    return int(result.rowcount or 0)


async def transition(session: AsyncSession, who: Principal, campaign_id: UUID, action: str) -> Campaign:
    """pause (sending → paused), resume (paused → sending), cancel (anything unfinished → cancelled; queued
    recipients are skipped)."""
    campaign = await CAMPAIGN.get(session, who, campaign_id, for_update=True)
    allowed = {"pause": ("sending",), "resume": ("paused",), "cancel": ("draft", "scheduled", "sending", "paused")}
    if campaign.status not in allowed[action]:
        raise Conflict(f"A campaign that is {campaign.status} cannot {action}")
    before = CAMPAIGN.dump(campaign)
    if action == "pause":
        campaign.status = "paused"
    elif action == "resume":
        campaign.status = "sending"
        send_after_commit(session, campaign)
    else:
        campaign.status, campaign.finished_at = "cancelled", _now()
        await session.execute(update(Recipient).where(
            Recipient.org_id == campaign.org_id, Recipient.campaign_id == campaign.id, Recipient.status == "queued")
            .values(status="skipped", reason="cancelled"))
    updated = await CAMPAIGN.updated(session, who, campaign, before)
    if action == "cancel":
        await events.emit(session, who, "campaign.cancelled", "campaign", campaign.id, campaign.org_id,
                          {"object": (await dump_campaigns(session, [updated]))[0]}, updated.version)
    return updated


def send_after_commit(session: AsyncSession, campaign: Campaign) -> None:
    session.info.setdefault(JOBS, []).append((campaign.org_id, campaign.id))


def committed_campaign_ids(session: AsyncSession) -> list[tuple[UUID, UUID]]:
    return session.info.pop(JOBS, [])


async def stats(session: AsyncSession, org_id: UUID, campaign_ids: list[UUID]) -> dict[UUID, dict[str, int]]:
    """`{recipients, queued, sent, failed, skipped, unsubscribed, replied}` per campaign, in one statement;
    `replied`: recipients whose message an inbound email answers (`In-Reply-To`)."""
    out = {c: {"recipients": 0, "queued": 0, "sent": 0, "failed": 0, "skipped": 0, "unsubscribed": 0, "replied": 0}
           for c in campaign_ids}
    if not campaign_ids:
        return out
    replied = select(Email.id).where(Email.org_id == org_id, Email.in_reply_to == Recipient.message_id,
                                     Email.direction == "inbound").exists()
    rows = await session.execute(
        select(Recipient.campaign_id, Recipient.status, func.count(),
               func.count().filter(Recipient.unsubscribed_at.is_not(None)),
               func.count().filter(Recipient.message_id.is_not(None) & replied))
        .where(Recipient.org_id == org_id, Recipient.campaign_id.in_(campaign_ids))
        .group_by(Recipient.campaign_id, Recipient.status))
    for campaign_id, status, n, unsubscribed, answered in rows:
        s = out[campaign_id]
        s[status] += n
        s["recipients"] += n
        s["unsubscribed"] += unsubscribed
        s["replied"] += answered
    return out


async def dump_campaigns(session: AsyncSession, campaigns: list[Campaign]) -> list[dict[str, Any]]:
    if not campaigns:
        return []
    counted = await stats(session, campaigns[0].org_id, [c.id for c in campaigns])
    for c in campaigns:
        c.stats = counted[c.id]  # type: ignore[attr-defined]
    return [CAMPAIGN.dump(c) for c in campaigns]


async def recipients(session: AsyncSession, who: Principal, campaign_id: UUID, page: PageRequest,
                     status: str | None) -> Page[Recipient]:
    await CAMPAIGN.get(session, who, campaign_id)
    stmt = select(Recipient).where(Recipient.org_id == who.org_id, Recipient.campaign_id == campaign_id)
    if status is not None:
        stmt = stmt.where(Recipient.status == status)
    return await keyset_page(session, stmt, PageRequest(page.limit, page.cursor, page.sort or "id"), RECIPIENT_SORTS,
                             Recipient.id)


async def list_campaigns(session: AsyncSession, who: Principal, page: PageRequest) -> Page[Campaign]:
    return await keyset_page(session, CAMPAIGN.readable(who), page, CAMPAIGN_SORTS, Campaign.id)


async def list_segments(session: AsyncSession, who: Principal, page: PageRequest) -> Page[Segment]:
    return await keyset_page(session, SEGMENT.readable(who), page, SEGMENT_SORTS, Segment.id)


# --- unsubscribe ---------------------------------------------------------------------------------------


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"crm unsubscribe v1:" + settings.jwt_key().encode()).digest()


def unsubscribe_token(settings: Settings, org_id: UUID, recipient_id: UUID) -> str:
    """One per recipient, signed: it names the org and the recipient row; nothing else is needed to act on it."""
    body = org_id.bytes + recipient_id.bytes
    mac = hmac.new(_key(settings), body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def read_token(settings: Settings, token: str) -> tuple[UUID, UUID]:
    """(org, recipient); NotFound for anything not signed by this server."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise NotFound("No such unsubscribe link") from None
    if len(raw) != 48:
        raise NotFound("No such unsubscribe link")
    body, mac = raw[:32], raw[32:]
    if not hmac.compare_digest(mac, hmac.new(_key(settings), body, hashlib.sha256).digest()[:16]):
        raise NotFound("No such unsubscribe link")
    return UUID(bytes=body[:16]), UUID(bytes=body[16:])


async def unsubscribe(session: AsyncSession, org_id: UUID, recipient_id: UUID) -> Contact:
    """The contact's consent for the campaign's channel (`consent.email`, or `consent.sms` for a text's link)
    becomes `unsubscribed` (`contact.updated`, `contact.unsubscribed`); the
    recipient row remembers it for the campaign's stats. Repeating it changes nothing."""
    from app.domain.contacts.service import CONTACT

    recipient = await session.scalar(select(Recipient).where(Recipient.org_id == org_id,
                                                             Recipient.id == recipient_id).with_for_update())
    if recipient is None:
        raise NotFound("No such unsubscribe link")
    channel = await session.scalar(select(Campaign.channel).where(Campaign.org_id == org_id,
                                                                  Campaign.id == recipient.campaign_id))
    contact = await CONTACT.get(session, org_id, recipient.contact_id, include_deleted=True, for_update=True)
    if recipient.unsubscribed_at is None:
        recipient.unsubscribed_at = _now()
    if (contact.consent or {}).get(channel) != "unsubscribed":
        before = CONTACT.dump(contact)
        contact.consent = {**(contact.consent or {}), channel: "unsubscribed"}
        await CONTACT.updated(session, None, contact, before)
        await events.emit(session, None, "contact.unsubscribed", "contact", contact.id, org_id,
                          {"object": CONTACT.dump(contact), "channel": channel,
                           "campaign_id": str(recipient.campaign_id)}, contact.version)
    await session.flush()
    return contact
