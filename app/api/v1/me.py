from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response, status
from fastapi.security import HTTPAuthorizationCredentials

from app.api.deps import AnyCaller, PageDep, RedisDep, SessionDep, SettingsDep, bearer, require
from app.api.problems import FORBIDDEN, TOO_MANY, UNAUTHORIZED, VALIDATION
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.audit import service as audit
from app.domain.audit.schemas import LoginRead, login_read
from app.domain.auth import api_keys, users
from app.domain.auth import service as auth_service
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import ApiKeyRead, Caller, MeResponse, PasswordChange, UserRead
from app.domain.errors import Forbidden, Unauthorized
from app.domain.orgs import service as orgs
from app.domain.orgs.schemas import OrgRead

router = Router(prefix="/v1/me", tags=["auth"])
ping_router = Router(prefix="/v1/ping", tags=["auth"])


@ping_router.get("", response_model=Caller, operation_id="ping", responses=UNAUTHORIZED)
async def ping(who: AnyCaller) -> Caller:
    """Check connectivity and a credential: who is calling, without reading anything else (one query, for
    the credential). Cheap enough for an integration's health check; `/v1/me` has the whole picture."""
    return Caller(type=who.type, id=who.id, org_id=who.org_id, role=who.role, scopes=sorted(who.scopes))


@router.get("", response_model=MeResponse, operation_id="getMe", responses=UNAUTHORIZED)
async def me(session: SessionDep, who: AnyCaller) -> MeResponse:
    """Who is calling: the user or API key, its organisation, role and scopes."""
    org = await orgs.get(session, who.org_id)
    user = key = None
    if who.type == "user":
        user = UserRead.model_validate(await users.get(session, who.org_id, who.id))
    else:
        key = ApiKeyRead.model_validate(await api_keys.get(session, who.org_id, who.id))
    return MeResponse(type=who.type, role=who.role, scopes=sorted(who.scopes), org=OrgRead.model_validate(org),
                      user=user, api_key=key)


async def caller_even_with_expired_password(
    session: SessionDep, settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The caller of `POST /v1/me/password`: a bearer (accepted although its user's password expired), or
    nobody (the body names the account)."""
    if credentials is None:
        return None
    if credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("Send 'Authorization: Bearer <access token>', or no Authorization and an email")
    return await auth_service.resolve_bearer(session, settings, credentials.credentials, allow_expired_password=True)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, operation_id="changeMyPassword",
             summary="Change your password", responses={**UNAUTHORIZED, **FORBIDDEN, **VALIDATION, **TOO_MANY})
async def change_password(body: PasswordChange, session: SessionDep, settings: SettingsDep, redis: RedisDep,
                          who: Annotated[Principal | None, Depends(caller_even_with_expired_password)]) -> Response:
    """Set a new password, proven by the `current` one. Call it with your access token (it is accepted here even
    when your password has expired), or, when a login answered 401 `password_expired`, without a token and with
    your `email`. The new password must have at least 10 characters and not be a common password, one repeated
    character or a simple sequence (422 naming it). A wrong `current` counts as a failed login (401, and 429 once
    the account is locked). Every session of yours ends: your refresh tokens are revoked, so each device logs in
    again with the new password once its access token expires."""
    await auth_service.change_password(session, settings, redis, who, body.email, body.current, body.new)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/logins", response_model=ListPage[LoginRead], operation_id="listMyLogins", summary="Your login history",
            responses={**UNAUTHORIZED, **FORBIDDEN, **VALIDATION})
async def my_logins(session: SessionDep, who: Annotated[Principal, require("users:read")],
                    page: PageDep) -> ListPage[LoginRead]:
    """Your logins, succeeded and failed, with the client's IP address and user agent, newest first."""
    if who.type != "user":
        raise Forbidden("Only users log in")
    result = await audit.logins_page(session, who.org_id, who.id, page)
    return ListPage(data=[login_read(r) for r in result.items], next_cursor=result.next_cursor)
