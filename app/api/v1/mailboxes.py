"""Mailboxes: the team's IMAP/SMTP accounts (admins; a member may add and manage their own personal one).
Credentials are write-only and stored sealed."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import Request, Response, status

from app.api.deps import IfMatch, PageDep, SessionDep, SettingsDep, conditional, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.mail import service
from app.domain.mail.schemas import MailboxCheck, MailboxCreate, MailboxRead, MailboxUpdate

router = Router(prefix="/v1/mailboxes", tags=["mail"])
Writer = Annotated[Principal, require("mail:write", Role.member)]
Reader = Annotated[Principal, require("mail:read")]


@router.get("", response_model=ListPage[MailboxRead], operation_id="listMailboxes", responses=AUTHED)
async def list_mailboxes(session: SessionDep, who: Reader, page: PageDep) -> JSONBytes:
    """Admins see every mailbox; members their own. Passwords and tokens are never returned; `status` and
    `last_error` tell whether the last sync worked."""
    result = await service.list_mailboxes(session, who, page)
    return JSONBytes(orjson.dumps({"data": [service.dump_mailbox(b) for b in result.items],
                                   "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=MailboxRead, operation_id="createMailbox", responses=AUTHED)
async def create_mailbox(body: MailboxCreate, session: SessionDep, settings: SettingsDep, who: Writer) -> Response:
    """Connect a mailbox; the first sync starts at once, reading back `sync_since_days`. Admins add shared team
    inboxes (`shared: true`) and anyone's; a member adds their own personal one (403 otherwise)."""
    box = await service.create_mailbox(session, settings, who, body)
    return one(service.dump_mailbox(box), box.version, None, 201, {"Location": f"/v1/mailboxes/{box.id}"})


@router.get("/{mailbox_id}", response_model=MailboxRead, operation_id="getMailbox", responses={**AUTHED, **NOT_FOUND})
async def get_mailbox(mailbox_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """A mailbox (admins: any; members: their own, others are 404)."""
    box = await service.get_mailbox(session, who, mailbox_id)
    conditional(request, box.version)
    return one(service.dump_mailbox(box), box.version, None)


@router.patch("/{mailbox_id}", response_model=MailboxRead, operation_id="updateMailbox",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_mailbox(mailbox_id: UUID, body: MailboxUpdate, session: SessionDep, settings: SettingsDep,
                         who: Writer, expected: IfMatch) -> Response:
    """Change settings; `imap` and `smtp` are replaced whole (a block without `password` keeps the stored one).
    New server settings clear the last error and sync at once."""
    box = await service.update_mailbox(session, settings, who, mailbox_id, body, expected)
    return one(service.dump_mailbox(box), box.version, None)


@router.delete("/{mailbox_id}", status_code=204, response_class=Response, operation_id="deleteMailbox",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_mailbox(mailbox_id: UUID, session: SessionDep, who: Writer, expected: IfMatch) -> Response:
    """Stop syncing and sending from this mailbox; its emails stay on the timelines."""
    await service.delete_mailbox(session, who, mailbox_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{mailbox_id}/test", response_model=MailboxCheck, operation_id="testMailbox",
             responses={**AUTHED, **NOT_FOUND})
async def test_mailbox(mailbox_id: UUID, session: SessionDep, settings: SettingsDep, who: Writer) -> Any:
    """Log in to the IMAP and the SMTP server with the stored credentials (SMTP `AUTH` included). Each answers
    `ok`, or `error` (`auth_failed`, `tls_error`, `unreachable`: refused or no route, `timeout`) and the
    server's words in `detail`. An OAuth2 mailbox first gets an access token with its refresh token: a grant the
    provider refused (revoked, expired) is `auth_failed` for both. Always 200: the answer is the check."""
    box = await service.get_mailbox(session, who, mailbox_id)
    return await service.check(session, settings, box)


@router.post("/{mailbox_id}/sync", status_code=202, response_model=MailboxRead, operation_id="syncMailbox",
             responses={**AUTHED, **NOT_FOUND})
async def sync_mailbox(mailbox_id: UUID, session: SessionDep, who: Writer) -> Response:
    """Sync now rather than at the next period (`CRM_MAIL_SYNC_SECONDS`); a worker does it. A sync already
    running is not started twice."""
    box = await service.request_sync(session, who, mailbox_id)
    return one(service.dump_mailbox(box), box.version, None, 202)
