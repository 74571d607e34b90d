"""Signed public links to a document's PDF (`POST /v1/documents/{id}/share`): the token names the org, the
document and the moment it expires, with an HMAC over them keyed by the app's secret. Nothing is stored: a
link works until it expires, and a tampered or expired one is 404, as one that never was."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from uuid import UUID

from app.domain.errors import NotFound
from app.settings import Settings

_BODY = 16 + 16 + 8  # org, document, expiry (Unix seconds)
_MAC = 16


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(b"crm document link v1:" + settings.jwt_key().encode()).digest()


def token(settings: Settings, org_id: UUID, document_id: UUID, expires_at: datetime) -> str:
    body = org_id.bytes + document_id.bytes + int(expires_at.timestamp()).to_bytes(8, "big")
    mac = hmac.new(_key(settings), body, hashlib.sha256).digest()[:_MAC]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def read(settings: Settings, value: str, now: datetime) -> tuple[UUID, UUID]:
    """(org, document) of a link this server signed that has not expired at `now`; else NotFound."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        raise NotFound("No such document link") from None
    if len(raw) != _BODY + _MAC:
        raise NotFound("No such document link")
    body, mac = raw[:_BODY], raw[_BODY:]
    if not hmac.compare_digest(mac, hmac.new(_key(settings), body, hashlib.sha256).digest()[:_MAC]):
        raise NotFound("No such document link")
    expires = datetime.fromtimestamp(int.from_bytes(body[32:], "big"), UTC)
    if now >= expires:
        raise NotFound("No such document link (it expired)")
    return UUID(bytes=body[:16]), UUID(bytes=body[16:32])
