"""Segments (saved contact or lead filters) and campaigns (a template sent to a segment from a mailbox, every
recipient's outcome kept). Admins and managers write segments; admins write campaigns; everyone with the
`campaigns:read` scope reads them."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import Depends, Query, Request, Response, status

from app.api import scoping
from app.api.deps import IfMatch, PageDep, SessionDep, conditional, require
from app.api.paging import sorted_page_request
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.campaigns import service
from app.domain.campaigns.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignUpdate,
    RecipientRead,
    SegmentCount,
    SegmentCreate,
    SegmentRead,
    SegmentUpdate,
)
from app.domain.pagination import PageRequest

segments = Router(prefix="/v1/segments", tags=["campaigns"])
router = Router(prefix="/v1/campaigns", tags=["campaigns"])
Reader = Annotated[Principal, require("campaigns:read")]
SegmentWriter = Annotated[Principal, require("campaigns:write", Role.manager)]
Admin = Annotated[Principal, require("campaigns:write", Role.admin)]
S, C = service.SEGMENT, service.CAMPAIGN


@segments.get("", response_model=ListPage[SegmentRead], operation_id="listSegments", responses=AUTHED)
async def list_segments(session: SessionDep, who: Reader, page: PageDep) -> JSONBytes:
    """Saved filters (sort `created_at` or `name`)."""
    result = await service.list_segments(session, who, page)
    return JSONBytes(orjson.dumps({"data": [S.dump(s) for s in result.items], "next_cursor": result.next_cursor}))


@segments.post("", status_code=201, response_model=SegmentRead, operation_id="createSegment", responses=AUTHED)
async def create_segment(body: SegmentCreate, session: SessionDep, who: SegmentWriter) -> Response:
    """A saved filter over contacts or leads, in the list filters' terms (admins and managers)."""
    segment = await service.create_segment(session, who, body)
    return one(S.dump(segment), segment.version, None, 201, {"Location": f"/v1/segments/{segment.id}"})


@segments.get("/{segment_id}", response_model=SegmentRead, operation_id="getSegment",
              responses={**AUTHED, **NOT_FOUND})
async def get_segment(segment_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """One segment."""
    segment = await S.get(session, who, segment_id)
    conditional(request, segment.version)
    return one(S.dump(segment), segment.version, None)


@segments.patch("/{segment_id}", response_model=SegmentRead, operation_id="updateSegment",
                responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_segment(segment_id: UUID, body: SegmentUpdate, session: SessionDep, who: SegmentWriter,
                         expected: IfMatch) -> Response:
    """Rename, or replace the filter."""
    segment = await service.update_segment(session, who, segment_id, body, expected)
    return one(S.dump(segment), segment.version, None)


@segments.delete("/{segment_id}", status_code=204, response_class=Response, operation_id="deleteSegment",
                 responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_segment(segment_id: UUID, session: SessionDep, who: SegmentWriter, expected: IfMatch) -> Response:
    """Remove a segment."""
    segment = await S.get(session, who, segment_id)
    from app.domain.concurrency import check_version

    check_version(segment.version, expected)
    await S.delete(session, who, segment_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@segments.get("/{segment_id}/count", response_model=SegmentCount, operation_id="countSegment",
              responses={**AUTHED, **NOT_FOUND})
async def count_segment(segment_id: UUID, session: SessionDep, who: Reader) -> SegmentCount:
    """How many records the segment holds now, of those you may read (the credential needs the read scope of
    the segment's object as well)."""
    segment = await S.get(session, who, segment_id)
    scoping.refuse_unreadable(who, [segment.object], "Counting a segment")
    return SegmentCount(count=await service.count(session, who, segment_id))


@router.get("", response_model=ListPage[CampaignRead], operation_id="listCampaigns", responses=AUTHED)
async def list_campaigns(session: SessionDep, who: Reader, page: PageDep) -> JSONBytes:
    """Campaigns with their status and stats (sort `created_at` or `name`)."""
    result = await service.list_campaigns(session, who, page)
    return JSONBytes(orjson.dumps({"data": await service.dump_campaigns(session, list(result.items)),
                                   "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=CampaignRead, operation_id="createCampaign", responses=AUTHED)
async def create_campaign(body: CampaignCreate, session: SessionDep, who: Admin) -> Response:
    """A draft: nothing is sent until `POST /v1/campaigns/{id}/send` (admins)."""
    campaign = await service.create_campaign(session, who, body)
    [shown] = await service.dump_campaigns(session, [campaign])
    return one(shown, campaign.version, None, 201, {"Location": f"/v1/campaigns/{campaign.id}"})


@router.get("/{campaign_id}", response_model=CampaignRead, operation_id="getCampaign",
            responses={**AUTHED, **NOT_FOUND})
async def get_campaign(campaign_id: UUID, session: SessionDep, who: Reader) -> Response:
    """Status (`sent` once no recipient is `queued`) and `stats`: `recipients` rows, counted by status (`queued`,
    `sent`, `failed`, `skipped`, which add up to `recipients`), and those who `unsubscribed` through, or
    `replied` in the thread of, this campaign's mail."""
    campaign = await C.get(session, who, campaign_id)
    [shown] = await service.dump_campaigns(session, [campaign])
    return one(shown, campaign.version, None)


@router.patch("/{campaign_id}", response_model=CampaignRead, operation_id="updateCampaign",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION, **CONFLICT})
async def update_campaign(campaign_id: UUID, body: CampaignUpdate, session: SessionDep, who: Admin,
                          expected: IfMatch) -> Response:
    """Change a draft or scheduled campaign (409 once it is sending)."""
    campaign = await service.update_campaign(session, who, campaign_id, body, expected)
    [shown] = await service.dump_campaigns(session, [campaign])
    return one(shown, campaign.version, None)


@router.delete("/{campaign_id}", status_code=204, response_class=Response, operation_id="deleteCampaign",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION, **CONFLICT})
async def delete_campaign(campaign_id: UUID, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Remove a campaign that is not sending (cancel it first)."""
    campaign = await C.get(session, who, campaign_id)
    from app.domain.concurrency import check_version
    from app.domain.errors import Conflict

    check_version(campaign.version, expected)
    if campaign.status in ("sending", "paused"):
        raise Conflict("Cancel the campaign before deleting it")
    await C.delete(session, who, campaign_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _action_route(action: Literal["send", "pause", "resume", "cancel"], doc: str) -> None:
    async def act(campaign_id: UUID, session: SessionDep, who: Admin) -> Response:
        if action == "send":  # it reads the segment's contacts to mail them
            scoping.refuse_unreadable(who, ["contact"], "Sending a campaign")
            campaign = await service.send(session, who, campaign_id)
        else:
            campaign = await service.transition(session, who, campaign_id, action)
        [shown] = await service.dump_campaigns(session, [campaign])
        return one(shown, campaign.version, None, 202)

    act.__doc__ = doc
    router.add_api_route(f"/{{campaign_id}}/{action}", act, methods=["POST"], status_code=202,
                         response_model=CampaignRead, operation_id=f"{action}Campaign",
                         responses={**AUTHED, **NOT_FOUND, **CONFLICT})


_action_route("send", "Send now, or at `send_at` when it is in the future (`scheduled`). One recipient row per "
                      "segment member: `queued`, or `skipped` with a reason (no address, unsubscribed, over the "
                      "org's `max_marketing_per_week`). Workers send in chunks at the mailbox's `rate_per_minute`; "
                      "every message carries `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058).")
_action_route("pause", "Stop sending after the messages in flight; `resume` goes on where it stopped.")
_action_route("resume", "Go on sending a paused campaign.")
_action_route("cancel", "Stop for good: queued recipients become `skipped` (reason `cancelled`).")


@router.get("/{campaign_id}/recipients", response_model=ListPage[RecipientRead],
            operation_id="listCampaignRecipients", responses={**AUTHED, **NOT_FOUND})
async def list_recipients(campaign_id: UUID, session: SessionDep, who: Reader,
                          page: Annotated[PageRequest, Depends(sorted_page_request(["id"]))],
                          status_: Annotated[Literal["queued", "sent", "failed", "skipped"] | None,
                                             Query(alias="status")] = None) -> JSONBytes:
    """Every recipient's outcome: `queued`, `sent` (with its `message_id`), `failed` or `skipped` with the
    `reason`."""
    result = await service.recipients(session, who, campaign_id, page, status_)
    return JSONBytes(orjson.dumps({"data": [RecipientRead.model_validate(r).model_dump(mode="json")
                                            for r in result.items], "next_cursor": result.next_cursor}))
