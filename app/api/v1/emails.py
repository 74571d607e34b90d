"""Email: what the mailboxes synced and what was sent from here, filtered by the records it is linked to.
Mail of a private mailbox is its owner's (and admins'); other mail is visible to whoever may read a linked
contact, lead or deal."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import orjson
from fastapi import Query, Response
from fastapi.responses import FileResponse

from app.api import scoping
from app.api.deps import PageDep, SessionDep, SettingsDep, require
from app.api.problems import AUTHED, NOT_FOUND
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.errors import NotFound
from app.domain.mail import service, sync
from app.domain.mail.schemas import EmailRead, EmailSend

router = Router(prefix="/v1/emails", tags=["mail"])
Reader = Annotated[Principal, require("mail:read")]
Sender = Annotated[Principal, require("mail:write", Role.member)]


@router.get("", response_model=ListPage[EmailRead], operation_id="listEmails", responses=AUTHED)
async def list_emails(
    session: SessionDep, who: Reader, page: PageDep,
    contact_id: Annotated[UUID | None, Query(description="mail linked to this contact")] = None,
    lead_id: Annotated[UUID | None, Query()] = None,
    deal_id: Annotated[UUID | None, Query()] = None,
    thread_id: Annotated[UUID | None, Query(description="one conversation")] = None,
    mailbox_id: Annotated[UUID | None, Query()] = None,
) -> JSONBytes:
    """Synced and sent mail, newest first by default (`sort` `sent_at`, `-sent_at`, `created_at`); keyset
    pages."""
    where = service.email_filters(contact_id, lead_id, deal_id, thread_id, mailbox_id)
    result = await service.list_emails(session, who, page, where)
    return JSONBytes(orjson.dumps({"data": [service.dump_email(e) for e in result.items],
                                   "next_cursor": result.next_cursor}))


@router.post("", status_code=202, response_model=EmailRead, operation_id="sendEmail", responses={**AUTHED})
async def send_email(body: EmailSend, session: SessionDep, who: Sender) -> Response:
    """Send from a mailbox: the email is `queued` and a worker hands it to the mailbox's SMTP server (`sent`),
    retrying temporary failures with back-off; a refusal ends `failed` with `error`. Its Message-ID is kept so
    that replies thread back; `in_reply_to` (an email's id) answers in that thread."""
    named = [k for k, v in (("contact", body.contact_id), ("lead", body.lead_id), ("deal", body.deal_id)) if v]
    scoping.refuse_unreadable(who, named, "Linking the email to these records")
    email = await service.queue_email(session, who, body)
    return one(service.dump_email(email), email.version, None, 202, {"Location": f"/v1/emails/{email.id}"})


@router.get("/{email_id}", response_model=EmailRead, operation_id="getEmail", responses={**AUTHED, **NOT_FOUND})
async def get_email(email_id: UUID, session: SessionDep, who: Reader) -> Response:
    """One email, if you may read it."""
    email = await service.EMAIL.get(session, who, email_id)
    return one(service.dump_email(email), email.version, None)


@router.get("/{email_id}/attachments/{file_id}", response_class=Response, operation_id="getEmailAttachment",
            responses={200: {"content": {"application/octet-stream": {}}, "description": "the file"},
                       **AUTHED, **NOT_FOUND})
async def get_attachment(email_id: UUID, file_id: UUID, session: SessionDep, settings: SettingsDep,
                         who: Reader) -> Response:
    """An attachment, always as a download (`Content-Disposition: attachment`)."""
    email = await service.EMAIL.get(session, who, email_id)
    meta = next((a for a in email.attachments if a.get("file_id") == str(file_id)), None)
    path = sync.file_path(settings, email.org_id, file_id)
    if meta is None or not path.is_file():
        raise NotFound("Attachment not found")
    return FileResponse(path, media_type="application/octet-stream", filename=meta["filename"],
                        content_disposition_type="attachment")
