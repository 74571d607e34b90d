"""Automation rules (admins): an event of the catalogue, narrowed, with conditions and actions run in order by a
worker; each run logged with its actions' results. See `app.domain.automations.service` for the guarantees."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import Request, Response, status

from app.api import scoping
from app.api.deps import IfMatch, PageDep, SessionDep, conditional, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.automations import service
from app.domain.automations.schemas import (
    AutomationCreate,
    AutomationCreated,
    AutomationRead,
    AutomationUpdate,
    DryRun,
    DryRunRequest,
    RunRead,
)
from app.domain.concurrency import check_version

router = Router(prefix="/v1/automations", tags=["automations"])
Writer = Annotated[Principal, require("automations:write", Role.admin)]
Reader = Annotated[Principal, require("automations:read", Role.admin)]
A = service.AUTOMATION


@router.get("", response_model=ListPage[AutomationRead], operation_id="listAutomations", responses=AUTHED)
async def list_automations(session: SessionDep, who: Reader, page: PageDep) -> JSONBytes:
    """The organisation's rules (sort `created_at` or `name`)."""
    result = await service.list_rules(session, who, page)
    return JSONBytes(orjson.dumps({"data": [A.dump(r) for r in result.items], "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=AutomationCreated, operation_id="createAutomation", responses=AUTHED)
async def create_automation(body: AutomationCreate, session: SessionDep, who: Writer) -> Response:
    """A rule: `trigger` is an event of the catalogue (a deal, contact, lead, company or activity event),
    narrowed by `pipeline_id`, `from_stage_id`, `to_stage_id`, `source`, `form_id`; `conditions` must all hold
    for the object as it is when the run starts (amounts compare as decimals); `actions` run in order. The
    templates, mailboxes, users and teams it names must be this organisation's (422). The answer carries the
    rule's `webhook_secret`, which signs its `webhook` actions as webhook deliveries are signed; it is shown
    only here and on rotation."""
    rule = await service.create(session, who, body)
    return one({**A.dump(rule), "webhook_secret": rule.webhook_secret}, rule.version, None, 201,
               {"Location": f"/v1/automations/{rule.id}"})


@router.post("/{automation_id}/rotate-secret", response_model=AutomationCreated,
             operation_id="rotateAutomationSecret", responses={**AUTHED, **NOT_FOUND})
async def rotate_secret(automation_id: UUID, session: SessionDep, who: Writer) -> Response:
    """A new `webhook_secret` for the rule's `webhook` actions, shown once; calls from now on are signed with it."""
    rule = await service.rotate_secret(session, who, automation_id)
    return one({**A.dump(rule), "webhook_secret": rule.webhook_secret}, rule.version, None)


@router.get("/{automation_id}", response_model=AutomationRead, operation_id="getAutomation",
            responses={**AUTHED, **NOT_FOUND})
async def get_automation(automation_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """One rule."""
    rule = await A.get(session, who, automation_id)
    conditional(request, rule.version)
    return one(A.dump(rule), rule.version, None)


@router.patch("/{automation_id}", response_model=AutomationRead, operation_id="updateAutomation",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_automation(automation_id: UUID, body: AutomationUpdate, session: SessionDep, who: Writer,
                            expected: IfMatch) -> Response:
    """Change a rule; `enabled: false` stops new runs (queued ones end `skipped`)."""
    rule = await service.update_rule(session, who, automation_id, body, expected)
    return one(A.dump(rule), rule.version, None)


@router.delete("/{automation_id}", status_code=204, response_class=Response, operation_id="deleteAutomation",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_automation(automation_id: UUID, session: SessionDep, who: Writer, expected: IfMatch) -> Response:
    """Remove a rule; its runs stay in the log until the rule is purged."""
    rule = await A.get(session, who, automation_id)
    check_version(rule.version, expected)
    await A.delete(session, who, automation_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{automation_id}/runs", response_model=ListPage[RunRead], operation_id="listAutomationRuns",
            responses={**AUTHED, **NOT_FOUND})
async def list_runs(automation_id: UUID, session: SessionDep, who: Reader, page: PageDep) -> JSONBytes:
    """Runs of the rule, newest first: `queued`, `succeeded`, `failed` (with `reason`; `loop` for a chain
    deeper than `CRM_AUTOMATION_MAX_DEPTH`) or `skipped` (a condition did not hold), with each action's result."""
    result = await service.runs(session, who, automation_id, page)
    rows = [RunRead.model_validate(r).model_dump(mode="json") for r in result.items]
    return JSONBytes(orjson.dumps({"data": rows, "next_cursor": result.next_cursor}))


@router.post("/{automation_id}/dry-run", response_model=DryRun, operation_id="dryRunAutomation",
             responses={**AUTHED, **NOT_FOUND})
async def dry_run(automation_id: UUID, body: DryRunRequest, session: SessionDep, who: Reader) -> Any:
    """Whether the rule's conditions hold for this object as it is now (the trigger is not checked), each
    condition with the object's `actual` value, and the actions it would run. Changes nothing. It reads the
    object: the credential needs that kind's read scope too."""
    rule = await A.get(session, who, automation_id)
    scoping.refuse_unreadable(who, [service.object_type_of(rule.trigger)], "A dry run")
    return await service.dry_run(session, who, automation_id, body.object_id)
