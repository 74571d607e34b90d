"""Secrets the CRM must use in clear later (mailbox passwords, OAuth refresh tokens) are stored sealed:
Fernet (AES-128-CBC + HMAC-SHA256) with the keys of `CRM_SECRET_KEYS`. The first key seals; every key opens,
so a key is rotated by putting the new one first and re-sealing (`crm reseal`) before the old one is removed.
Without configured keys, one key is derived from the JWT secret (HKDF-SHA256), so dev and test need nothing."""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.domain.errors import Conflict
from app.settings import Settings


class Unsealable(Conflict):
    """A sealed value no configured key opens (the key that sealed it was removed): the API answers 409 with
    what to do; the worker records the mailbox, text or call as refused rather than trying again."""


UNREADABLE = ("a stored secret cannot be read: no configured key (CRM_SECRET_KEYS) opens it any more; "
              "enter it again")


@lru_cache(maxsize=8)
def _box(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def _keys(settings: Settings) -> tuple[str, ...]:
    if settings.secret_keys:
        return tuple(k.get_secret_value() for k in settings.secret_keys)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"crm sealed secrets v1").derive(
        settings.jwt_key().encode())
    return (base64.urlsafe_b64encode(derived).decode(),)


def seal(settings: Settings, values: dict[str, Any]) -> str:
    return _box(_keys(settings)).encrypt(json.dumps(values, separators=(",", ":")).encode()).decode()


def unseal(settings: Settings, token: str) -> dict[str, Any]:
    try:
        return json.loads(_box(_keys(settings)).decrypt(token.encode()))  # type: ignore[no-any-return]
    except InvalidToken as exc:
        raise Unsealable(UNREADABLE) from exc


def reseal(settings: Settings, token: str) -> str:
    """The same secret sealed with the first key (after a rotation)."""
    try:
        return _box(_keys(settings)).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise Unsealable(UNREADABLE) from exc
