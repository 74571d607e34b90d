"""The unsubscribe link every campaign message carries (RFC 8058 one-click): `GET` shows a confirmation page and
changes nothing; `POST` (from the page, or the mail client's one-click with `List-Unsubscribe=One-Click`)
unsubscribes. A token this server did not sign → 404."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from app.api.deps import SessionDep, SettingsDep
from app.api.problems import VALIDATION, problem_doc
from app.db import set_org
from app.domain.campaigns import service

router = APIRouter(prefix="/v1/public/unsubscribe", tags=["public forms"])
PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title><body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">
<h1>{title}</h1><p>{text}</p>{form}</body></html>"""
HTML = {200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "the page"}}
NOT_SIGNED = problem_doc(404, "Not a link this server signed")


@router.get("/{token}", response_class=HTMLResponse, operation_id="showUnsubscribe",
            responses={**HTML, **NOT_SIGNED, **VALIDATION})
async def show(token: Annotated[str, Path(max_length=200)], request: Request, settings: SettingsDep) -> HTMLResponse:
    """A confirmation page with one button; nothing changes until it is pressed (link scanners only GET)."""
    service.read_token(settings, token)
    form = (f'<form method="post" action="{html.escape(str(request.url.path))}">'
            '<button type="submit">Unsubscribe</button></form>')
    return HTMLResponse(PAGE.format(title="Unsubscribe", text="Stop receiving these messages?", form=form))


@router.post("/{token}", response_class=HTMLResponse, operation_id="unsubscribe",
             responses={**HTML, **NOT_SIGNED, **VALIDATION})
async def unsubscribe(token: Annotated[str, Path(max_length=200)], session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Unsubscribe the recipient's contact from the campaign's channel (`consent.email` or, for a text's link,
    `consent.sms`: `unsubscribed`; `contact.unsubscribed`); every later send on that channel skips them. The body may be empty or `List-Unsubscribe=One-Click`; repeating it is
    harmless."""
    org_id, recipient_id = service.read_token(settings, token)
    await set_org(session, org_id)
    await service.unsubscribe(session, org_id, recipient_id)
    return HTMLResponse(PAGE.format(title="Unsubscribed", text="You will not receive these messages any more.", form=""))
