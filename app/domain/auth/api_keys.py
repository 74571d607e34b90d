"""API keys and personal access tokens: a random secret shown once, stored as a SHA-256 digest, scoped and
revocable; found by their public prefix (one global lookup table for both)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import service as audit
from app.domain.auth import secrets as sec
from app.domain.auth.models import ApiKey, ApiKeyPrefix
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import ApiKeyCreate, PersonalTokenCreate
from app.domain.auth.scopes import grants
from app.domain.errors import Forbidden, NotFound, ValidationFailed
from app.domain.pagination import Page, PageRequest, keyset_page

SORTS = {"created_at": ApiKey.created_at, "name": ApiKey.name}


def check_scopes(actor: Principal, wanted: list[str]) -> None:
    """A credential never hands out more than it holds: every wanted scope must be granted to the caller."""
    missing = sorted({s for s in wanted if not grants(actor.scopes, s)})
    if missing:
        raise Forbidden(f"You cannot grant scopes you do not hold: {', '.join(missing)}", missing_scopes=missing)


async def create(session: AsyncSession, actor: Principal, body: ApiKeyCreate | PersonalTokenCreate,
                 kind: str = "org") -> tuple[ApiKey, str]:
    """An org key (`kind` org) or the caller's personal access token (`kind` personal)."""
    if actor.user_id is None:
        raise ValidationFailed("API keys are created on behalf of a user")
    if kind == "personal" and actor.type != "user":
        raise Forbidden("Personal access tokens belong to users; call with a user's access token")
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise ValidationFailed("expires_at must be in the future", loc=("body", "expires_at"))
    check_scopes(actor, body.scopes)
    full, prefix, secret = sec.new_api_key()
    key = ApiKey(
        org_id=actor.org_id, kind=kind, name=body.name, prefix=prefix, secret_hash=sec.digest(secret),
        scopes=sorted(set(body.scopes)), created_by=actor.user_id, expires_at=body.expires_at,
    )
    session.add(key)
    await session.flush()
    session.add(ApiKeyPrefix(prefix=prefix, org_id=key.org_id, api_key_id=key.id))
    await session.flush()
    await audit.record(session, actor, "api_key.created", "api_key", key.id,
                       {"name": [None, key.name], "scopes": [None, key.scopes]})
    return key, full


def _live(org_id: UUID, kind: str, user_id: UUID | None) -> list[Any]:
    where = [ApiKey.org_id == org_id, ApiKey.kind == kind, ApiKey.deleted_at.is_(None)]
    if user_id is not None:
        where.append(ApiKey.created_by == user_id)
    return where


async def get(session: AsyncSession, org_id: UUID, key_id: UUID, kind: str = "org",
              user_id: UUID | None = None) -> ApiKey:
    """An org key, or (`kind` personal, `user_id`) that user's personal access token."""
    key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id, *_live(org_id, kind, user_id)))
    if key is None:
        raise NotFound("API key not found" if kind == "org" else "Token not found")
    return key


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest, kind: str = "org",
                    user_id: UUID | None = None) -> Page[ApiKey]:
    stmt = select(ApiKey).where(*_live(org_id, kind, user_id))
    return await keyset_page(session, stmt, page, SORTS, ApiKey.id)


async def revoke(session: AsyncSession, org_id: UUID, key_id: UUID, kind: str = "org",
                 user_id: UUID | None = None) -> None:
    key = await get(session, org_id, key_id, kind, user_id)
    now = datetime.now(UTC)
    key.revoked_at = key.revoked_at or now
    key.deleted_at = now
    await session.flush()
