from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Response, status

from app.api.deps import PageDep, SessionDep, require
from app.api.problems import AUTHED, NOT_FOUND
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.audit import service as audit
from app.domain.auth import api_keys as service
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = Router(prefix="/v1/api-keys", tags=["api keys"])
KeysAdmin = Annotated[Principal, require("api_keys:write", Role.admin)]
KeysRead = Annotated[Principal, require("api_keys:read", Role.admin)]


@router.get("", response_model=ListPage[ApiKeyRead], operation_id="listApiKeys", responses=AUTHED)
async def list_keys(session: SessionDep, who: KeysRead, page: PageDep) -> ListPage[ApiKeyRead]:
    """Active API keys of the organisation (admins). Secrets are never shown again."""
    result = await service.list_page(session, who.org_id, page)
    return ListPage(data=[ApiKeyRead.model_validate(k) for k in result.items], next_cursor=result.next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated, operation_id="createApiKey",
             responses=AUTHED)
async def create_key(body: ApiKeyCreate, session: SessionDep, who: KeysAdmin) -> ApiKeyCreated:
    """Create a key with scopes (`*`, or `<area>:read` / `<area>:write`). The `secret` is in this
    response only; store it now. Records the key creates are owned by you by default."""
    key, secret = await service.create(session, who, body)
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), secret=secret)


@router.get("/{key_id}", response_model=ApiKeyRead, operation_id="getApiKey", responses={**AUTHED, **NOT_FOUND})
async def get_key(key_id: UUID, session: SessionDep, who: KeysRead) -> ApiKeyRead:
    """An API key's name, prefix, scopes, creator and last use; never its secret."""
    return ApiKeyRead.model_validate(await service.get(session, who.org_id, key_id))


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="revokeApiKey",
               responses={**AUTHED, **NOT_FOUND})
async def revoke_key(key_id: UUID, session: SessionDep, who: KeysAdmin) -> Response:
    """Revoke a key: requests with it answer 401 from now on."""
    await service.revoke(session, who.org_id, key_id)
    await audit.record(session, who, "api_key.revoked", "api_key", key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
