"""OAuth2 mailboxes (Gmail, Microsoft 365): IMAP and SMTP log in with XOAUTH2 and a short-lived access token that
the mailbox's refresh token buys at the provider's token endpoint. The access token and its expiry are kept with
the mailbox's sealed secrets, so the next jobs reuse it until it is about to expire; a refresh token the provider
rotates (Microsoft) is stored in place of the old one. A grant the provider refuses for good (revoked or expired)
is `OAuthRefused`: only reconnecting the mailbox can help."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.domain.mail.models import Mailbox
from app.domain.mail.servers import CredentialsRefused, MailServerError
from app.domain.sealing import Unsealable, seal, unseal
from app.settings import Settings

TOKEN_URLS = {"google": "https://oauth2.googleapis.com/token",
              "microsoft": "https://login.microsoftonline.com/common/oauth2/v2.0/token"}
SCOPES = {"microsoft": "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send "
                       "offline_access"}  # Microsoft wants the scopes on every refresh; Google keeps the granted ones
REFRESH_BEFORE = timedelta(minutes=5)  # a token this close to its expiry could lapse during a long sync
REVOKED = "the OAuth2 grant was revoked or expired: reconnect the mailbox (PATCH oauth)"

Sessions = Callable[[UUID], AbstractAsyncContextManager[AsyncSession]]
"""A transaction acting for an org, where a refreshed token is saved: the worker's `Database.for_org`, or the
request's session."""


class OAuthRefused(CredentialsRefused):
    """The provider refused the grant or the client for good: retrying cannot help, reconnecting can."""


def _now() -> datetime:
    return datetime.now(UTC)


async def access_token(settings: Settings, box: Mailbox, sessions: Sessions) -> str:
    """The mailbox's access token: the stored one while it has more than `REFRESH_BEFORE` left, else a new one,
    saved (with a rotated refresh token) for the next jobs."""
    try:
        secrets = unseal(settings, box.sealed_secrets)
    except Unsealable as exc:
        raise OAuthRefused(f"the stored grant: {exc.detail} (reconnect the mailbox)") from None
    token, expires_at = secrets.get("oauth_access_token"), secrets.get("oauth_expires_at")
    if token and expires_at and datetime.fromisoformat(expires_at) - _now() > REFRESH_BEFORE:
        return str(token)
    assert box.oauth is not None  # auth oauth2 comes with it (MailboxCreate)
    answer = await _refresh(settings, box.oauth, secrets)
    token = str(answer["access_token"])
    secrets.update(oauth_access_token=token, oauth_expires_at=(
        _now() + timedelta(seconds=float(answer.get("expires_in") or 3600))).isoformat())
    if answer.get("refresh_token"):
        secrets["oauth_refresh_token"] = answer["refresh_token"]
    sealed = seal(settings, secrets)
    async with sessions(box.org_id) as session:
        # Only over the secrets this was refreshed from: a mailbox reconnected meanwhile keeps its new grant.
        await session.execute(update(Mailbox).where(
            Mailbox.org_id == box.org_id, Mailbox.id == box.id, Mailbox.sealed_secrets == box.sealed_secrets)
            .values(sealed_secrets=sealed).execution_options(synchronize_session=False))
    set_committed_value(box, "sealed_secrets", sealed)  # the rest of this job uses it too, without a second write
    return token


async def _refresh(settings: Settings, oauth: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    """A refresh_token grant at the provider's token endpoint (`CRM_OAUTH_TOKEN_URLS` may replace it)."""
    provider = oauth["provider"]
    url = {**TOKEN_URLS, **settings.oauth_token_urls}[provider]
    form = {"grant_type": "refresh_token", "client_id": oauth["client_id"],
            "client_secret": secrets["oauth_client_secret"], "refresh_token": secrets["oauth_refresh_token"],
            **({"scope": SCOPES[provider]} if provider in SCOPES else {})}
    try:
        async with httpx.AsyncClient(timeout=settings.mail_timeout_seconds) as client:
            response = await client.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise MailServerError("timeout", f"the {provider} token endpoint did not answer") from exc
    except httpx.HTTPError as exc:
        raise MailServerError("unreachable", f"the {provider} token endpoint: {type(exc).__name__}: {exc}") from exc
    try:
        answer = response.json()
    except ValueError:
        answer = None
    answer = answer if isinstance(answer, dict) else {}
    if response.is_success and answer.get("access_token"):
        return answer
    error = answer.get("error")
    if error == "invalid_grant":
        raise OAuthRefused(REVOKED)
    if error in ("invalid_client", "unauthorized_client"):
        raise OAuthRefused(f"the OAuth2 client was refused ({error}): check client_id and client_secret, then "
                           "reconnect the mailbox (PATCH oauth)")
    words = f"{error}: {answer.get('error_description') or ''}" if error else response.text[:200]
    retry = response.status_code >= 500 or response.status_code == 429 or response.is_success
    raise MailServerError("unreachable" if retry else "auth_failed",
                          f"the {provider} token endpoint answered {response.status_code} {words}".strip())
