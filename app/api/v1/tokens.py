"""Personal access tokens: a user's own bearer credentials (for a mobile app, a script), acting as that user
within the token's scopes and never beyond the user's current role."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Response, status

from app.api.deps import PageDep, SessionDep, require_own
from app.api.problems import AUTHED, NOT_FOUND
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.audit import service as audit
from app.domain.auth import api_keys as service
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import PersonalTokenCreate, PersonalTokenCreated, PersonalTokenRead
from app.domain.errors import Forbidden

router = Router(prefix="/v1/me/tokens", tags=["auth"])
TokensRead = Annotated[Principal, require_own("tokens:read")]
TokensWrite = Annotated[Principal, require_own("tokens:write")]
PERSONAL = "personal"


def _user(who: Principal) -> Principal:
    if who.type != "user":
        raise Forbidden("Personal access tokens belong to users; call with a user's access token")
    return who


@router.get("", response_model=ListPage[PersonalTokenRead], operation_id="listMyTokens",
            summary="List your personal access tokens", responses=AUTHED)
async def list_tokens(session: SessionDep, who: TokensRead, page: PageDep) -> ListPage[PersonalTokenRead]:
    """Your live personal access tokens, newest first, with `last_used_at` and `last_used_ip`. Secrets are
    never shown again. Sorts: `created_at`, `name`."""
    me = _user(who)
    result = await service.list_page(session, me.org_id, page, PERSONAL, me.id)
    return ListPage(data=[PersonalTokenRead.model_validate(t) for t in result.items], next_cursor=result.next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PersonalTokenCreated,
             operation_id="createMyToken", summary="Create a personal access token", responses=AUTHED)
async def create_token(body: PersonalTokenCreate, response: Response, session: SessionDep,
                       who: TokensWrite) -> PersonalTokenCreated:
    """A bearer token (`Authorization: Bearer crm_...`) that acts as you: `/v1/me` shows you, records it
    creates are yours, and it can do what your role allows within its `scopes` (which must be scopes your
    credential holds: 403 naming the others). Demoting you narrows it, deactivating you disables it, at once.
    The `secret` is in this response only."""
    me = _user(who)
    token, secret = await service.create(session, me, body, PERSONAL)
    response.headers["Location"] = f"/v1/me/tokens/{token.id}"
    return PersonalTokenCreated(**PersonalTokenRead.model_validate(token).model_dump(), secret=secret)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               operation_id="revokeMyToken", summary="Revoke a personal access token",
               responses={**AUTHED, **NOT_FOUND})
async def revoke_token(token_id: UUID, session: SessionDep, who: TokensWrite) -> Response:
    """Requests with the token answer 401 from now on. Another user's token, or an org API key → 404."""
    me = _user(who)
    await service.revoke(session, me.org_id, token_id, PERSONAL, me.id)
    await audit.record(session, who, "api_key.revoked", "api_key", token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
