from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import Request, Response, status
from pydantic import Field

from app.api import scoping
from app.api.deps import IfMatch, PageDep, SessionDep, conditional, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.events import catalog
from app.domain.events.schemas import Envelope
from app.domain.webhooks import schemas, service
from app.domain.webhooks.schemas import WebhookCreated, WebhookRead

# What an endpoint subscribes to, as the document lists it: an event type of the catalogue, a family of one
# object type (`deal.*`), or `*`.
_FAMILY = r"^(?:(?:" + "|".join(sorted({t.split(".")[0] for t in catalog.types()})) + r")\.)?\*$"
EventName = Literal[catalog.types()]  # type: ignore[valid-type]
Events = Annotated[list[EventName | Annotated[str, Field(pattern=_FAMILY, examples=["deal.*"])]],  # type: ignore[valid-type]
                   Field(min_length=1, max_length=100, description="event types, `<object_type>.*` or `*`")]


class WebhookCreate(schemas.WebhookCreate):
    events: Events


class WebhookUpdate(schemas.WebhookUpdate):
    events: Events | None = None


class DeliveryRead(schemas.DeliveryRead):
    payload: Envelope = Field(description="the body sent: the event's envelope (a `webhook.test` ping is a "  # type: ignore[assignment]
                                          "`webhook` one whose action is `test`)")


router = Router(prefix="/v1/webhooks", tags=["webhooks"])
Admin = Annotated[Principal, require("webhooks:write", Role.admin)]
AdminRead = Annotated[Principal, require("webhooks:read", Role.admin)]
W = service.WEBHOOK


@router.get("", response_model=ListPage[WebhookRead], operation_id="listWebhooks", responses=AUTHED)
async def list_webhooks(session: SessionDep, who: AdminRead, page: PageDep) -> JSONBytes:
    """Webhook endpoints of the organisation (admins). Secrets are never listed."""
    result = await service.list_page(session, who.org_id, page)
    return JSONBytes(orjson.dumps({"data": [W.dump(e) for e in result.items], "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=WebhookCreated, operation_id="createWebhook", responses=AUTHED)
async def create_webhook(body: WebhookCreate, session: SessionDep, who: Admin) -> Response:
    """Register a URL for events (`deal.*`, `contact.created`, `*`). Deliveries follow Standard Webhooks:
    `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` signed with the
    `secret` returned here once. Non-2xx answers are retried with back-off; 410 switches the endpoint off.
    The events' records are sent out: the caller needs their read scopes too (`*` needs all), else 403."""
    scoping.refuse_unreadable(who, scoping.event_object_types(body.events), "Subscribing to these events")
    endpoint = await service.create(session, who, body)
    return one({**W.dump(endpoint), "secret": endpoint.secret}, endpoint.version, None, 201,
               {"Location": f"/v1/webhooks/{endpoint.id}"})


@router.get("/{webhook_id}", response_model=WebhookRead, operation_id="getWebhook", responses={**AUTHED, **NOT_FOUND})
async def get_webhook(webhook_id: UUID, request: Request, session: SessionDep, who: AdminRead) -> Response:
    """A webhook endpoint: URL, subscribed event types, whether enabled, and its delivery health."""
    endpoint = await W.get(session, who.org_id, webhook_id)
    conditional(request, endpoint.version)
    return one(W.dump(endpoint), endpoint.version, None)


@router.patch("/{webhook_id}", response_model=WebhookRead, operation_id="updateWebhook",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_webhook(webhook_id: UUID, body: WebhookUpdate, session: SessionDep, who: Admin,
                         expected: IfMatch) -> Response:
    """Change URL, event filters, description; `enabled: true` switches a disabled endpoint back on. New
    event filters need the read scopes of their records, as on creation."""
    if body.events is not None:
        scoping.refuse_unreadable(who, scoping.event_object_types(body.events), "Subscribing to these events")
    endpoint = await service.update_endpoint(session, who, webhook_id, body, expected)
    return one(W.dump(endpoint), endpoint.version, None)


@router.delete("/{webhook_id}", status_code=204, response_class=Response, operation_id="deleteWebhook",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_webhook(webhook_id: UUID, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Delete a webhook endpoint; deliveries still pending to it end `failed` and are never sent."""
    await W.delete(session, who, webhook_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookCreated, operation_id="rotateWebhookSecret",
             responses={**AUTHED, **NOT_FOUND})
async def rotate_secret(webhook_id: UUID, session: SessionDep, who: Admin) -> Response:
    """A new `secret` (shown once); deliveries from now on are signed with it."""
    endpoint = await service.rotate_secret(session, who, webhook_id)
    return one({**W.dump(endpoint), "secret": endpoint.secret}, endpoint.version, None)


@router.get("/{webhook_id}/deliveries", response_model=ListPage[DeliveryRead], operation_id="listWebhookDeliveries",
            responses={**AUTHED, **NOT_FOUND})
async def list_deliveries(webhook_id: UUID, session: SessionDep, who: AdminRead, page: PageDep,
                          status: Literal["pending", "succeeded", "failed"] | None = None) -> JSONBytes:
    """One row per message, newest first, with every attempt (time, HTTP status, duration, error)."""
    result = await service.list_deliveries(session, who.org_id, webhook_id, page, status)
    return JSONBytes(orjson.dumps({"data": [service.dump_delivery(d) for d in result.items],
                                   "next_cursor": result.next_cursor}))


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", status_code=202, response_model=DeliveryRead,
             operation_id="retryWebhookDelivery", responses={**AUTHED, **NOT_FOUND})
async def retry_delivery(webhook_id: UUID, delivery_id: UUID, session: SessionDep,
                         who: Admin) -> JSONBytes:
    """Send the message again now, with the same `webhook-id`."""
    delivery = await service.retry(session, who.org_id, webhook_id, delivery_id)
    return JSONBytes(orjson.dumps(service.dump_delivery(delivery)), status_code=202)


@router.post("/{webhook_id}/test", status_code=202, response_model=DeliveryRead, operation_id="testWebhook",
             responses={**AUTHED, **NOT_FOUND})
async def test_webhook(webhook_id: UUID, session: SessionDep, who: Admin) -> JSONBytes:
    """Send a signed `webhook.test` ping; its delivery shows up in the log like any other."""
    delivery = await service.ping(session, who, webhook_id)
    return JSONBytes(orjson.dumps(service.dump_delivery(delivery)), status_code=202)
