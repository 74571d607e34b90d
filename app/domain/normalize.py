"""Normalisers shared by every area: phone numbers to E.164, names and free text trimmed."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


@lru_cache(maxsize=4096)  # pure; an import reads each number twice (dedupe key, then the record)
def normalize_phone(raw: str, region: str | None) -> str:
    """E.164 (`+4930123456`), reading national numbers in the org's default region. ValueError if not a phone."""
    text = raw.strip()
    if not text or len(text) > 40:
        raise ValueError("not a phone number")
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        raise ValueError(
            "not a phone number" if region or text.startswith("+")
            else "not a phone number (national numbers need the org's default_phone_region, or use +<country code>)"
        ) from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number for its country")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) > 16:  # "+" and at most 15 digits (ITU-T E.164)
        raise ValueError("not a phone number: E.164 allows at most 15 digits")
    return e164
