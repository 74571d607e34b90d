"""Users of an organisation: invite, change, deactivate, with the role rules of the house."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain import locks
from app.domain.audit import service as audit
from app.domain.auth import secrets as sec
from app.domain.auth.models import LoginEmail, RefreshToken, Role, User
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import UserInvite, UserUpdate
from app.domain.auth.scopes import ALL
from app.domain.concurrency import check_version
from app.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.domain.pagination import Page, PageRequest, keyset_page
from app.settings import Settings

SORTS = {"created_at": User.created_at, "updated_at": User.updated_at, "name": User.name, "email": User.email}


async def create(session: AsyncSession, settings: Settings, org_id: UUID, *, email: str, name: str, role: Role,
                 password: str | None, manager_id: UUID | None = None) -> User:
    if manager_id is not None:
        await _require_manager(session, org_id, manager_id, loc=("body", "manager_id"))
    user = User(
        org_id=org_id, email=email, name=name, role=role.value, manager_id=manager_id,
        password_hash=sec.hash_password(settings, password) if password else None,
        password_changed_at=datetime.now(UTC) if password else None,
    )
    session.add(user)
    await session.flush()
    await _claim_email(session, user, email)
    return user


async def _claim_email(session: AsyncSession, user: User, email: str) -> None:
    claimed = await session.scalar(
        insert(LoginEmail).values(email=email, org_id=user.org_id, user_id=user.id)
        .on_conflict_do_nothing(index_elements=[LoginEmail.email]).returning(LoginEmail.email)
    )
    if claimed is None:
        raise Conflict(f"A user with email {email} already exists", field="email")


async def get(session: AsyncSession, org_id: UUID, user_id: UUID) -> User:
    user = await session.scalar(select(User).where(User.org_id == org_id, User.id == user_id,
                                                   User.deleted_at.is_(None)))
    if user is None:
        raise NotFound("User not found")
    return user


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest, active: bool | None = None) -> Page[User]:
    stmt = select(User).where(User.org_id == org_id, User.deleted_at.is_(None))
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    return await keyset_page(session, stmt, page, SORTS, User.id)


def _grantable(actor: Principal, role: Role) -> None:
    """No one hands out a role above their own (for a key: its creator's, at most admin); owners make owners."""
    if role is Role.owner and actor.role is not Role.owner:
        raise Forbidden("Only an owner can make another user an owner")
    if not actor.role.at_least(role):
        raise Forbidden(f"Your role ({actor.role.value}) cannot grant the role {role.value}")


def _may_set_passwords(actor: Principal) -> None:
    """A password is a login with every scope of the user's role: a credential limited to some scopes must
    not mint one."""
    if ALL not in actor.scopes:
        raise Forbidden("Setting a password needs a credential with the scope '*' (a user's own login)",
                        required_scope=ALL)


async def invite(session: AsyncSession, settings: Settings, actor: Principal, body: UserInvite) -> User:
    _grantable(actor, body.role)
    if body.password is not None:
        _may_set_passwords(actor)
    user = await create(session, settings, actor.org_id, email=body.email, name=body.name, role=body.role,
                        password=body.password, manager_id=body.manager_id)
    await audit.record(session, actor, "create", "user", user.id,
                       {k: [None, v] for k, v in _audited(user).items() if v is not None})
    return user


SELF_SERVICE_FIELDS = {"name", "out_of_office"}


async def update_user(session: AsyncSession, actor: Principal, user_id: UUID, patch: UserUpdate,
                      expected_version: int | None) -> User:
    changes = patch.model_dump(exclude_unset=True)
    if changes.get("role") is not None:
        await locks.org_exclusive(session, actor.org_id)  # role changes one at a time: an owner always remains
    user = await get(session, actor.org_id, user_id)
    is_admin = actor.role.at_least(Role.admin)
    if not is_admin and not (actor.type == "user" and actor.id == user_id and changes.keys() <= SELF_SERVICE_FIELDS):
        raise Forbidden("Only admins can change other users, and roles, emails or managers")
    _guard_owner(actor, user)
    check_version(user.version, expected_version)
    before = _audited(user)
    for field in ("name", "out_of_office"):
        if changes.get(field) is not None:
            setattr(user, field, changes[field])
    if "role" in changes and changes["role"] is not None and changes["role"] != user.role:
        new_role = Role(changes["role"])
        _grantable(actor, new_role)
        if user.role == Role.owner:
            await _keep_an_owner(session, user)
        user.role = new_role.value
    if "manager_id" in changes:
        if changes["manager_id"] is not None:
            await _check_manager_chain(session, user, changes["manager_id"])
        user.manager_id = changes["manager_id"]
    if changes.get("email") and changes["email"] != user.email:
        await session.execute(LoginEmail.__table__.delete().where(LoginEmail.email == user.email))
        await _claim_email(session, user, changes["email"])
        user.email = changes["email"]
    await session.flush()
    after = _audited(user)
    diff = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if "role" in diff:
        await audit.record(session, actor, "role.changed", "user", user.id, {"role": diff.pop("role")})
    if diff:
        await audit.record(session, actor, "update", "user", user.id, diff)
    return user


def _audited(user: User) -> dict[str, object]:
    return {"name": user.name, "email": user.email, "role": user.role, "out_of_office": user.out_of_office,
            "manager_id": str(user.manager_id) if user.manager_id else None}


async def deactivate(session: AsyncSession, actor: Principal, user_id: UUID,
                     reassign_to: UUID | None = None) -> tuple[User, bool]:
    """-> (user, whether this call deactivated them). `reassign_to` is only checked here (another active user):
    handing the work over is the `user_deactivation` flow's part."""
    await locks.org_exclusive(session, actor.org_id)  # one at a time: an owner always remains
    user = await get(session, actor.org_id, user_id)
    _guard_owner(actor, user)
    if not user.active:
        return user, False
    if user.role == Role.owner:
        await _keep_an_owner(session, user)
    if reassign_to is not None:
        heir = await session.scalar(select(User).where(User.org_id == actor.org_id, User.id == reassign_to,
                                                       User.deleted_at.is_(None)))
        if heir is None or heir.id == user_id or not heir.active:
            raise ValidationFailed("reassign_to must be another active user of the organisation",
                                   loc=("body", "reassign_to"))
    user.active = False
    user.deactivated_at = datetime.now(UTC)
    await audit.record(session, actor, "update", "user", user.id, {"active": [True, False]})
    session.info.get("memo", {}).clear()  # remembered "active teammate" answers no longer hold
    await end_sessions(session, user)
    await session.flush()
    return user, True


async def end_sessions(session: AsyncSession, user: User) -> None:
    """Revoke the user's refresh tokens: every device logs in again (access tokens end within their lifetime)."""
    await session.execute(
        update(RefreshToken).where(RefreshToken.org_id == user.org_id, RefreshToken.user_id == user.id,
                                   RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def reactivate(session: AsyncSession, actor: Principal, user_id: UUID) -> User:
    """A deactivated user may log in again (with their password, when they have one). Their records stay
    where deactivation put them; their old refresh tokens stay revoked."""
    user = await get(session, actor.org_id, user_id)
    _guard_owner(actor, user)
    _grantable(actor, Role(user.role))
    if not user.active:
        user.active = True
        user.deactivated_at = None
        session.info.get("memo", {}).clear()  # remembered "active teammate" answers no longer hold
        await session.flush()
        await audit.record(session, actor, "update", "user", user.id, {"active": [False, True]})
    return user


async def set_password(session: AsyncSession, settings: Settings, actor: Principal, user_id: UUID,
                       password: str) -> User:
    """Set a user's password (an invitee's first one, or a reset). Their refresh tokens are revoked: every
    device logs in again with the new password."""
    _may_set_passwords(actor)
    user = await get(session, actor.org_id, user_id)
    if user.role == Role.owner and actor.role is not Role.owner:
        raise Forbidden("Only an owner can set an owner's password")
    _grantable(actor, Role(user.role))
    before = user.password_changed_at
    user.password_hash = sec.hash_password(settings, password)
    user.password_changed_at = datetime.now(UTC)
    await end_sessions(session, user)
    await session.flush()
    await audit.record(session, actor, "update", "user", user.id, {"password_changed_at": [
        before.isoformat() if before else None, user.password_changed_at.isoformat()]})
    return user


def _guard_owner(actor: Principal, target: User) -> None:
    if target.role == Role.owner and actor.role is not Role.owner and not (actor.type == "user" and actor.id == target.id):
        raise Forbidden("Only an owner can change or deactivate an owner")


async def _keep_an_owner(session: AsyncSession, leaving: User) -> None:
    """Callers hold the org's row (`locks.org_exclusive`), so no other owner leaves between count and write."""
    others = await session.scalar(
        select(func.count()).select_from(User).where(
            User.org_id == leaving.org_id, User.role == Role.owner.value, User.active.is_(True),
            User.deleted_at.is_(None), User.id != leaving.id,
        )
    )
    if not others:
        raise Conflict("An organisation must keep at least one active owner")


async def _require_manager(session: AsyncSession, org_id: UUID, manager_id: UUID, loc: tuple[str, ...]) -> User:
    manager = await session.scalar(select(User).where(User.org_id == org_id, User.id == manager_id,
                                                      User.deleted_at.is_(None)))
    if manager is None:
        raise ValidationFailed("manager_id is not a user of this organisation", loc=loc)
    return manager


async def _check_manager_chain(session: AsyncSession, user: User, manager_id: UUID) -> None:
    """The manager must exist in the org and the chain must not loop back to the user."""
    loc = ("body", "manager_id")
    if manager_id == user.id:
        raise ValidationFailed("A user cannot be their own manager", loc=loc)
    await _require_manager(session, user.org_id, manager_id, loc=loc)
    chain = select(User.id, User.manager_id).where(User.org_id == user.org_id, User.id == manager_id).cte(
        "chain", recursive=True
    )
    chain = chain.union(
        select(User.id, User.manager_id).where(User.org_id == user.org_id, User.id == chain.c.manager_id)
    )
    ids = set((await session.scalars(select(chain.c.id))).all())
    if user.id in ids:
        raise ValidationFailed("This manager would create a loop in the reporting chain", loc=loc)
