from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import Query, Request, Response, status

from app.api.deps import IfMatch, PageDep, SessionDep, SettingsDep, conditional, require
from app.api.problems import AUTHED, NOT_FOUND, PRECONDITION
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.forms import service
from app.domain.forms.schemas import Embed, FormCreate, FormRead, FormUpdate, SubmissionRead

router = Router(prefix="/v1/forms", tags=["forms"])
Admin = Annotated[Principal, require("forms:write", Role.admin)]
AdminRead = Annotated[Principal, require("forms:read", Role.admin)]
F = service.FORM


@router.get("", response_model=ListPage[FormRead], operation_id="listForms", responses=AUTHED)
async def list_forms(session: SessionDep, who: AdminRead, page: PageDep) -> JSONBytes:
    """The organisation's web forms, newest first, with their public keys and embed settings."""
    result = await service.list_page(session, who.org_id, page)
    return JSONBytes(orjson.dumps({"data": [F.dump(f) for f in result.items], "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=FormRead, operation_id="createForm", responses=AUTHED)
async def create_form(body: FormCreate, session: SessionDep, who: Admin) -> Response:
    """A lead form for a website. Only `name` is required; the response carries the `public_key` that the
    page posts to (`POST /v1/public/forms/{public_key}/submissions`)."""
    form = await service.create(session, who, body)
    return one(F.dump(form), form.version, None, 201, {"Location": f"/v1/forms/{form.id}"})


@router.get("/{form_id}", response_model=FormRead, operation_id="getForm", responses={**AUTHED, **NOT_FOUND})
async def get_form(form_id: UUID, request: Request, session: SessionDep, who: AdminRead) -> Response:
    """A web form: fields, allowed origins, assignment rule, call-back SLA and its embed snippets."""
    form = await service.get(session, who.org_id, form_id)
    conditional(request, form.version)
    return one(F.dump(form), form.version, None)


@router.patch("/{form_id}", response_model=FormRead, operation_id="updateForm",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_form(form_id: UUID, body: FormUpdate, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Change a web form. Its public key stays, so embedded pages keep working."""
    form = await service.update(session, who, form_id, body, expected)
    return one(F.dump(form), form.version, None)


@router.delete("/{form_id}", status_code=204, response_class=Response, operation_id="deleteForm",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_form(form_id: UUID, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """The form's key stops working at once; its submissions stay readable."""
    await service.delete_form(session, who, form_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{form_id}/rotate-key", response_model=FormRead, operation_id="rotateFormKey",
             responses={**AUTHED, **NOT_FOUND})
async def rotate_key(form_id: UUID, session: SessionDep, who: Admin) -> Response:
    """A new `public_key`; the old one answers 404 from now on (update the page's snippet)."""
    form = await service.rotate_key(session, who, form_id)
    return one(F.dump(form), form.version, None)


@router.get("/{form_id}/embed", response_model=Embed, operation_id="getFormEmbed", responses={**AUTHED, **NOT_FOUND})
async def embed(form_id: UUID, request: Request, session: SessionDep, settings: SettingsDep, who: AdminRead) -> Embed:
    """Ready-to-paste snippets: a plain HTML form (with the honeypot and tracking fields) and a fetch() call."""
    form = await service.get(session, who.org_id, form_id)
    return service.embed(form, settings.public_url or str(request.base_url))


@router.get("/{form_id}/submissions", response_model=ListPage[SubmissionRead], operation_id="listFormSubmissions",
            responses={**AUTHED, **NOT_FOUND})
async def submissions(form_id: UUID, session: SessionDep, who: AdminRead, page: PageDep,
                      which: Annotated[Literal["accepted", "spam"], Query(
                          alias="status", description="`spam`: the dropped ones (honeypot, too fast, rate limited), kept "
                                      "CRM_FORM_SPAM_RETENTION_DAYS")] = "accepted") -> JSONBytes:
    """Every accepted submission, newest first, with its tracking data and what it became; or, with
    `status=spam`, those the intake dropped, with their `spam_reason`."""
    result = await service.submissions(session, who, form_id, page, which)
    return JSONBytes(orjson.dumps({"data": [service.dump_submission(s) for s in result.items],
                                   "next_cursor": result.next_cursor}))
