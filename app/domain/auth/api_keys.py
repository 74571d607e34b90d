"""API keys: a random secret shown once, stored as a SHA-256 digest, scoped and revocable."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.audit import service as audit
from app.domain.auth import secrets as sec
from app.domain.auth.models import ApiKey, ApiKeyPrefix
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import ApiKeyCreate
from app.domain.errors import NotFound, ValidationFailed
from app.domain.pagination import Page, PageRequest, keyset_page

SORTS = {"created_at": ApiKey.created_at, "name": ApiKey.name}


async def create(session: AsyncSession, actor: Principal, body: ApiKeyCreate) -> tuple[ApiKey, str]:
    if actor.user_id is None:
        raise ValidationFailed("API keys are created on behalf of a user")
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise ValidationFailed("expires_at must be in the future", loc=("body", "expires_at"))
    full, prefix, secret = sec.new_api_key()
    key = ApiKey(
        org_id=actor.org_id, name=body.name, prefix=prefix, secret_hash=sec.digest(secret),
        scopes=sorted(set(body.scopes)), created_by=actor.user_id, expires_at=body.expires_at,
    )
    session.add(key)
    await session.flush()
    session.add(ApiKeyPrefix(prefix=prefix, org_id=key.org_id, api_key_id=key.id))
    await session.flush()
    await audit.record(session, actor, "api_key.created", "api_key", key.id,
                       {"name": [None, key.name], "scopes": [None, key.scopes]})
    return key, full


async def get(session: AsyncSession, org_id: UUID, key_id: UUID) -> ApiKey:
    key = await session.scalar(
        select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.id == key_id, ApiKey.deleted_at.is_(None))
    )
    if key is None:
        raise NotFound("API key not found")
    return key


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest) -> Page[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.deleted_at.is_(None))
    return await keyset_page(session, stmt, page, SORTS, ApiKey.id)


async def revoke(session: AsyncSession, org_id: UUID, key_id: UUID) -> None:
    key = await get(session, org_id, key_id)
    now = datetime.now(UTC)
    key.revoked_at = key.revoked_at or now
    key.deleted_at = now
    await session.flush()
