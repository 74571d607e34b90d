from __future__ import annotations

from typing import Annotated

from fastapi import Request, Response

from app.api.deps import IfMatch, SessionDep, conditional, etag_of, require
from app.api.problems import AUTHED, PRECONDITION
from app.api.routing import Router
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.orgs import service
from app.domain.orgs.schemas import OrgRead, OrgUpdate

router = Router(prefix="/v1/org", tags=["organisation"])


@router.get("", response_model=OrgRead, operation_id="getOrg", responses=AUTHED)
async def get_org(request: Request, response: Response, session: SessionDep,
                  who: Annotated[Principal, require("org:read")]) -> OrgRead:
    """The caller's organisation and its settings (time zone, phone region, currency, visibility)."""
    org = await service.get(session, who.org_id)
    response.headers["ETag"] = conditional(request, org.version)
    return OrgRead.model_validate(org)


@router.patch("", response_model=OrgRead, operation_id="updateOrg", responses={**AUTHED, **PRECONDITION})
async def update_org(body: OrgUpdate, response: Response, session: SessionDep, expected: IfMatch,
                     who: Annotated[Principal, require("org:write", Role.admin)]) -> OrgRead:
    """Change organisation settings (admins). `default_phone_region: null` clears it;
    `password_max_age_days: null` lets passwords never expire. Changes are in the audit log (`settings.changed`)."""
    org = await service.update(session, who.org_id, body, expected, who)
    response.headers["ETag"] = etag_of(org.version)
    return OrgRead.model_validate(org)
