"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with a whsec_ secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "headless-crm-webhooks/1",
    }


TOLERANCE_SECONDS = 300  # Standard Webhooks: a timestamp further than this from now is a replay or a stale retry


def valid_secret(secret: str) -> bool:
    """A Standard Webhooks secret: `whsec_` (optional) and base64 of 16 to 64 random bytes."""
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except ValueError:
        return False
    return 16 <= len(key) <= 64


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float,
           tolerance: int = TOLERANCE_SECONDS) -> str | None:
    """Check a signed request (what `headers` above makes) -> None when it is genuine, else why not. The
    signature header may carry several space-separated signatures (a sender rotating its secret): one match
    is enough. Compared in constant time."""
    message_id, stamp, signatures = (headers.get(h) for h in ("webhook-id", "webhook-timestamp",
                                                              "webhook-signature"))
    if not message_id or not stamp or not signatures:
        return "webhook-id, webhook-timestamp and webhook-signature are required"
    if not stamp.isdigit() or len(stamp) > 12:
        return "webhook-timestamp must be Unix seconds"
    if abs(now - int(stamp)) > tolerance:
        return "webhook-timestamp is too far from now (a replay, or a clock off by minutes)"
    expected = sign(secret, message_id, int(stamp), body).encode()
    if not any(hmac.compare_digest(expected, s.encode()) for s in signatures.split() if s.startswith("v1,")):
        return "the signature does not match"
    return None
