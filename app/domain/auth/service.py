"""Sign-up, password login, refresh-token rotation with reuse detection, and bearer resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy import Text, and_, bindparam, cast, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import ORG_SETTING, set_org
from app.domain.audit import service as audit
from app.domain.auth import lockout
from app.domain.auth import secrets as sec
from app.domain.auth import users as user_service
from app.domain.auth.models import ApiKey, ApiKeyPrefix, LoginEmail, RefreshToken, Role, User
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import SignupRequest, TokenPair
from app.domain.errors import Forbidden, Unauthorized, ValidationFailed
from app.domain.orgs import service as org_service
from app.domain.orgs.models import Org
from app.domain.pipelines import service as pipelines
from app.ids import new_id
from app.settings import Settings


class InvalidCredentials(Unauthorized):
    """Keeps the `login.failed` audit row written before it."""

    slug, title = "invalid-credentials", "Invalid credentials"
    keep_changes = True


class PasswordExpired(Unauthorized):
    """The organisation's `password_max_age_days` has passed since the password was set: logins and access
    tokens are refused until `POST /v1/me/password` sets a new one."""

    slug, title = "password-expired", "Password expired"
    keep_changes = True


class RefreshTokenReused(Unauthorized):
    """A rotated refresh token came back: someone holds a copy. The family is revoked and stays revoked."""

    slug, title = "refresh-token-reused", "Refresh token reused"
    keep_changes = True


def _now() -> datetime:
    return datetime.now(UTC)


async def provision_org(session: AsyncSession, settings: Settings, org_name: str, email: str, name: str,
                        password: str | None) -> tuple[Org, User]:
    """A new organisation with its first user, the owner; the transaction acts for it from here on."""
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


# The login email names the org (a global lookup, readable before the org is known); the same statement sets
# it for the transaction, so that the user row (a tenant table) can be read next.
_ORG_OF_EMAIL = (
    select(LoginEmail.org_id, LoginEmail.user_id, func.set_config(ORG_SETTING, cast(LoginEmail.org_id, Text), True))
    .where(LoginEmail.email == bindparam("email"))
)


async def _user_by_email(session: AsyncSession, email: str) -> User | None:
    found = (await session.execute(_ORG_OF_EMAIL, {"email": email})).first()
    return await session.get(User, (found.org_id, found.user_id)) if found is not None else None


def password_expired(max_age_days: int | None, changed_at: datetime | None, created_at: datetime) -> bool:
    """Whether a password set at `changed_at` (never changed: when the user was created) is too old."""
    if max_age_days is None:
        return False
    return (changed_at or created_at) + timedelta(days=max_age_days) <= _now()


async def _login_failed(session: AsyncSession, user: User | None, reason: str) -> None:
    if user is not None:
        await audit.record(session, audit.ANONYMOUS, "login.failed", "user", user.id, {"reason": [None, reason]},
                           org_id=user.org_id)


async def _check_password(session: AsyncSession, settings: Settings, redis: Redis | None, email: str,
                          password: str, user: User | None = None) -> User:
    """The user whose password this is, unless the account or address is locked (429) or it is wrong (401);
    either way a `login.failed` row is written for a known account."""
    email = email.strip().lower()
    ip = audit.request_origin().ip
    if user is None:
        user = await _user_by_email(session, email)
    lock = await lockout.current_lock(redis, settings, email, ip)
    if lock is not None:
        await _login_failed(session, user, "locked")
        raise lock.error()
    ok = sec.verify_password(settings, user.password_hash if user else None, password)
    if not ok or user is None or not user.active or user.deleted_at is not None:
        await lockout.failed(redis, settings, email, ip)
        await _login_failed(session, user, "invalid_credentials")
        raise InvalidCredentials("Wrong email or password", error="invalid_grant")
    await lockout.succeeded(redis, email)
    return user


async def login(session: AsyncSession, settings: Settings, email: str, password: str,
                redis: Redis | None = None) -> TokenPair:
    """Password login. Locked (too many failures): 429; wrong: 401; expired password: 401 `password_expired`."""
    user = await _check_password(session, settings, redis, email, password)
    org = await org_service.get(session, user.org_id)
    if password_expired(org.password_max_age_days, user.password_changed_at, user.created_at):
        await _login_failed(session, user, "password_expired")
        raise PasswordExpired("Your password has expired; set a new one with POST /v1/me/password",
                              error="password_expired", code="password_expired")
    # Bookkeeping, not an edit: neither `version` (the ETag) nor `updated_at` moves.
    await session.execute(
        update(User).where(User.org_id == user.org_id, User.id == user.id)
        .values(last_login_at=_now(), updated_at=User.updated_at).execution_options(synchronize_session=False)
    )
    await audit.record(session, Principal.for_user(user.org_id, user.id, user.role), "login.succeeded", "user",
                       user.id)
    return await issue_tokens(session, settings, user)


async def change_password(session: AsyncSession, settings: Settings, redis: Redis | None, who: Principal | None,
                          email: str | None, current: str, new: str) -> User:
    """Set a new password, proven by the current one. The caller is the user of the access token (even one whose
    password expired), or, without a token, the user of `email`. A wrong current password counts as a failed
    login (lockout, `login.failed`). Every refresh token of the user is revoked: each device, this one too, logs
    in again with the new password once its access token expires."""
    if who is not None:
        if who.type != "user":
            raise Forbidden("Only users have passwords")
        user = await user_service.get(session, who.org_id, who.id)
    elif email:
        user = await _user_by_email(session, email.strip().lower())
    else:
        raise Unauthorized("Send an access token, or the account's email with the current password")
    user = await _check_password(session, settings, redis, email or (user.email if user else ""), current, user)
    if sec.verify_password(settings, user.password_hash, new):
        raise ValidationFailed("the new password must differ from the current one", loc=("body", "new"))
    before = user.password_changed_at
    user.password_hash = sec.hash_password(settings, new)
    user.password_changed_at = _now()
    await user_service.end_sessions(session, user)  # whoever else held a session logs in with the new password
    await session.flush()
    await audit.record(session, Principal.for_user(user.org_id, user.id, user.role), "update", "user", user.id,
                       {"password_changed_at": [before.isoformat() if before else None,
                                                user.password_changed_at.isoformat()]})
    return user


async def _find_refresh_token(session: AsyncSession, raw: str) -> RefreshToken:
    org_id, token_id, secret = sec.parse_refresh_token(raw)
    await set_org(session, org_id)
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
    await audit.record(session, Principal.for_user(user.org_id, user.id, user.role), "token.refreshed", "user",
                       user.id)
    return await issue_tokens(session, settings, user, family_id=token.family_id)


async def logout(session: AsyncSession, raw: str) -> None:
    token = await _find_refresh_token(session, raw)
    await _revoke_family(session, token)


_USER_STATE = (
    select(User.role, User.active, User.deleted_at, User.password_changed_at, User.created_at,
           Org.password_max_age_days)
    .join(Org, Org.id == User.org_id)
    .where(User.org_id == bindparam("org_id"), User.id == bindparam("user_id"))
)


async def resolve_bearer(session: AsyncSession, settings: Settings, raw: str, ip: str | None = None,
                         allow_expired_password: bool = False) -> Principal:
    """Turn an `Authorization: Bearer` value into a principal, in one round trip. `ip` (the client's address)
    is recorded on API keys and personal access tokens as `last_used_ip`. An access token of a user whose
    password expired is refused (401 `password_expired`) unless `allow_expired_password`."""
    if raw.startswith(sec.API_KEY_PREFIX):
        return await _resolve_api_key(session, settings, raw, ip)
    if raw.startswith(sec.REFRESH_PREFIX):
        raise Unauthorized("A refresh token cannot be used as an access token")
    org_id, user_id = sec.decode_access_token(settings, raw)
    await set_org(session, org_id)
    row = (await session.execute(_USER_STATE, {"org_id": org_id, "user_id": user_id})).first()
    if row is None or not row.active or row.deleted_at is not None:
        raise Unauthorized("User is deactivated")
    if not allow_expired_password and password_expired(row.password_max_age_days, row.password_changed_at,
                                                       row.created_at):
        raise PasswordExpired("Your password has expired; set a new one with POST /v1/me/password",
                              error="password_expired", code="password_expired")
    return Principal.for_user(org_id, user_id, row.role)


# Built once (every API-key request runs them): the prefix is a bound value. The prefix (a global lookup)
# names the org and sets it for the transaction in one statement; row-level security admits the key and its
# creator (tenant tables) only then, so they are read in a second statement. The key's creator comes along:
# their current role bounds the key, and their deactivation disables it at once.
_ORG_OF_PREFIX = (
    select(ApiKeyPrefix.org_id, func.set_config(ORG_SETTING, cast(ApiKeyPrefix.org_id, Text), True))
    .where(ApiKeyPrefix.prefix == bindparam("prefix"))
)
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
    found = (await session.execute(_ORG_OF_PREFIX, {"prefix": prefix})).first()
    key = None if found is None else (await session.execute(_KEY_BY_PREFIX, {"prefix": prefix})).first()
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
