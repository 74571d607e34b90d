"""Email and SMS templates: sandboxed Jinja2 placeholders (`{{ contact.first_name }}`, `company.*`, `deal.*`,
`user.*`, `org.*`, `<obj>.custom_fields.<key>`, `{{ unsubscribe_url }}`). Admins and managers write them;
everyone reads them."""

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
from app.domain.templates import service
from app.domain.templates.schemas import PreviewRequest, Rendered, TemplateCreate, TemplateRead, TemplateUpdate

router = Router(prefix="/v1/templates", tags=["mail"])
Writer = Annotated[Principal, require("campaigns:write", Role.manager)]
Reader = Annotated[Principal, require("campaigns:read")]
T = service.TEMPLATE


@router.get("", response_model=ListPage[TemplateRead], operation_id="listTemplates", responses=AUTHED)
async def list_templates(session: SessionDep, who: Reader, page: PageDep) -> JSONBytes:
    """The organisation's templates (sort `created_at` or `name`)."""
    result = await service.list_page(session, who, page)
    return JSONBytes(orjson.dumps({"data": [T.dump(t) for t in result.items], "next_cursor": result.next_cursor}))


@router.post("", status_code=201, response_model=TemplateRead, operation_id="createTemplate", responses=AUTHED)
async def create_template(body: TemplateCreate, session: SessionDep, who: Writer) -> Response:
    """A template (admins and managers). A placeholder that does not parse → 422 naming the field
    (`loc: ["body", "body_html"]`) and the line (`msg`: `line <n>: ...`)."""
    template = await service.create(session, who, body)
    return one(T.dump(template), template.version, None, 201, {"Location": f"/v1/templates/{template.id}"})


@router.get("/{template_id}", response_model=TemplateRead, operation_id="getTemplate",
            responses={**AUTHED, **NOT_FOUND})
async def get_template(template_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """One template."""
    template = await T.get(session, who, template_id)
    conditional(request, template.version)
    return one(T.dump(template), template.version, None)


@router.patch("/{template_id}", response_model=TemplateRead, operation_id="updateTemplate",
              responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_template(template_id: UUID, body: TemplateUpdate, session: SessionDep, who: Writer,
                          expected: IfMatch) -> Response:
    """Change a template (checked as on create)."""
    template = await service.update(session, who, template_id, body, expected)
    return one(T.dump(template), template.version, None)


@router.delete("/{template_id}", status_code=204, response_class=Response, operation_id="deleteTemplate",
               responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_template(template_id: UUID, session: SessionDep, who: Writer, expected: IfMatch) -> Response:
    """Remove a template."""
    await service.delete(session, who, template_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{template_id}/preview", response_model=Rendered, operation_id="previewTemplate",
             responses={**AUTHED, **NOT_FOUND})
async def preview_template(template_id: UUID, body: PreviewRequest, session: SessionDep, who: Reader) -> Any:
    """The template rendered for a contact (and a deal) you may read, as you would send it; HTML placeholders are
    escaped. Changes nothing. A placeholder that cannot be rendered → 422 naming the field. It shows the records'
    data: the credential needs `contacts:read` and `companies:read` (and `deals:read` with a deal) as well."""
    scoping.refuse_unreadable(who, ["contact", "company", *(["deal"] if body.deal_id else [])], "A preview")
    return await service.preview(session, who, template_id, body)
