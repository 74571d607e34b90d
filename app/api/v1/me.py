from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import AnyCaller, SessionDep
from app.api.problems import UNAUTHORIZED
from app.domain.auth import api_keys, users
from app.domain.auth.schemas import ApiKeyRead, MeResponse, UserRead
from app.domain.orgs import service as orgs
from app.domain.orgs.schemas import OrgRead

router = APIRouter(prefix="/v1/me", tags=["auth"])


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
