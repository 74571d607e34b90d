"""Passwords (argon2id), opaque tokens (random secret, stored as SHA-256) and JWT access tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from jose import JWTError, jwt

from app.domain.errors import Unauthorized
from app.settings import Settings

MIN_PASSWORD_LENGTH = 10


def password_hasher(settings: Settings) -> PasswordHasher:
    return PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib)


def hash_password(settings: Settings, password: str) -> str:
    return password_hasher(settings).hash(password)


_DUMMY_HASHES: dict[tuple[int, int], str] = {}


def verify_password(settings: Settings, password_hash: str | None, password: str) -> bool:
    """Constant-ish time: an unknown user still pays for one argon2 verification."""
    hasher = password_hasher(settings)
    if password_hash is None:
        key = (settings.argon2_time_cost, settings.argon2_memory_kib)
        if key not in _DUMMY_HASHES:
            _DUMMY_HASHES[key] = hasher.hash(secrets.token_urlsafe(16))
        password_hash, password = _DUMMY_HASHES[key], password + "\0"
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def same_digest(secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(digest(secret), stored)


# Refresh tokens: "crt_" + org id (32 hex) + token id (32 hex) + secret. The ids make the lookup a
# primary-key read; only the secret's hash is stored.
REFRESH_PREFIX = "crt_"


def format_refresh_token(org_id: UUID, token_id: UUID, secret: str) -> str:
    return f"{REFRESH_PREFIX}{org_id.hex}{token_id.hex}{secret}"


def parse_refresh_token(token: str) -> tuple[UUID, UUID, str]:
    if not token.startswith(REFRESH_PREFIX) or len(token) < len(REFRESH_PREFIX) + 64 + 32 or len(token) > 200:
        raise Unauthorized("Invalid refresh token")
    body = token[len(REFRESH_PREFIX):]
    try:
        return UUID(hex=body[:32]), UUID(hex=body[32:64]), body[64:]
    except ValueError:
        raise Unauthorized("Invalid refresh token") from None


# API keys: "crm_" + 12-char public prefix (global lookup) + "_" + secret.
API_KEY_PREFIX = "crm_"
API_KEY_PREFIX_LEN = 12


def new_api_key() -> tuple[str, str, str]:
    """-> (full key shown once, public prefix, secret)."""
    prefix, secret = secrets.token_hex(API_KEY_PREFIX_LEN // 2), new_secret()
    return f"{API_KEY_PREFIX}{prefix}_{secret}", prefix, secret


def parse_api_key(token: str) -> tuple[str, str]:
    start = len(API_KEY_PREFIX)
    prefix, sep, secret = token[start:start + API_KEY_PREFIX_LEN], token[start + API_KEY_PREFIX_LEN:start + API_KEY_PREFIX_LEN + 1], token[start + API_KEY_PREFIX_LEN + 1:]
    if sep != "_" or len(prefix) != API_KEY_PREFIX_LEN or not 20 <= len(secret) <= 100:
        raise Unauthorized("Invalid API key")
    return prefix, secret


def encode_access_token(settings: Settings, org_id: UUID, user_id: UUID, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "iss": settings.jwt_issuer,
        "sub": str(user_id),
        "org": str(org_id),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_ttl_seconds)).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, settings.jwt_key(), algorithm=settings.jwt_algorithm)


def decode_access_token(settings: Settings, token: str) -> tuple[UUID, UUID]:
    """-> (org_id, user_id). Only the configured algorithm is accepted (never `none`)."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_key(),
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
        if claims.get("typ") != "access":
            raise Unauthorized("Not an access token")
        return UUID(claims["org"]), UUID(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Access token expired") from None
    except (JWTError, KeyError, ValueError, TypeError):
        raise Unauthorized("Invalid access token") from None
