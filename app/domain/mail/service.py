"""Mailboxes (admin CRUD; members add their own personal one), the emails list, and `POST /v1/emails`: mail to
send is written `queued` and sent by a worker (`app.domain.mail.sync`)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import kinds
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.contacts.models import Contact
from app.domain.deals.models import Deal
from app.domain.errors import Forbidden, NotFound, ValidationFailed
from app.domain.leads.models import Lead
from app.domain.mail import oauth, servers
from app.domain.mail.models import Email, Mailbox
from app.domain.mail.schemas import EmailSend, MailboxCreate, MailboxUpdate
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, require_ref, require_user
from app.domain.sealing import Unsealable, seal, unseal
from app.ids import new_id
from app.settings import Settings

MAILBOX = Kind.of(kinds.MAILBOX)
EMAIL = Kind.of(kinds.EMAIL)
MAILBOX_SORTS = {"created_at": Mailbox.created_at}
EMAIL_SORTS = {"sent_at": Email.sent_at, "created_at": Email.created_at}
JOBS = "mail_jobs"


def _now() -> datetime:
    return datetime.now(UTC)


def is_admin(who: Principal) -> bool:
    return who.role.at_least(Role.admin)


def _may_hold(who: Principal, shared: bool, owner_id: UUID | None) -> None:
    """Admins manage every mailbox; a member only their own, personal (unshared) one."""
    if is_admin(who):
        return
    if shared or owner_id != who.user_id:
        raise Forbidden("Members may only add and change their own personal (unshared) mailbox")


def _secrets(body: MailboxCreate | MailboxUpdate, kept: dict[str, Any]) -> dict[str, Any]:
    out = dict(kept)
    if body.imap is not None and body.imap.password is not None:
        out["imap_password"] = body.imap.password
    if body.smtp is not None and body.smtp.password is not None:
        out["smtp_password"] = body.smtp.password
    if body.oauth is not None:  # a new grant: the old one's access token is not used again
        out.update(oauth_client_secret=body.oauth.client_secret, oauth_refresh_token=body.oauth.refresh_token)
        out.pop("oauth_access_token", None)
        out.pop("oauth_expires_at", None)
    return out


async def create_mailbox(session: AsyncSession, settings: Settings, who: Principal, body: MailboxCreate) -> Mailbox:
    owner_id = body.owner_id or who.user_id
    _may_hold(who, body.shared, owner_id)
    if owner_id is not None:
        await require_user(session, who.org_id, owner_id, "owner_id")
    for assignee in body.routing.assignees:
        await require_user(session, who.org_id, assignee, "routing.assignees", active=False)
    box = Mailbox(
        org_id=who.org_id, id=new_id(), email=body.email, shared=body.shared, private=body.private,
        owner_id=owner_id, auth=body.auth, imap=body.imap.model_dump(exclude={"password"}),
        smtp=body.smtp.model_dump(exclude={"password"}),
        oauth=body.oauth.model_dump(include={"provider", "client_id"}) if body.oauth else None,
        sealed_secrets=seal(settings, _secrets(body, {})), sync_since_days=body.sync_since_days,
        rate_per_minute=body.rate_per_minute, routing=body.routing.model_dump(mode="json"), next_sync_at=_now())
    await MAILBOX.created(session, who, box)
    sync_after_commit(session, box)
    return box


async def get_mailbox(session: AsyncSession, who: Principal, mailbox_id: UUID, for_update: bool = False) -> Mailbox:
    """Admins read every mailbox; others their own (another's is 404, as if it were not there)."""
    box = await MAILBOX.get(session, who, mailbox_id, for_update=for_update)
    if not is_admin(who) and box.owner_id != who.user_id:
        raise NotFound("Mailbox not found")
    return box


def _mailboxes_of(who: Principal) -> ColumnElement[bool]:
    rule = kinds.MAILBOX.readable(who)
    return rule if is_admin(who) else rule & (Mailbox.owner_id == who.user_id)


async def list_mailboxes(session: AsyncSession, who: Principal, page: PageRequest) -> Page[Mailbox]:
    return await keyset_page(session, select(Mailbox).where(_mailboxes_of(who)), page, MAILBOX_SORTS, Mailbox.id)


async def update_mailbox(session: AsyncSession, settings: Settings, who: Principal, mailbox_id: UUID,
                         patch: MailboxUpdate, expected_version: int | None) -> Mailbox:
    box = await get_mailbox(session, who, mailbox_id, for_update=True)
    check_version(box.version, expected_version)
    before = MAILBOX.dump(box)
    changes = patch.model_fields_set
    shared = patch.shared if "shared" in changes and patch.shared is not None else box.shared
    owner_id = patch.owner_id if "owner_id" in changes else box.owner_id
    _may_hold(who, shared, owner_id)
    if "owner_id" in changes and owner_id is not None:
        await require_user(session, who.org_id, owner_id, "owner_id")
    if patch.oauth is not None and box.auth != "oauth2":
        raise ValidationFailed("oauth: this mailbox logs in with a password (auth password)", loc=("body", "oauth"))
    box.shared, box.owner_id = shared, owner_id
    for name in ("private", "sync_since_days", "rate_per_minute"):
        if name in changes and getattr(patch, name) is not None:
            setattr(box, name, getattr(patch, name))
    if patch.imap is not None:
        box.imap = patch.imap.model_dump(exclude={"password"})
    if patch.smtp is not None:
        box.smtp = patch.smtp.model_dump(exclude={"password"})
    if patch.oauth is not None:
        box.oauth = patch.oauth.model_dump(include={"provider", "client_id"})
    if patch.routing is not None:
        for assignee in patch.routing.assignees:
            await require_user(session, who.org_id, assignee, "routing.assignees", active=False)
        box.routing = patch.routing.model_dump(mode="json")
    if patch.imap is not None or patch.smtp is not None or patch.oauth is not None:
        box.sealed_secrets = seal(settings, _secrets(patch, unseal(settings, box.sealed_secrets)))
        box.last_error, box.failures, box.next_sync_at = None, 0, _now()  # new settings: try them now
    return await MAILBOX.updated(session, who, box, before)


async def delete_mailbox(session: AsyncSession, who: Principal, mailbox_id: UUID,
                         expected_version: int | None) -> None:
    box = await get_mailbox(session, who, mailbox_id)
    check_version(box.version, expected_version)
    box.next_sync_at = None
    await MAILBOX.delete(session, who, mailbox_id, None)


async def credentials(settings: Settings, box: Mailbox, which: str,
                      sessions: oauth.Sessions) -> servers.Credentials | None:
    """The login for `which` server ("imap" or "smtp"): the password unsealed, or an OAuth2 access token
    (refreshed when about to expire, and saved in `sessions`); None for an SMTP relay without AUTH."""
    config = box.imap if which == "imap" else box.smtp
    username = config.get("username")
    if not username:
        return None
    if box.auth == "oauth2":
        return servers.Credentials(username, oauth_token=await oauth.access_token(settings, box, sessions))
    try:
        secret = unseal(settings, box.sealed_secrets)
    except Unsealable as exc:
        raise servers.CredentialsRefused(f"the stored password: {exc.detail}") from None
    return servers.Credentials(username, password=secret.get(f"{which}_password") or secret.get("imap_password"))


async def check(session: AsyncSession, settings: Settings, box: Mailbox) -> dict[str, Any]:
    """Log in to both servers with the stored credentials: `{imap: {ok, error?, detail?}, smtp: {...}}`. An
    OAuth2 access token refreshed for it is saved with the request."""
    out: dict[str, Any] = {}
    timeout, private = settings.mail_timeout_seconds, settings.allow_private_networks
    for which in ("imap", "smtp"):
        try:
            creds = await credentials(settings, box, which, lambda _org: nullcontext(session))
            if which == "imap":
                assert creds is not None
                await servers.check_imap(box.imap, creds, timeout, private)
            else:
                await servers.check_smtp(box.smtp, creds, timeout, private)
            out[which] = {"ok": True}
        except servers.MailServerError as exc:
            out[which] = {"ok": False, "error": exc.kind if exc.kind != "rejected" else "auth_failed",
                          "detail": exc.detail}
    return out


async def request_sync(session: AsyncSession, who: Principal, mailbox_id: UUID) -> Mailbox:
    box = await get_mailbox(session, who, mailbox_id, for_update=True)
    box.next_sync_at = _now()
    await session.flush()
    sync_after_commit(session, box)
    return box


def sync_after_commit(session: AsyncSession, box: Mailbox) -> None:
    session.info.setdefault(JOBS, []).append(("sync_mailbox", box.org_id, box.id))


def send_after_commit(session: AsyncSession, email: Email) -> None:
    session.info.setdefault(JOBS, []).append(("send_email", email.org_id, email.id))


def committed_mail_jobs(session: AsyncSession) -> list[tuple[str, UUID, UUID]]:
    return session.info.pop(JOBS, [])


# --- emails --------------------------------------------------------------------------------------------


def email_filters(contact_id: UUID | None, lead_id: UUID | None, deal_id: UUID | None, thread_id: UUID | None,
                  mailbox_id: UUID | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if contact_id is not None:
        where.append(Email.contact_ids.contains([contact_id]))
    if lead_id is not None:
        where.append(Email.lead_ids.contains([lead_id]))
    if deal_id is not None:
        where.append(Email.deal_ids.contains([deal_id]))
    if thread_id is not None:
        where.append(Email.thread_id == thread_id)
    if mailbox_id is not None:
        where.append(Email.mailbox_id == mailbox_id)
    return where


async def list_emails(session: AsyncSession, who: Principal, page: PageRequest,
                      where: Iterable[ColumnElement[bool]]) -> Page[Email]:
    return await keyset_page(session, EMAIL.readable(who).where(*where), page, EMAIL_SORTS, Email.id)


async def links(session: AsyncSession, org_id: UUID, addresses: Iterable[str],
                contact_ids: Iterable[UUID] = (), lead_ids: Iterable[UUID] = (),
                deal_ids: Iterable[UUID] = ()) -> tuple[list[UUID], list[UUID], list[UUID]]:
    """The contacts and open leads whose email is one of `addresses`, and the open deals of those contacts
    (besides the records named explicitly): whose timelines an email belongs on."""
    [(contacts, leads, deals)] = await links_many(session, org_id, [list(addresses)])
    return (sorted({*contacts, *contact_ids}), sorted({*leads, *lead_ids}),
            sorted({*deals, *deal_ids, *await _open_deals(session, org_id, set(contact_ids) - set(contacts))}))


async def _open_deals(session: AsyncSession, org_id: UUID, contact_ids: set[UUID]) -> list[UUID]:
    if not contact_ids:
        return []
    return list(await session.scalars(select(Deal.id).where(
        Deal.org_id == org_id, Deal.deleted_at.is_(None), Deal.status == "open",
        Deal.contact_id.in_(sorted(contact_ids)))))


async def links_many(session: AsyncSession, org_id: UUID, addresses: list[list[str]]
                     ) -> list[tuple[list[UUID], list[UUID], list[UUID]]]:
    """`links` for many emails at once: three statements whatever their number (a sync chunk)."""
    wanted = sorted({a.lower() for group in addresses for a in group if a})
    contacts: dict[str, set[UUID]] = {}
    leads: dict[str, set[UUID]] = {}
    deals: dict[UUID, set[UUID]] = {}
    if wanted:
        for id_, email in await session.execute(select(Contact.id, func.lower(Contact.email)).where(
                Contact.org_id == org_id, Contact.deleted_at.is_(None), func.lower(Contact.email).in_(wanted))):
            contacts.setdefault(email, set()).add(id_)
        for id_, email in await session.execute(select(Lead.id, func.lower(Lead.email)).where(
                Lead.org_id == org_id, Lead.deleted_at.is_(None), func.lower(Lead.email).in_(wanted),
                Lead.status.in_(("new", "working", "qualified")))):
            leads.setdefault(email, set()).add(id_)
    found = {c for ids in contacts.values() for c in ids}
    if found:
        for id_, contact_id in await session.execute(select(Deal.id, Deal.contact_id).where(
                Deal.org_id == org_id, Deal.deleted_at.is_(None), Deal.status == "open",
                Deal.contact_id.in_(sorted(found)))):
            deals.setdefault(contact_id, set()).add(id_)
    out = []
    for group in addresses:
        mine = {c for a in group for c in contacts.get(a.lower(), ())}
        out.append((sorted(mine), sorted({x for a in group for x in leads.get(a.lower(), ())}),
                    sorted({d for c in mine for d in deals.get(c, ())})))
    return out


async def thread_of(session: AsyncSession, org_id: UUID, message_id: str, parents: list[str]) -> UUID:
    """The thread of the messages this one answers (`In-Reply-To`, `References`), else of a message already
    stored that answers this one (a reply synced before its original), else a new thread."""
    [thread] = await threads_many(session, org_id, [(message_id, parents)])
    return thread


async def threads_many(session: AsyncSession, org_id: UUID, messages: list[tuple[str, list[str]]]) -> list[UUID]:
    """`thread_of` for many messages at once (two statements), in order: a message may also answer, or be
    answered by, one before it in the list."""
    ids = {m for m, _ in messages}
    parents = {p for _, ps in messages for p in ps}
    known: dict[str, UUID] = {}
    if parents | ids:
        known.update(dict((await session.execute(select(Email.message_id, Email.thread_id).where(
            Email.org_id == org_id, Email.message_id.in_(sorted(parents | ids))))).all()))
    answering: dict[str, UUID] = {}  # message id -> the thread of a stored reply to it
    if ids:
        for reply_to, refs, thread in await session.execute(
                select(Email.in_reply_to, Email.references, Email.thread_id).where(
                    Email.org_id == org_id, or_(Email.in_reply_to.in_(sorted(ids)),
                                                Email.references.overlap(sorted(ids))))):
            for m in {reply_to, *(refs or [])} & ids:
                answering.setdefault(m, thread)
    out = []
    for message_id, ps in messages:
        thread = next((known[p] for p in ps if p in known), None) or answering.get(message_id) \
            or known.get(message_id) or new_id()
        known.setdefault(message_id, thread)
        for p in ps:  # a later message answering one of these parents joins too
            known.setdefault(p, thread)
        out.append(thread)
    return out


async def queue_email(session: AsyncSession, who: Principal, body: EmailSend) -> Email:
    """Write the email `queued` (a worker sends it), threaded and linked like synced mail."""
    box = await require_ref(session, MAILBOX, who, body.mailbox_id, "mailbox_id")
    if not is_admin(who) and box.shared is False and box.owner_id != who.user_id:
        raise ValidationFailed("mailbox_id: you may send from shared mailboxes and your own",
                               loc=("body", "mailbox_id"))
    refs: dict[str, list[UUID]] = {"contact": [], "lead": [], "deal": []}
    for kind, value in (("contact", body.contact_id), ("lead", body.lead_id), ("deal", body.deal_id)):
        if value is not None:
            await require_ref(session, Kind.of(kinds.named(kind)), who, value, f"{kind}_id")
            refs[kind].append(value)
    parent = None
    if body.in_reply_to is not None:
        parent = await require_ref(session, EMAIL, who, body.in_reply_to, "in_reply_to")
    email_id = new_id()
    domain = box.email.rpartition("@")[2] or "crm.invalid"
    message_id = f"<{email_id}@{domain}>"
    references = [*parent.references, parent.message_id][-50:] if parent is not None else []
    contact_ids, lead_ids, deal_ids = await links(session, who.org_id, [*body.to, *body.cc], refs["contact"],
                                                  refs["lead"], refs["deal"])
    now = _now()
    subject = body.subject or (f"Re: {parent.subject}" if parent is not None and not
                               parent.subject.lower().startswith("re:") else parent.subject if parent else "")
    email = Email(
        org_id=who.org_id, id=email_id, mailbox_id=box.id, direction="outbound", status="queued",
        subject=subject, from_address=box.email, from_name=None, to_addresses=list(body.to),
        cc_addresses=list(body.cc), sent_at=now, message_id=message_id,
        in_reply_to=parent.message_id if parent is not None else None, references=references,
        thread_id=parent.thread_id if parent is not None else new_id(), contact_ids=contact_ids, lead_ids=lead_ids,
        deal_ids=deal_ids, body_text=body.text, body_html=body.html, attachments=[], created_by=who.user_id,
        next_attempt_at=now)
    session.add(email)
    await session.flush()
    send_after_commit(session, email)
    return email


def dump_email(email: Email) -> dict[str, Any]:
    return EMAIL.dump(email)


def dump_mailbox(box: Mailbox) -> dict[str, Any]:
    return MAILBOX.dump(box)
