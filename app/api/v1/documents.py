"""Documents: templates (admins), quotes, invoices, contracts and letters requested for deals and contacts and
rendered to PDF by a worker, their payments, voiding and signed public links."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import Path, Query, Request, Response, status
from fastapi.responses import FileResponse

from app.api.deps import IfMatch, PageDep, SessionDep, SettingsDep, conditional, require
from app.api.problems import AUTHED, CONFLICT, NOT_FOUND, PRECONDITION, VALIDATION, problem_doc
from app.api.records import JSONBytes, one
from app.api.routing import Router
from app.api.schemas import ListPage
from app.db import set_org
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.automations.schedules import clock
from app.domain.documents import links, service, storage
from app.domain.documents.models import Document
from app.domain.documents.schemas import (
    DocumentAccepted,
    DocumentRead,
    DocumentRequest,
    DocumentTemplateCreate,
    DocumentTemplateRead,
    DocumentTemplateUpdate,
    PaymentIn,
    PaymentRead,
    ShareLink,
)
from app.domain.errors import Conflict, NotFound
from app.settings import Settings

templates_router = Router(prefix="/v1/document-templates", tags=["documents"])
router = Router(prefix="/v1/documents", tags=["documents"])
deal_router = Router(prefix="/v1/deals", tags=["documents"])
contact_router = Router(prefix="/v1/contacts", tags=["documents"])
public_router = Router(prefix="/v1/public/documents", tags=["documents"])

Reader = Annotated[Principal, require("documents:read")]
Writer = Annotated[Principal, require("documents:write", Role.member)]
Manager = Annotated[Principal, require("documents:write", Role.manager)]
Admin = Annotated[Principal, require("documents:write", Role.admin)]
T = service.TEMPLATE
PDF = {200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
             "description": "the PDF"}}
NOT_READY = problem_doc(409, "The document is not rendered: `pending` (try again shortly) or `failed` (see `error`)")
NOT_SIGNED = problem_doc(404, "Not a link this server signed, or an expired one")


# --- templates -----------------------------------------------------------------------------------------


@templates_router.get("", response_model=ListPage[DocumentTemplateRead], operation_id="listDocumentTemplates",
                      responses=AUTHED)
async def list_templates(
    session: SessionDep, who: Reader, page: PageDep,
    kind: Annotated[Literal["quote", "invoice", "contract", "letter"] | None, Query()] = None,
) -> JSONBytes:
    """The organisation's document templates (sort `created_at` or `name`)."""
    result = await service.list_templates(session, who, page, kind)
    return JSONBytes(orjson.dumps({"data": [T.dump(t) for t in result.items], "next_cursor": result.next_cursor}))


@templates_router.post("", status_code=201, response_model=DocumentTemplateRead,
                       operation_id="createDocumentTemplate", responses=AUTHED)
async def create_template(body: DocumentTemplateCreate, session: SessionDep, who: Admin) -> Response:
    """A document template (admins): sandboxed Jinja2 HTML with the placeholders of email templates plus
    `document.*` (`number`, `kind`, `issued_at`, `due_date`, `total.amount`, `total.currency`). A body that does
    not parse → 422 naming the field (`loc: ["body", "body_html"]`) and the line (`msg`: `line <n>: ...`)."""
    template = await service.create_template(session, who, body)
    return one(T.dump(template), template.version, None, 201,
               {"Location": f"/v1/document-templates/{template.id}"})


@templates_router.get("/{template_id}", response_model=DocumentTemplateRead, operation_id="getDocumentTemplate",
                      responses={**AUTHED, **NOT_FOUND})
async def get_template(template_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """One document template."""
    template = await T.get(session, who, template_id)
    conditional(request, template.version)
    return one(T.dump(template), template.version, None)


@templates_router.patch("/{template_id}", response_model=DocumentTemplateRead,
                        operation_id="updateDocumentTemplate", responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def update_template(template_id: UUID, body: DocumentTemplateUpdate, session: SessionDep, who: Admin,
                          expected: IfMatch) -> Response:
    """Change a template's name, prefix or body (checked as on create); its kind stays. Documents already
    requested keep what they were made of."""
    template = await service.update_template(session, who, template_id, body, expected)
    return one(T.dump(template), template.version, None)


@templates_router.delete("/{template_id}", status_code=204, response_class=Response,
                         operation_id="deleteDocumentTemplate", responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def delete_template(template_id: UUID, session: SessionDep, who: Admin, expected: IfMatch) -> Response:
    """Remove a template; its documents stay."""
    await service.delete_template(session, who, template_id, expected)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- requesting ----------------------------------------------------------------------------------------


def _accepted(doc: Document) -> Response:
    return one({"id": str(doc.id), "status": doc.status, "number": doc.number}, doc.version, None, 202,
               {"Location": f"/v1/documents/{doc.id}"})


@deal_router.post("/{deal_id}/documents", status_code=202, response_model=DocumentAccepted,
                      operation_id="createDealDocument", responses={**AUTHED, **NOT_FOUND})
async def create_deal_document(deal_id: UUID, body: DocumentRequest, session: SessionDep, who: Writer) -> Response:
    """A quote, invoice or contract (or a letter) for a deal you may read: it gets its number at once
    (`<number_prefix>-<YYYY>-<00001>`, per organisation, kind and year), its total is the deal's value with tax
    (its value without line items) now, and a worker renders the PDF (`status` `pending` → `ready` or
    `failed`). The placeholders show the deal, its contact and company as the organisation holds them."""
    return _accepted(await service.request_for_deal(session, who, deal_id, body))


@contact_router.post("/{contact_id}/documents", status_code=202, response_model=DocumentAccepted,
                      operation_id="createContactDocument", responses={**AUTHED, **NOT_FOUND})
async def create_contact_document(contact_id: UUID, body: DocumentRequest, session: SessionDep,
                                  who: Writer) -> Response:
    """A letter to a contact you may read (a `letter` template; others → 422): numbered at once, rendered by a
    worker. Letters have no total."""
    return _accepted(await service.request_for_contact(session, who, contact_id, body))


# --- documents -----------------------------------------------------------------------------------------


@router.get("", response_model=ListPage[DocumentRead], operation_id="listDocuments", responses=AUTHED)
async def list_documents(
    session: SessionDep, who: Reader, page: PageDep,
    deal_id: Annotated[UUID | None, Query(description="documents of this deal")] = None,
    contact_id: Annotated[UUID | None, Query(description="documents addressed to this contact (letters, and the "
                                                         "documents of deals whose contact it is)")] = None,
    kind: Annotated[Literal["quote", "invoice", "contract", "letter"] | None, Query()] = None,
) -> JSONBytes:
    """Documents of deals and contacts you may read, newest first by default (`sort` `created_at` or
    `-created_at`); keyset pages."""
    result = await service.list_documents(session, who, page, service.filters(deal_id, contact_id, kind))
    return JSONBytes(orjson.dumps({"data": [service.dump(d) for d in result.items],
                                   "next_cursor": result.next_cursor}))


@router.get("/{document_id}", response_model=DocumentRead, operation_id="getDocument",
            responses={**AUTHED, **NOT_FOUND})
async def get_document(document_id: UUID, request: Request, session: SessionDep, who: Reader) -> Response:
    """One document, if you may read its deal (or, for a letter, its contact)."""
    doc = await service.DOCUMENT.get(session, who, document_id)
    conditional(request, doc.version)
    return one(service.dump(doc), doc.version, None)


def _pdf(settings: Settings, doc: Document) -> FileResponse:
    path = storage.path_of(settings, doc.file_key) if doc.file_key else None
    if path is None:
        raise NotFound("The document's file is gone")
    return FileResponse(path, media_type="application/pdf", filename=f"{doc.number}.pdf",
                        content_disposition_type="inline")


@router.get("/{document_id}/file", response_class=Response, operation_id="getDocumentFile",
            responses={**PDF, **AUTHED, **NOT_FOUND, **NOT_READY})
async def get_document_file(document_id: UUID, session: SessionDep, settings: SettingsDep, who: Reader) -> Response:
    """The PDF (`application/pdf`, inline, named `<number>.pdf`). 409 while the document is `pending` (try again
    when `status` is `ready`) or when it `failed`."""
    doc = await service.DOCUMENT.get(session, who, document_id)
    if doc.status != "ready":
        raise Conflict(f"The document is {doc.status}" + (f": {doc.error}" if doc.error else
                                                          "; its PDF is being rendered"), document_status=doc.status)
    return _pdf(settings, doc)


@router.post("/{document_id}/share", response_model=ShareLink, operation_id="shareDocument",
             responses={**AUTHED, **NOT_FOUND, **NOT_READY})
async def share_document(document_id: UUID, request: Request, session: SessionDep, settings: SettingsDep,
                         who: Writer) -> Any:
    """A signed link that opens the PDF without credentials until `expires_at` (`CRM_DOCUMENT_LINK_TTL_SECONDS`,
    7 days by default); a tampered or expired link → 404. Nothing is stored: a link cannot be revoked before it
    expires, but voiding the document closes every link to it. 409 unless the document is `ready`."""
    doc = await service.DOCUMENT.get(session, who, document_id)
    if doc.status != "ready":
        raise Conflict(f"The document is {doc.status}: only a rendered document can be shared", document_status=doc.status)
    expires_at = (clock(settings.clock_offset_seconds) + timedelta(seconds=settings.document_link_ttl_seconds)
                  ).replace(microsecond=0)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    token = links.token(settings, doc.org_id, doc.id, expires_at)
    return {"url": f"{base}/v1/public/documents/{token}", "expires_at": expires_at}


@router.post("/{document_id}/void", response_model=DocumentRead, operation_id="voidDocument",
             responses={**AUTHED, **NOT_FOUND, **PRECONDITION})
async def void_document(document_id: UUID, session: SessionDep, who: Manager, expected: IfMatch) -> Response:
    """Void a document (managers and admins): `payment_status` becomes `void` (`document.voided`), it takes no
    more payments and its shared links stop working; its number and PDF stay. Repeating it changes nothing."""
    doc = await service.void(session, who, document_id, expected)
    return one(service.dump(doc), doc.version, None)


@router.post("/{document_id}/payments", status_code=201, response_model=PaymentRead,
             operation_id="createDocumentPayment", responses={**AUTHED, **NOT_FOUND, **CONFLICT})
async def create_payment(document_id: UUID, body: PaymentIn, session: SessionDep, who: Writer) -> Response:
    """Record a payment in the document's currency (another → 422): `paid_amount` is their sum, and
    `payment_status` becomes `partially_paid` below `total` and `paid` from it on (`document.paid`, once).
    409 for a document without a total (a letter) or a void one."""
    payment = await service.add_payment(session, who, document_id, body)
    return JSONBytes(orjson.dumps(service.dump_payment(payment)), status_code=201)


@router.get("/{document_id}/payments", response_model=ListPage[PaymentRead], operation_id="listDocumentPayments",
            responses={**AUTHED, **NOT_FOUND})
async def list_payments(document_id: UUID, session: SessionDep, who: Reader) -> JSONBytes:
    """The document's payments, oldest first (all of them: one page, `next_cursor` null)."""
    found = await service.payments(session, who, document_id)
    return JSONBytes(orjson.dumps({"data": [service.dump_payment(p) for p in found], "next_cursor": None}))


# --- public links --------------------------------------------------------------------------------------


@public_router.get("/{token}", response_class=Response, operation_id="getSharedDocument",
                   responses={**PDF, **NOT_SIGNED, **VALIDATION})
async def get_shared_document(token: Annotated[str, Path(max_length=200)], session: SessionDep,
                              settings: SettingsDep) -> Response:
    """The PDF behind a link made by `POST /v1/documents/{id}/share`, without credentials. A link this server
    did not sign, an expired one, or one to a void document → 404."""
    org_id, document_id = links.read(settings, token, clock(settings.clock_offset_seconds))
    await set_org(session, org_id)
    doc = await service.DOCUMENT.get(session, org_id, document_id)
    if doc.status != "ready" or doc.payment_status == "void":
        raise NotFound("No such document link")
    return _pdf(settings, doc)
