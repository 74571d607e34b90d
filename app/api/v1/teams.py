"""Teams: admins write them, everyone reads them. They decide what members see when the org's
`record_visibility` is `team` (and whose records a team's manager sees in `team` and `own`)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import orjson
from fastapi import Request, Response, status

from app.api.deps import IfMatch, PageDep, SessionDep, conditional, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.teams import service
from app.domain.teams.schemas import TeamCreate, TeamRead, TeamUpdate

router = Router(prefix="/v1/teams", tags=["teams"])
Admin = Annotated[Principal, require("teams:write", Role.admin)]
Reader = Annotated[Principal, require("teams:read")]
T = service.TEAM


@router.get("", response_model=ListPage[TeamRead], operation_id="listTeams", responses=AUTHED)
async def list_teams(session: SessionDep, who: Reader, page: PageDep) -> JSONBytes:
    """The organisation's teams with their manager and members (sort `created_at` or `name`)."""
    result = await service.list_page(session, who.org_id, page)
    return JSONBytes(orjson.dumps({"data": [T.dump(t) for t in result.items], "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=TeamRead, operation_id="createTeam", responses=AUTHED)
async def create_team(body: TeamCreate, session: SessionDep, who: Admin) -> Response:
    """A team (admins). With `record_visibility: team`, members and viewers see the records owned by anyone
    in their teams; a team's `manager_id` sees what its members own in `team` and `own` modes. Members
    without a manager get the team's manager as their `manager_id`."""
    team = await service.create(session, who, body)
    return one(T.dump(team), team.version, None, 201, {"Location": f"/v1/teams/{team.id}"})


@router.get("/{team_id}", response_model=TeamRead, operation_id="getTeam", responses={**AUTHED, **NOT_FOUND})
async def get_team(team_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """A team with its manager and members (their records' visibility follows the team)."""
    team = await service.get(session, who, team_id)
    conditional(request, team.version)
    return one(T.dump(team), team.version, None)


@router.patch("/{team_id}", response_model=TeamRead, operation_id="updateTeam",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_team(team_id: UUID, body: TeamUpdate, session: SessionDep, who: Admin,
                      expected: IfMatch) -> Response:
    """Rename, change the manager, or replace the membership (`member_ids` is the whole new list)."""
    team = await service.update_team(session, who, team_id, body, expected)
    return one(T.dump(team), team.version, None)


@router.delete("/{team_id}", status_code=204, response_class=Response, operation_id="deleteTeam",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_team(team_id: UUID, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Remove a team; its members keep their records and see them as before by ownership."""
    await service.delete_team(session, who, team_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
