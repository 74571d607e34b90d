"""Text from the public internet made safe to keep and to hand on: plain text without markup, web URLs
only, spreadsheet cells that cannot turn into formulas."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

# A complete tag, end tag, comment, declaration or processing instruction. `[^<>]` keeps the scan linear
# (Python 3.11's html.parser is quadratic on unclosed tags: 0.3 s for one 5,000-character value).
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What an HTML parser would still read as the start of a tag, an end tag, a comment or a declaration.
_MARKUP_OPENER = re.compile(r"(?<!<)<+(?=[A-Za-z/!?])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def plain_text(value: str) -> str:
    """Plain text only, whatever arrives: tags and comments removed, character references decoded, control
    characters removed, outer whitespace trimmed. The result holds no `<` that an HTML parser would take for
    the start of markup (an unclosed tag, a nested `<<b>script>` or an encoded `&lt;script&gt;` keep their
    words and lose their `<`), so it stays inert wherever it is shown. Linear in the length of `value`."""
    text = html.unescape(_TAG.sub("", value))
    return _MARKUP_OPENER.sub("", _CONTROL.sub("", text)).strip()


def web_url(value: str | None) -> str | None:
    """`value` when it is an absolute http(s) URL with a host, else None (`javascript:`, `data:`,
    `vbscript:`, relative or malformed URLs are not kept)."""
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    return value if parts.scheme.lower() in ("http", "https") and host else None


def spreadsheet_safe(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text: a value that starts like a formula (`=`, `+`, `-`, `@`,
    tab, carriage return) gets a leading `'` (OWASP's advice). Plain numbers such as `-5` or `+4930123456`
    stay as they are: they cannot hold a formula."""
    if value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
