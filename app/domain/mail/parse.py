"""A raw message (RFC 5322 bytes) read into what the CRM keeps, with the standard library: headers decoded,
text and HTML bodies in any charset Python knows (an unknown one is read as Latin-1 rather than lost),
attachments with their names and types."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
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


def _content(part: Message) -> str:
    try:
        return part.get_content()  # type: ignore[attr-defined, no-any-return]
    except (LookupError, UnicodeDecodeError):  # a charset Python does not know, or bytes it does not hold
        payload = part.get_payload(decode=True) or b""
        assert isinstance(payload, bytes)
        return payload.decode("latin-1")


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header the parser cannot make sense of
        value = message.get_all(name, [None])[0] if hasattr(message, "get_all") else None
    return str(value or "").replace("\r", " ").replace("\n", " ").strip()


def parse(raw: bytes) -> Parsed:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
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
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    attachments = []
    for part in message.iter_attachments():
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            attachments.append(Part(part.get_filename() or "attachment", part.get_content_type(), data))
    auto = _header(message, "Auto-Submitted").lower()
    precedence = _header(message, "Precedence").lower()
    in_reply_to = next(iter(_ids(_header(message, "In-Reply-To"))), None)
    return Parsed(
        message_id=message_id[:998], subject=_header(message, "Subject")[:998],
        from_address=from_address.strip().lower()[:320], from_name=(from_name.strip() or None) and from_name[:200],
        to=_addresses([_header(message, "To")]), cc=_addresses([_header(message, "Cc")]), sent_at=sent_at,
        in_reply_to=in_reply_to and in_reply_to[:998], references=[r[:998] for r in _ids(_header(message, "References"))][-50:],
        text=_content(text_part)[:MAX_BODY] if text_part is not None else None,
        html=_content(html_part)[:MAX_BODY] if html_part is not None else None,
        attachments=attachments,
        auto_submitted=(bool(auto) and auto != "no") or precedence in ("bulk", "list", "junk"))
