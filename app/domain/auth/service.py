"""Sign-up, password login, refresh-token rotation with reuse detection, and bearer resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth import secrets as sec
from app.domain.auth import users as user_service
from app.domain.auth.models import ApiKey, ApiKeyPrefix, LoginEmail, RefreshToken, Role, User
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import SignupRequest, TokenPair
from app.domain.errors import Unauthorized
from app.domain.orgs import service as org_service
from app.domain.orgs.models import Org
from app.domain.pipelines import service as pipelines
from app.ids import new_id
from app.settings import Settings


class InvalidCredentials(Unauthorized):
    slug, title = "invalid-credentials", "Invalid credentials"


class RefreshTokenReused(Unauthorized):
    """A rotated refresh token came back: someone holds a copy. The family is revoked and stays revoked."""

    slug, title = "refresh-token-reused", "Refresh token reused"
    keep_changes = True


def _now() -> datetime:
    return datetime.now(UTC)


async def provision_org(session: AsyncSession, settings: Settings, org_name: str, email: str, name: str,
                        password: str | None) -> tuple[Org, User]:
    """A new organisation with its first user, the owner."""
    org = await org_service.create(session, org_name)
    owner = await user_service.create(
        session, settings, org.id, email=email, name=name, role=Role.owner, password=password
    )
    await pipelines.create_default(session, org.id, org.default_currency)
    return org, owner


async def signup(session: AsyncSession, settings: Settings, body: SignupRequest) -> tuple[Org, User, TokenPair]:
    org, owner = await provision_org(session, settings, body.org_name, body.email, body.name, body.password)
    return org, owner, await issue_tokens(session, settings, owner)


async def issue_tokens(session: AsyncSession, settings: Settings, user: User,
                       family_id: UUID | None = None) -> TokenPair:
    now, secret = _now(), sec.new_secret()
    token = RefreshToken(
        org_id=user.org_id, id=new_id(), user_id=user.id, family_id=family_id or new_id(),
        secret_hash=sec.digest(secret), created_at=now,
        expires_at=now + timedelta(days=settings.refresh_token_ttl_days),
    )
    session.add(token)
    await session.flush()
    return TokenPair(
        access_token=sec.encode_access_token(settings, user.org_id, user.id, now),
        refresh_token=sec.format_refresh_token(user.org_id, token.id, secret),
        expires_in=settings.access_token_ttl_seconds,
    )


async def login(session: AsyncSession, settings: Settings, email: str, password: str) -> TokenPair:
    email = email.strip().lower()
    user = await session.scalar(
        select(User).join(LoginEmail, and_(LoginEmail.org_id == User.org_id, LoginEmail.user_id == User.id))
        .where(LoginEmail.email == email)
    )
    ok = sec.verify_password(settings, user.password_hash if user else None, password)
    if not ok or user is None or not user.active or user.deleted_at is not None:
        raise InvalidCredentials("Wrong email or password", error="invalid_grant")
    # Bookkeeping, not an edit: neither `version` (the ETag) nor `updated_at` moves.
    await session.execute(
        update(User).where(User.org_id == user.org_id, User.id == user.id)
        .values(last_login_at=_now(), updated_at=User.updated_at).execution_options(synchronize_session=False)
    )
    return await issue_tokens(session, settings, user)


async def _find_refresh_token(session: AsyncSession, raw: str) -> RefreshToken:
    org_id, token_id, secret = sec.parse_refresh_token(raw)
    token = await session.scalar(
        select(RefreshToken).where(RefreshToken.org_id == org_id, RefreshToken.id == token_id).with_for_update()
    )
    if token is None or not sec.same_digest(secret, token.secret_hash):
        raise Unauthorized("Invalid refresh token", error="invalid_grant")
    return token


async def _revoke_family(session: AsyncSession, token: RefreshToken) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.org_id == token.org_id, RefreshToken.family_id == token.family_id,
               RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def refresh(session: AsyncSession, settings: Settings, raw: str) -> TokenPair:
    token = await _find_refresh_token(session, raw)
    if token.revoked_at is not None:
        raise Unauthorized("Refresh token revoked", error="invalid_grant")
    if token.rotated_at is not None:
        await _revoke_family(session, token)
        raise RefreshTokenReused(
            "This refresh token was already used; every token of this login is now revoked. Log in again.",
            error="invalid_grant",
        )
    if token.expires_at <= _now():
        raise Unauthorized("Refresh token expired", error="invalid_grant")
    user = await session.get(User, (token.org_id, token.user_id))
    if user is None or not user.active or user.deleted_at is not None:
        raise Unauthorized("User is deactivated", error="invalid_grant")
    token.rotated_at = _now()
    return await issue_tokens(session, settings, user, family_id=token.family_id)


async def logout(session: AsyncSession, raw: str) -> None:
    token = await _find_refresh_token(session, raw)
    await _revoke_family(session, token)


_USER_STATE = select(User.role, User.active, User.deleted_at).where(User.org_id == bindparam("org_id"),
                                                                   User.id == bindparam("user_id"))


async def resolve_bearer(session: AsyncSession, settings: Settings, raw: str, ip: str | None = None) -> Principal:
    """Turn an `Authorization: Bearer` value into a principal, in one round trip. `ip` (the client's address)
    is recorded on API keys and personal access tokens as `last_used_ip`."""
    if raw.startswith(sec.API_KEY_PREFIX):
        return await _resolve_api_key(session, settings, raw, ip)
    if raw.startswith(sec.REFRESH_PREFIX):
        raise Unauthorized("A refresh token cannot be used as an access token")
    org_id, user_id = sec.decode_access_token(settings, raw)
    row = (await session.execute(_USER_STATE, {"org_id": org_id, "user_id": user_id})).first()
    if row is None or not row.active or row.deleted_at is not None:
        raise Unauthorized("User is deactivated")
    return Principal.for_user(org_id, user_id, row.role)


# Built once (every API-key request runs it): the prefix is a bound value. The key's creator comes along in
# the same statement: their current role bounds the key, and their deactivation disables it at once.
_KEY_BY_PREFIX = (
    select(ApiKey.org_id, ApiKey.id, ApiKey.kind, ApiKey.secret_hash, ApiKey.scopes, ApiKey.created_by,
           ApiKey.revoked_at, ApiKey.expires_at, ApiKey.last_used_at, ApiKey.last_used_ip,
           User.role.label("creator_role"), User.active.label("creator_active"),
           User.deleted_at.label("creator_deleted_at"))
    .join(ApiKeyPrefix, and_(ApiKeyPrefix.org_id == ApiKey.org_id, ApiKeyPrefix.api_key_id == ApiKey.id))
    .join(User, and_(User.org_id == ApiKey.org_id, User.id == ApiKey.created_by))
    .where(ApiKeyPrefix.prefix == bindparam("prefix"))
)

# An org key never acts above admin: adding owners, or changing an owner, takes an owner in person.
ORG_KEY_MAX_ROLE = Role.admin


async def _resolve_api_key(session: AsyncSession, settings: Settings, raw: str, ip: str | None) -> Principal:
    prefix, secret = sec.parse_api_key(raw)
    key = (await session.execute(_KEY_BY_PREFIX, {"prefix": prefix})).first()
    if key is None or not sec.same_digest(secret, key.secret_hash):
        raise Unauthorized("Invalid API key")
    now = _now()
    if key.revoked_at is not None:
        raise Unauthorized("API key revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized("API key expired")
    if not key.creator_active or key.creator_deleted_at is not None:
        raise Unauthorized("The user this key belongs to is deactivated")
    stale = key.last_used_at is None or key.last_used_at < now - timedelta(seconds=settings.api_key_touch_seconds)
    if stale or (ip is not None and ip != key.last_used_ip):
        await _touch_api_key(session, key.org_id, key.id, settings.api_key_touch_seconds, ip)
    role = Role(key.creator_role)
    if key.kind == "personal":  # acts as its user, with the token's scopes
        return Principal(key.org_id, "user", key.created_by, role, frozenset(key.scopes), key.created_by)
    if role.at_least(ORG_KEY_MAX_ROLE):
        role = ORG_KEY_MAX_ROLE
    return Principal(key.org_id, "api_key", key.id, role, frozenset(key.scopes), key.created_by)


async def _touch_api_key(session: AsyncSession, org_id: UUID, key_id: UUID, every_seconds: int,
                         ip: str | None) -> None:
    """Record use at most every `every_seconds` (and whenever the address changes), never waiting on a
    concurrent request's row lock."""
    stale = or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < _now() - timedelta(seconds=every_seconds))
    if ip is not None:
        stale = or_(stale, ApiKey.last_used_ip.is_distinct_from(ip))
    locked = (
        select(ApiKey.id).where(ApiKey.org_id == org_id, ApiKey.id == key_id, stale)
        .with_for_update(skip_locked=True).scalar_subquery()
    )
    values: dict[str, object] = {"last_used_at": _now(), "updated_at": ApiKey.updated_at}
    if ip is not None:
        values["last_used_ip"] = ip[:64]
    await session.execute(
        update(ApiKey).where(ApiKey.org_id == org_id, ApiKey.id == locked).values(**values)
        .execution_options(synchronize_session=False)
    )
