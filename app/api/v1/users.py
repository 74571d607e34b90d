from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Query, Request, Response, status

from app.api.deps import (
    IfMatch,
    PageDep,
    SessionDep,
    SettingsDep,
    conditional,
    etag_of,
    require,
    require_own,
)
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.audit import service as audit
from app.domain.audit.schemas import LoginRead, login_read
from app.domain.auth import users as service
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import DeactivateRequest, PasswordSet, UserInvite, UserRead, UserUpdate
from app.domain.errors import Forbidden
from app.domain.flows import user_deactivation

router = Router(prefix="/v1/users", tags=["users"])
UsersAdmin = Annotated[Principal, require("users:write", Role.admin)]
UsersRead = Annotated[Principal, require("users:read")]
UsersSelf = Annotated[Principal, require_own("users:write")]


@router.get("", response_model=ListPage[UserRead], operation_id="listUsers", responses=AUTHED)
async def list_users(session: SessionDep, who: UsersRead, page: PageDep,
                     active: Annotated[bool | None, Query(description="only active or only deactivated")] = None,
                     ) -> ListPage[UserRead]:
    """The organisation's users. Sorts: `created_at`, `updated_at`, `name`, `email`."""
    result = await service.list_page(session, who.org_id, page, active)
    return ListPage(data=[UserRead.model_validate(u) for u in result.items], next_cursor=result.next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserRead, operation_id="inviteUser",
             responses={**AUTHED, **CONFLICT})
async def invite_user(body: UserInvite, response: Response, session: SessionDep, settings: SettingsDep,
                      who: UsersAdmin) -> UserRead:
    """Add a user to the organisation (admins; only an owner can add an owner). Emails are unique
    across the instance: 409 when taken."""
    user = await service.invite(session, settings, who, body)
    response.headers["ETag"] = etag_of(user.version)
    response.headers["Location"] = f"/v1/users/{user.id}"
    return UserRead.model_validate(user)


@router.get("/{user_id}", response_model=UserRead, operation_id="getUser", responses={**AUTHED, **NOT_FOUND})
async def get_user(user_id: UUID, request: Request, response: Response, session: SessionDep,
                   who: UsersRead) -> UserRead:
    """A user of your organisation: role, manager, whether active or out of office."""
    user = await service.get(session, who.org_id, user_id)
    response.headers["ETag"] = conditional(request, user.version)
    return UserRead.model_validate(user)


@router.patch("/{user_id}", response_model=UserRead, operation_id="updateUser",
              responses={**AUTHED, **NOT_FOUND, **CONFLICT, **PRECONDITION})
async def update_user(user_id: UUID, body: UserUpdate, response: Response, session: SessionDep,
                      expected: IfMatch, who: UsersSelf) -> UserRead:
    """Change a user (admins), or your own `name` and `out_of_office` (anyone)."""
    user = await service.update_user(session, who, user_id, body, expected)
    response.headers["ETag"] = etag_of(user.version)
    return UserRead.model_validate(user)


@router.post("/{user_id}/deactivate", response_model=UserRead, operation_id="deactivateUser",
             responses={**AUTHED, **NOT_FOUND, **CONFLICT})
async def deactivate_user(user_id: UUID, body: DeactivateRequest, session: SessionDep,
                          who: UsersAdmin) -> UserRead:
    """The user can no longer log in and their tokens stop working; with `reassign_to`, their open
    records move to that colleague in the same transaction."""
    return UserRead.model_validate(await user_deactivation.deactivate(session, who, user_id, body.reassign_to))


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="deleteUser",
               responses={**AUTHED, **NOT_FOUND, **CONFLICT})
async def delete_user(user_id: UUID, session: SessionDep, who: UsersAdmin) -> Response:
    """Deactivate without reassignment (the user and their history stay, unable to log in)."""
    await user_deactivation.deactivate(session, who, user_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{user_id}/logins", response_model=ListPage[LoginRead], operation_id="listUserLogins",
            summary="A user's login history", responses={**AUTHED, **NOT_FOUND})
async def user_logins(user_id: UUID, session: SessionDep, who: UsersRead, page: PageDep) -> ListPage[LoginRead]:
    """A user's logins, succeeded and failed, with the client's IP address and user agent, newest first
    (admins; anyone for themself, as `GET /v1/me/logins`)."""
    if not (who.type == "user" and who.id == user_id) and not who.allows("audit:read", Role.admin):
        raise Forbidden("Only admins can see other users' logins")
    await service.get(session, who.org_id, user_id)
    result = await audit.logins_page(session, who.org_id, user_id, page)
    return ListPage(data=[login_read(r) for r in result.items], next_cursor=result.next_cursor)


@router.post("/{user_id}/reactivate", response_model=UserRead, operation_id="reactivateUser",
             summary="Reactivate a user", responses={**AUTHED, **NOT_FOUND})
async def reactivate_user(user_id: UUID, response: Response, session: SessionDep, who: UsersAdmin) -> UserRead:
    """Undo a deactivation (admins; an owner only by an owner): the user can log in again. Records handed to
    a colleague stay with that colleague; refresh tokens revoked at deactivation stay revoked. Reactivating
    an active user changes nothing."""
    user = await service.reactivate(session, who, user_id)
    response.headers["ETag"] = etag_of(user.version)
    return UserRead.model_validate(user)


@router.post("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
             operation_id="setUserPassword", summary="Set a user's password",
             responses={**AUTHED, **NOT_FOUND})
async def set_user_password(user_id: UUID, body: PasswordSet, session: SessionDep, settings: SettingsDep,
                            who: UsersAdmin) -> Response:
    """Set the password of an invitee (who can then log in) or reset a user's (admins; an owner's only by an
    owner). The user's refresh tokens are revoked. Setting a password hands out a login with every scope of
    the user's role, so an API key needs the scope `*` for it, and no one sets the password of a user whose
    role is above their own."""
    await service.set_password(session, settings, who, user_id, body.password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
