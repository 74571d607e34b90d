from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Response, status

from app.api.deps import RedisDep, SessionDep, SettingsDep, limit_auth_rate
from app.api.problems import CONFLICT, NOT_FOUND, RATE_LIMITED, TOO_MANY, UNAUTHORIZED, VALIDATION
from app.api.routing import Router
from app.domain.auth import service
from app.domain.auth.schemas import RefreshRequest, SignupRequest, SignupResponse, TokenPair, UserRead
from app.domain.errors import NotFound
from app.domain.orgs.schemas import OrgRead
from app.domain.schemas import PlainText

router = Router(prefix="/v1/auth", tags=["auth"], dependencies=[Depends(limit_auth_rate)], responses=RATE_LIMITED)


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=SignupResponse,
             operation_id="signup", responses={**NOT_FOUND, **CONFLICT, **VALIDATION})
async def signup(body: SignupRequest, session: SessionDep, settings: SettingsDep) -> SignupResponse:
    """Create an organisation and its owner, and log the owner in.

    Answers 404 when sign-up is switched off (`CRM_SIGNUP_ENABLED=false`)."""
    if not settings.signup_enabled:
        raise NotFound("Sign-up is disabled on this instance")
    org, user, tokens = await service.signup(session, settings, body)
    return SignupResponse(org=OrgRead.model_validate(org), user=UserRead.model_validate(user),
                          **tokens.model_dump())


@router.post("/token", response_model=TokenPair, operation_id="createToken",
             responses={**UNAUTHORIZED, **VALIDATION, **TOO_MANY})
async def token(
    session: SessionDep,
    settings: SettingsDep,
    redis: RedisDep,
    username: Annotated[PlainText, Form(max_length=320, description="the user's email")],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = "password",
) -> TokenPair:
    """OAuth2 password grant (form-encoded): email and password for an access and a refresh token.

    After `CRM_LOGIN_MAX_FAILURES` failed logins of one account within `CRM_LOGIN_FAILURE_WINDOW_SECONDS` (or
    many more from one client address) every login of it, the right password included, answers 429 with
    `Retry-After` and `RateLimit-*` until the lock passes; the lock doubles with each further failure. A password
    older than the organisation's `password_max_age_days` answers 401 with `error: password_expired`: set a new
    one with `POST /v1/me/password` (email, current and new password; no token needed)."""
    return await service.login(session, settings, username, password, redis)


@router.post("/refresh", response_model=TokenPair, operation_id="refreshToken",
             responses={**UNAUTHORIZED, **VALIDATION})
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Trade a refresh token for a new pair. The old one stops working; presenting it again revokes
    every token of that login (reuse detection)."""
    return await service.refresh(session, settings, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, operation_id="logout",
             responses={**UNAUTHORIZED, **VALIDATION})
async def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """Revoke the refresh token and every token rotated from the same login."""
    await service.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


