from __future__ import annotations

from app.api.deps import AnyCaller, SessionDep
from app.api.problems import UNAUTHORIZED
from app.api.routing import Router
from app.domain.auth import api_keys, users
from app.domain.auth.schemas import ApiKeyRead, Caller, MeResponse, UserRead
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
