"""The worker's side of documents: a pending document's template is rendered (sandboxed Jinja2, the values
fixed when it was requested), turned into a PDF by WeasyPrint, stored (`app.domain.documents.storage`), and the
document becomes `ready` (`document.ready`); a template that cannot be rendered or HTML WeasyPrint cannot lay
out makes it `failed` with the reason (`document.failed`), its number kept.

The document's row stays locked while it renders (`SKIP LOCKED`): a second worker given the same document skips
it. The PDF may load nothing from outside (no file, no network): only `data:` URLs."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from app.db import Database
from app.domain.documents import service, storage
from app.domain.documents.models import Document
from app.domain.errors import CRMError
from app.domain.events.service import committed_event_ids
from app.domain.templates import render
from app.logging import log
from app.settings import Settings

MAX_ATTEMPTS = 3


def _now() -> datetime:
    return datetime.now(UTC)


def to_pdf(html: str) -> bytes:
    """HTML to PDF; loads nothing but `data:` URLs (no server files, no requests to anywhere)."""
    fetcher = URLFetcher(allowed_protocols={"data"}, timeout=1, allow_redirects=False)
    return HTML(string=html, url_fetcher=fetcher).write_pdf()


def html_of(doc: Document) -> str:
    """The document's HTML; CRMError (422 with the reason) when a placeholder cannot be rendered."""
    return render.render({"body_html": doc.body_html}, doc.context)["html"] or ""


async def _count_attempt(db: Database, org_id: UUID, document_id: UUID) -> int | None:
    """Count this attempt in a transaction of its own, before the render starts: a render that never ends (its
    job timed out, its worker was killed) counts too. None when the document is no longer pending."""
    async with db.for_org(org_id) as session:
        return await session.scalar(
            update(Document).where(Document.org_id == org_id, Document.id == document_id,
                                   Document.status == "pending")
            .values(render_attempts=Document.render_attempts + 1).returning(Document.render_attempts)
            .execution_options(synchronize_session=False))


def _rendered(doc: Document) -> bytes:
    """Template and PDF, in a worker thread (both can take a while; the event loop goes on meanwhile)."""
    return to_pdf(html_of(doc))


async def render_document(db: Database, settings: Settings, org_id: UUID,
                          document_id: UUID) -> tuple[str, list[tuple[UUID, UUID]]]:
    """-> (`ready`, `failed` or `skipped`, events written). A document whose render was started MAX_ATTEMPTS
    times without finishing fails instead of being tried forever."""
    attempts = await _count_attempt(db, org_id, document_id)
    if attempts is None:
        return "skipped", []
    async with db.for_org(org_id) as session:
        doc = await session.scalar(select(Document).where(
            Document.org_id == org_id, Document.id == document_id, Document.status == "pending")
            .with_for_update(skip_locked=True))
        if doc is None:
            return "skipped", []
        error: str | None = None
        if attempts > MAX_ATTEMPTS:
            error = f"the render did not finish in {MAX_ATTEMPTS} attempts"
        else:
            try:
                pdf = await asyncio.to_thread(_rendered, doc)
            except CRMError as exc:
                error = exc.detail
            except Exception as exc:  # noqa: BLE001 - whatever WeasyPrint raises, the document failed to render
                error = f"the PDF could not be made: {type(exc).__name__}: {exc}"
        if error is None:
            doc.file_key = storage.save(settings, org_id, doc.id, pdf)
            doc.file_size, doc.status, doc.rendered_at, doc.error = len(pdf), "ready", _now(), None
            doc.sha256 = hashlib.sha256(pdf).hexdigest()
        else:
            doc.status, doc.error = "failed", error[:500]
        doc.updated_at = _now()
        await session.flush()
        outcome = doc.status
        await service.emit(session, None, doc, f"document.{outcome}")
    log.info("document_render", document_id=str(document_id), outcome=outcome, attempt=attempts, error=error)
    return outcome, committed_event_ids(session)


async def pending(session: AsyncSession, grace_seconds: float, limit: int = 500) -> list[tuple[UUID, UUID]]:
    """Documents still pending past the grace period (their job was lost, or its worker died): for the sweep."""
    cutoff = datetime.fromtimestamp(_now().timestamp() - grace_seconds, UTC)
    rows = await session.execute(select(Document.org_id, Document.id).where(
        Document.status == "pending", Document.created_at < cutoff).order_by(Document.created_at).limit(limit))
    return [(r.org_id, r.id) for r in rows]
