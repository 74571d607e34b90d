"""Teams (admin-written, readable by everyone). Membership feeds record visibility (`app.domain.kinds`); a
member without a manager gets the team's manager as theirs (`users.manager_id`, used for escalation)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.auth.models import User
from app.domain.auth.principal import Principal
from app.domain.concurrency import check_version
from app.domain.pagination import Page, PageRequest, keyset_page
from app.domain.records import Kind, require_user
from app.domain.teams.models import Team, TeamMember
from app.domain.teams.schemas import TeamCreate, TeamRead, TeamUpdate

TEAM = Kind(Team, "team", "Team", TeamRead)
SORTS = {"created_at": Team.created_at, "name": Team.name}


async def _check_users(session: AsyncSession, org_id: UUID, manager_id: UUID | None, member_ids: Iterable[UUID]) -> None:
    if manager_id is not None:
        await require_user(session, org_id, manager_id, "manager_id")
    for user_id in member_ids:
        await require_user(session, org_id, user_id, "member_ids", active=False)


async def _attach_members(session: AsyncSession, teams: Sequence[Team]) -> None:
    """`member_ids` of each team, in one statement for any number of teams."""
    if not teams:
        return
    rows = await session.execute(
        select(TeamMember.team_id, TeamMember.user_id)
        .where(TeamMember.org_id == teams[0].org_id, TeamMember.team_id.in_([t.id for t in teams]))
        .order_by(TeamMember.team_id, TeamMember.user_id))
    by_team: dict[UUID, list[UUID]] = {t.id: [] for t in teams}
    for team_id, user_id in rows:
        by_team[team_id].append(user_id)
    for team in teams:
        team.member_ids = by_team[team.id]  # type: ignore[attr-defined]


async def _set_members(session: AsyncSession, team: Team, member_ids: list[UUID]) -> None:
    await session.execute(delete(TeamMember).where(TeamMember.org_id == team.org_id, TeamMember.team_id == team.id))
    unique = list(dict.fromkeys(member_ids))
    if unique:
        await session.execute(insert(TeamMember), [{"org_id": team.org_id, "team_id": team.id, "user_id": u}
                                                   for u in unique])
    team.member_ids = unique  # type: ignore[attr-defined]


async def _default_managers(session: AsyncSession, team: Team) -> None:
    """Members without a manager report to the team's manager (never to themselves)."""
    members = getattr(team, "member_ids", [])
    if team.manager_id is None or not members:
        return
    await session.execute(
        update(User).where(User.org_id == team.org_id, User.id.in_(members), User.manager_id.is_(None),
                           User.id != team.manager_id)
        .values(manager_id=team.manager_id).execution_options(synchronize_session=False))


async def create(session: AsyncSession, actor: Principal, body: TeamCreate) -> Team:
    await _check_users(session, actor.org_id, body.manager_id, body.member_ids)
    team = Team(org_id=actor.org_id, name=body.name, manager_id=body.manager_id)
    session.add(team)
    await session.flush()
    await _set_members(session, team, body.member_ids)
    await _default_managers(session, team)
    return await TEAM.created(session, actor, team)


async def get(session: AsyncSession, who: Principal, team_id: UUID, for_update: bool = False) -> Team:
    team = await TEAM.get(session, who.org_id, team_id, for_update=for_update)
    await _attach_members(session, [team])
    return team


async def list_page(session: AsyncSession, org_id: UUID, page: PageRequest) -> Page[Team]:
    result = await keyset_page(session, TEAM.readable(org_id), page, SORTS, Team.id)
    await _attach_members(session, result.items)
    return result


async def update_team(session: AsyncSession, actor: Principal, team_id: UUID, patch: TeamUpdate,
                      expected_version: int | None) -> Team:
    team = await get(session, actor, team_id, for_update=True)
    check_version(team.version, expected_version)
    before = TEAM.dump(team)
    changes = patch.model_dump(exclude_unset=True)
    await _check_users(session, actor.org_id, changes.get("manager_id"), changes.get("member_ids") or [])
    if changes.get("name") is not None:
        team.name = changes["name"]
    if "manager_id" in changes:
        team.manager_id = changes["manager_id"]
    if changes.get("member_ids") is not None:
        await _set_members(session, team, changes["member_ids"])
    if before != TEAM.dump(team):
        team.updated_at = datetime.now(UTC)  # the row changes with its membership: version and ETag move
        await _default_managers(session, team)
    return await TEAM.updated(session, actor, team, before)


async def delete_team(session: AsyncSession, actor: Principal, team_id: UUID, expected_version: int | None) -> None:
    team = await get(session, actor, team_id)
    check_version(team.version, expected_version)
    await session.execute(delete(TeamMember).where(TeamMember.org_id == team.org_id, TeamMember.team_id == team.id))
    team.member_ids = []  # type: ignore[attr-defined]
    await TEAM.delete(session, actor, team_id, None)
