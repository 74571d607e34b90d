"""A raw message (RFC 5322 bytes) read into what the CRM keeps, with the standard library: headers decoded,
text and HTML bodies in any charset Python knows (an unknown one is read as Latin-1 rather than lost),
attachments with their names and types."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
MAX_BODY = 1_000_000  # characters of text or HTML kept per message


@dataclass
class Part:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Parsed:
    message_id: str
    subject: str
    from_address: str
    from_name: str | None
    to: list[str]
    cc: list[str]
    sent_at: datetime
    in_reply_to: str | None
    references: list[str]
    text: str | None
    html: str | None
    attachments: list[Part] = field(default_factory=list)
    auto_submitted: bool = False  # Auto-Submitted (not "no") or Precedence bulk/list/junk: no auto-reply


def _addresses(values: list[str]) -> list[str]:
    return [addr.strip().lower() for _, addr in getaddresses(values) if "@" in addr][:100]


def _ids(value: str | None) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


def _text(part: Message) -> str:
    """A text part's content in its declared charset; one Python does not know is read as Latin-1 (every
    byte is kept), bytes the charset does not hold become U+FFFD."""
    payload = part.get_payload(decode=True) or b""
    assert isinstance(payload, bytes)
    try:
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        return payload.decode("latin-1")


def _header(message: Message, name: str) -> str:
    """A header as text: RFC 2047 encoded words decoded, folded onto one line."""
    value = message.get(name)
    if value is None:
        return ""
    if isinstance(value, str) and "=?" not in value:  # no encoded words: as it is (most headers)
        return value.replace("\r", " ").replace("\n", " ").strip() if "\n" in value or "\r" in value else value.strip()
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeDecodeError, HeaderParseError):  # malformed: as received
        text = str(value)
    return text.replace("\r", " ").replace("\n", " ").strip()


def parse(raw: bytes) -> Parsed:
    # compat32 and a walk over the parts: the same result as the `policy.default` API, ten times faster
    message = message_from_bytes(raw, policy=compat32)
    message_id = next(iter(_ids(_header(message, "Message-ID"))), None)
    if message_id is None:  # stable across re-syncs, so the message is still stored once
        message_id = f"<{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.invalid>"
    from_pairs = getaddresses([_header(message, "From")])
    from_name, from_address = from_pairs[0] if from_pairs else ("", "")
    try:
        sent_at = parsedate_to_datetime(_header(message, "Date"))
        sent_at = sent_at.astimezone(UTC) if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)
    except (TypeError, ValueError, IndexError):
        sent_at = datetime.now(UTC)
    text = html = None
    attachments = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type, filename = part.get_content_type(), part.get_filename()
        disposition = str(part.get("Content-Disposition") or "").strip().lower()
        if filename or disposition.startswith("attachment") or not content_type.startswith("text/"):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                try:
                    name = str(make_header(decode_header(filename))) if filename else "attachment"
                except (ValueError, LookupError, UnicodeDecodeError, HeaderParseError):
                    name = str(filename)
                attachments.append(Part(name, content_type, data))
        elif content_type == "text/plain" and text is None:
            text = _text(part)
        elif content_type == "text/html" and html is None:
            html = _text(part)
    auto = _header(message, "Auto-Submitted").lower()
    precedence = _header(message, "Precedence").lower()
    in_reply_to = next(iter(_ids(_header(message, "In-Reply-To"))), None)
    return Parsed(
        message_id=message_id[:998], subject=_header(message, "Subject")[:998],
        from_address=from_address.strip().lower()[:320], from_name=(from_name.strip() or None) and from_name[:200],
        to=_addresses([_header(message, "To")]), cc=_addresses([_header(message, "Cc")]), sent_at=sent_at,
        in_reply_to=in_reply_to and in_reply_to[:998], references=[r[:998] for r in _ids(_header(message, "References"))][-50:],
        text=text[:MAX_BODY] if text is not None else None,
        html=html[:MAX_BODY] if html is not None else None,
        attachments=attachments,
        auto_submitted=(bool(auto) and auto != "no") or precedence in ("bulk", "list", "junk"))
