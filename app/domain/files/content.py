"""What an upload is, decided from its bytes (never from what the client says), and a name safe to store and to
send back in `Content-Disposition` (RFC 6266)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import quote

import puremagic

from app.domain.errors import PayloadTooLarge

HEAD = 8192  # bytes looked at to identify the content
OCTET_STREAM = "application/octet-stream"
TEXT_TYPES = re.compile(r"^(text/[a-z0-9.+-]+|application/([a-z0-9.-]+\+)?(json|xml|csv|yaml|x-yaml|javascript|"
                        r"x-ndjson|ld\+json|rtf))$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]{1,127}/[a-z0-9!#$&^_.+-]{1,127}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_EDGES = re.compile(r"^[\s.]+|[\s.]+$")  # blanks and dots around a name (".." and " .bashrc")


class Intake:
    """Counts, hashes and keeps the head of a stream as it passes; over `limit` bytes it raises 413."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size, self.digest, self.head = limit, 0, hashlib.sha256(), bytearray()

    def take(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(f"a file is at most {self.limit >> 20} MiB (CRM_MAX_FILE_MB)")
        self.digest.update(chunk)
        if len(self.head) < HEAD:
            self.head += chunk[:HEAD - len(self.head)]
        return chunk

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()


def sniff(head: bytes, filename: str, declared: str | None) -> str:
    """The content type: by signature (a PNG named `.html` and declared `text/html` is image/png); text that no
    signature identifies takes the declared type when that is a text type (CSV, Markdown), else text/plain;
    anything else is application/octet-stream."""
    found = _by_signature(head, filename)
    if found:
        return found
    if _looks_like_text(head):
        media = (declared or "").split(";", 1)[0].strip().lower()
        return media if TEXT_TYPES.match(media) else "text/plain"
    return OCTET_STREAM


def _by_signature(head: bytes, filename: str) -> str | None:
    if not head:
        return None
    try:
        found = puremagic.from_string(bytes(head), mime=True, filename=filename or None)
    except (puremagic.PureError, ValueError):
        return None
    found = (found or "").strip().lower()
    return found if _MEDIA_TYPE.match(found) else None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a character cut at the end of the head is fine
            return False
    return True


def safe_filename(raw: str | None) -> str:
    """The name as given, minus any directory part, control characters and surrounding dots and blanks;
    at most 255 characters (the extension kept); "file" when nothing is left."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name)
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cs", "Co", "Cn", "Zl", "Zp"))
    name = _EDGES.sub("", name)
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:254 - len(ext)] + "." + ext) if dot and len(ext) <= 16 else name[:255]
        name = _EDGES.sub("", name)
    return name or "file"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name (quoted, nothing that could end or escape it) and the real one
    as RFC 5987 `filename*` (RFC 6266 section 4.3)."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = re.sub(r'[^A-Za-z0-9 !#$&+,.=@^_`{}~()\[\]\'-]', "_", fallback).strip() or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
