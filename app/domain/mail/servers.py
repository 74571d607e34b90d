"""Talking to a mailbox's servers: IMAP (aioimaplib) to read, SMTP (aiosmtplib) to send. Every failure is one
of the contract's kinds (`auth_failed, tls_error, unreachable, seconds`) with the server's words as detail."""

from __future__ import annotations

import asyncio
import base64
import email.generator
import email.policy
import io
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import parseaddr
from typing import Any

import aioimaplib
import aiosmtplib

from app.domain.outbound import BlockedDestination, resolve_checked

FETCH_CHUNK = 50
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UID = re.compile(rb"UID (\d+)")
_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?:"[^"]*"|NIL) (?P<name>.+)$')
SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "[Gmail]/Sent Mail", "INBOX.Sent")


class MailServerError(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail[:400]

    @property
    def permanent(self) -> bool:
        """Only for sending: the server refused the message itself (5xx), trying again would not help."""
        return self.kind == "rejected"


class CredentialsRefused(MailServerError):
    """Retrying cannot help, reconnecting can: a refused OAuth2 grant, or a stored password that no configured
    key (CRM_SECRET_KEYS) opens any more. The mailbox waits, showing the error, until it is updated or a sync is
    asked for."""

    def __init__(self, detail: str) -> None:
        super().__init__("auth_failed", detail)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str | None = None
    oauth_token: str | None = None  # an OAuth2 access token: XOAUTH2


def _kind_of(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiosmtplib.SMTPTimeoutError):
        return "timeout"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls_error"
    return "unreachable"


def _connect_error(exc: BaseException) -> MailServerError:
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, aiosmtplib.SMTPConnectError) and isinstance(cause, ssl.SSLError):
        exc = cause
    if isinstance(exc, aiosmtplib.SMTPConnectError) and "SSL" in str(exc):
        return MailServerError("tls_error", str(exc))
    return MailServerError(_kind_of(exc), f"{type(exc).__name__}: {exc}".strip())


async def _allowed(host: str, port: int, allow_private: bool) -> None:
    """Mail servers are named by users: like webhook URLs, they may not point into the private network
    (unless CRM_ALLOW_PRIVATE_NETWORKS). The name is resolved and checked before connecting."""
    try:
        await resolve_checked(host, port, allow_private)
    except BlockedDestination as exc:
        raise MailServerError("unreachable", str(exc)) from None


@asynccontextmanager
async def imap_session(imap: dict[str, Any], creds: Credentials, seconds: float,
                       allow_private: bool) -> AsyncIterator[aioimaplib.IMAP4]:
    """Logged in to the mailbox's IMAP server; logged out at the end."""
    await _allowed(imap["host"], imap["port"], allow_private)
    cls = aioimaplib.IMAP4_SSL if imap.get("ssl", True) else aioimaplib.IMAP4
    kwargs: dict[str, Any] = {"host": imap["host"], "port": imap["port"], "timeout": seconds}
    if imap.get("ssl", True):
        kwargs["ssl_context"] = ssl.create_default_context()
    try:
        client = cls(**kwargs)
        await asyncio.wait_for(client.wait_hello_from_server(), seconds)
    except (OSError, ssl.SSLError, TimeoutError, socket.gaierror) as exc:
        raise _connect_error(exc) from exc
    try:
        if creds.oauth_token is not None:
            response = await asyncio.wait_for(_xoauth2(client, creds.username, creds.oauth_token), seconds)
        else:
            response = await asyncio.wait_for(client.login(creds.username, creds.password or ""), seconds)
        if response.result != "OK":
            raise MailServerError("auth_failed", _text(response.lines[-1:]) or "login refused")
        yield client
    except TimeoutError as exc:
        raise MailServerError("timeout", "the IMAP server stopped answering") from exc
    finally:
        try:
            await asyncio.wait_for(client.logout(), 5)
        except Exception:  # noqa: BLE001, S110 - the session is over either way
            pass


class _XOAuth2(aioimaplib.Command):
    """`AUTHENTICATE XOAUTH2` with the token as initial response. A refused token is answered with a challenge
    (an error in JSON) that the client must acknowledge with an empty line before the server says NO (Gmail,
    Outlook, Dovecot); aioimaplib's own `xoauth2` leaves it unanswered and waits until the timeout."""

    def __init__(self, protocol: Any, sasl: str) -> None:
        super().__init__("AUTHENTICATE", protocol.new_tag(), "XOAUTH2", sasl, loop=protocol.loop)
        self.protocol = protocol

    def flush(self) -> None:  # called by aioimaplib on a continuation request
        self.protocol.transport.write(b"\r\n")


async def _xoauth2(client: aioimaplib.IMAP4, username: str, token: str) -> aioimaplib.Response:
    """Uses aioimaplib's protocol for the exchange (pinned in the lock file)."""
    protocol = client.protocol
    sasl = base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode()).decode()
    response = await protocol.execute(_XOAuth2(protocol, sasl), scrub=sasl)
    if response.result == "OK":
        protocol.state = aioimaplib.AUTH
    return response


def _text(lines: list[Any]) -> str:
    return " ".join(bytes(x).decode("utf-8", "replace") for x in lines if isinstance(x, bytes | bytearray))[:400]


async def _ok(call: Any, what: str, seconds: float) -> aioimaplib.Response:
    try:
        response = await asyncio.wait_for(call, seconds)
    except (TimeoutError, aioimaplib.CommandTimeout) as exc:
        raise MailServerError("timeout", f"{what}: no answer") from exc
    except (aioimaplib.Abort, aioimaplib.Error, OSError) as exc:  # the connection broke, or the protocol did
        raise MailServerError("unreachable", f"{what}: {exc}") from exc
    if response.result != "OK":
        raise MailServerError("unreachable", f"{what}: {_text(response.lines)}")
    return response


async def folders(client: aioimaplib.IMAP4, seconds: float) -> dict[str, str]:
    """{"inbox": "INBOX", "sent": <the folder flagged \\Sent, or one with a usual name>}."""
    response = await _ok(client.list('""', '"*"'), "LIST", seconds)
    names: dict[str, str] = {}
    for line in response.lines:
        match = _LIST.match(bytes(line)) if isinstance(line, bytes | bytearray) else None
        if match is None:
            continue
        name = match["name"].decode("utf-8", "replace").strip().strip('"')
        if b"\\Sent" in match["flags"]:
            names["sent"] = name
        names.setdefault(f"name:{name}", name)
    found = {"inbox": "INBOX"}
    sent = names.get("sent") or next((n for n in SENT_NAMES if f"name:{n}" in names), None)
    if sent is not None:
        found["sent"] = sent
    return found


async def select(client: aioimaplib.IMAP4, folder: str, seconds: float) -> int:
    """Open `folder`; -> its UIDVALIDITY. (Messages are read with BODY.PEEK: nothing is marked read.)"""
    response = await _ok(client.select(_quoted(folder)), f"SELECT {folder}", seconds)  # read with BODY.PEEK only
    for line in response.lines:
        match = _UIDVALIDITY.search(bytes(line)) if isinstance(line, bytes | bytearray) else None
        if match:
            return int(match[1])
    raise MailServerError("unreachable", f"{folder}: the server sent no UIDVALIDITY")


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def uids(client: aioimaplib.IMAP4, after_uid: int, since: str | None, seconds: float) -> list[int]:
    """UIDs above `after_uid` (and, on a first sync, of mail since `since`, e.g. 01-Nov-2026), ascending."""
    criteria = ["UID", f"{after_uid + 1}:*"] if after_uid else ["SINCE", since or "01-Jan-1970"]
    response = await _ok(client.uid_search(*criteria), "UID SEARCH", seconds)
    found: set[int] = set()
    for line in response.lines:
        if isinstance(line, bytes | bytearray):
            found.update(int(x) for x in bytes(line).split() if x.isdigit())
    return sorted(u for u in found if u > after_uid)  # "n:*" also answers the last UID when none is above n


async def fetch(client: aioimaplib.IMAP4, wanted: list[int], seconds: float) -> list[tuple[int, bytes]]:
    """The raw messages of these UIDs, as (uid, bytes), without marking them read."""
    response = await _ok(client.uid("fetch", ",".join(map(str, wanted)), "(UID BODY.PEEK[])"), "UID FETCH",
                         max(seconds, 120))
    out: list[tuple[int, bytes]] = []
    lines = response.lines
    for i, line in enumerate(lines):
        if isinstance(line, bytes | bytearray) and b"FETCH" in line and i + 1 < len(lines) and isinstance(
                lines[i + 1], bytearray):
            uid = _UID.search(bytes(line)) or (_UID.search(bytes(lines[i + 2])) if i + 2 < len(lines) else None)
            if uid is not None:
                out.append((int(uid[1]), bytes(lines[i + 1])))
    return out


async def check_imap(imap: dict[str, Any], creds: Credentials, seconds: float, allow_private: bool) -> None:
    async with imap_session(imap, creds, seconds, allow_private) as client:
        await select(client, "INBOX", seconds)


def _smtp(smtp: dict[str, Any], seconds: float) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(hostname=smtp["host"], port=smtp["port"], use_tls=bool(smtp.get("ssl")),
                           start_tls=bool(smtp.get("starttls")) if not smtp.get("ssl") else False,
                           timeout=seconds, tls_context=ssl.create_default_context())


async def _smtp_login(client: aiosmtplib.SMTP, creds: Credentials | None) -> None:
    if creds is None:
        return
    try:
        if creds.oauth_token is not None:
            await client.auth_xoauth2(creds.username, creds.oauth_token)
        else:
            await client.login(creds.username, creds.password or "")
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise MailServerError("auth_failed", f"{exc.code} {exc.message}") from exc
    except aiosmtplib.SMTPException as exc:
        raise MailServerError("auth_failed", str(exc)) from exc


async def check_smtp(smtp: dict[str, Any], creds: Credentials | None, seconds: float, allow_private: bool) -> None:
    async with smtp_session(smtp, creds, seconds, allow_private):
        pass


async def send(smtp: dict[str, Any], creds: Credentials | None, message: EmailMessage, seconds: float,
               allow_private: bool) -> str:
    """Hand `message` to the SMTP server; -> its answer. MailServerError `rejected` when it refused the message
    for good (5xx), another kind when trying again later may work."""
    async with smtp_session(smtp, creds, seconds, allow_private) as client:
        try:
            refused, answer = await client.send_message(message)  # some recipients refused: the others got it
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise MailServerError("rejected", "; ".join(f"{r.recipient}: {r.code} {r.message}"
                                                        for r in exc.recipients)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailServerError("rejected" if 500 <= exc.code < 600 else "unreachable",
                                  f"{exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            raise MailServerError(_kind_of(exc), str(exc)) from exc
    return answer + "".join(f"; refused {k}: {v.code} {v.message}" for k, v in refused.items())


@asynccontextmanager
async def smtp_session(smtp: dict[str, Any], creds: Credentials | None, seconds: float,
                       allow_private: bool) -> AsyncIterator[aiosmtplib.SMTP]:
    """One connection, logged in, for many messages (a campaign's chunk)."""
    await _allowed(smtp["host"], smtp["port"], allow_private)
    client = _smtp(smtp, seconds)
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as exc:
        raise _connect_error(exc) from exc
    try:
        await _smtp_login(client, creds)
        yield client
    finally:
        try:
            await client.quit()
        except Exception:  # noqa: BLE001, S110
            pass


_UNFOLDED = email.policy.compat32.clone(max_line_length=998)


def _flat(message: Message) -> bytes:
    """A compat32 message as bytes, its headers not folded below RFC 5322's 998 characters (a folded
    `List-Unsubscribe` URL reads back with a leading space in some parsers)."""
    out = io.BytesIO()
    email.generator.BytesGenerator(out, policy=_UNFOLDED).flatten(message)
    return out.getvalue()


async def send_recorded(client: aiosmtplib.SMTP, message: Message, recipient: str,
                        record: Callable[[], Awaitable[None]], seconds: float) -> None:
    """Send one message so that it goes at most once whatever happens to this process, and at least once
    if it is run again after a crash: the whole message is written but its final `.` (the point at which the
    server takes responsibility for it) is held back until `record` has committed it as sent. Dying before
    the commit leaves the server with an unfinished message, which it drops with the connection; dying after
    it, the message completes as soon as the `.` is out. A server refusing the end of the data still raises
    (the caller then records the failure).

    Uses aiosmtplib's protocol for the DATA exchange (pinned in the lock file)."""
    from aiosmtplib.email import flatten_message
    from aiosmtplib.protocol import PERIOD_REGEX

    try:
        sender = parseaddr(str(message["From"]))[1]
        response = await client.mail(sender, timeout=seconds)
        response = await client.rcpt(recipient, timeout=seconds)
        protocol = client.protocol
        assert protocol is not None and protocol._command_lock is not None
        body = flatten_message(message) if isinstance(message, EmailMessage) else _flat(message)
        body = PERIOD_REGEX.sub(b"..", body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        async with protocol._command_lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            response = await protocol.read_response(timeout=seconds)
            if response.code != 354:
                raise MailServerError("rejected" if response.code >= 500 else "unreachable",
                                      f"{response.code} {response.message}")
            protocol.write(body)
            await record()
            protocol._response_pending = True
            protocol.write(b".\r\n")
            response = await protocol.read_response(timeout=seconds)
        if response.code != 250:
            raise MailServerError("rejected" if response.code >= 500 else "unreachable",
                                  f"{response.code} {response.message}")
    except aiosmtplib.SMTPResponseException as exc:
        raise MailServerError("rejected" if 500 <= exc.code < 600 else "unreachable",
                              f"{exc.code} {exc.message}") from exc
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        raise MailServerError(_kind_of(exc), str(exc)) from exc
