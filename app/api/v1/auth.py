from __future__ import annotations

from typing import Annotated

from fastapi import Form, Response, status

from app.api.deps import SessionDep, SettingsDep
from app.api.problems import CONFLICT, NOT_FOUND, UNAUTHORIZED, VALIDATION
from app.api.routing import Router
from app.domain.auth import service
from app.domain.auth.schemas import RefreshRequest, SignupRequest, SignupResponse, TokenPair, UserRead
from app.domain.errors import NotFound
from app.domain.orgs.schemas import OrgRead
from app.domain.schemas import PlainText

router = Router(prefix="/v1/auth", tags=["auth"])


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
             responses={**UNAUTHORIZED, **VALIDATION})
async def token(
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[PlainText, Form(max_length=320, description="the user's email")],
    password: Annotated[str, Form(max_length=256)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = "password",
) -> TokenPair:
    """OAuth2 password grant (form-encoded): email and password for an access and a refresh token."""
    return await service.login(session, settings, username, password)


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


