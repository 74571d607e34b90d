from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from app.domain.activities.schemas import ActivityRead
from app.domain.contacts.schemas import ContactRead
from app.domain.deals.schemas import DealRead
from app.domain.documents.schemas import DocumentRead
from app.domain.events.schemas import Envelope
from app.domain.files.schemas import FileRead
from app.domain.forms.schemas import SubmissionRead
from app.domain.leads.schemas import LeadRead
from app.domain.mail.schemas import EmailRead
from app.domain.sms.schemas import SmsRead
from app.domain.telephony.schemas import CallRead

NOT_YET_STORED = "always [] for now: this area is not stored yet (arrives with mail, telephony and files)"


class ContactExport(BaseModel):
    """Everything held about one person, each record as its own GET returns it (soft-deleted ones included)."""

    contact: ContactRead
    activities: list[ActivityRead] = Field(description="linked to the contact or to one of its leads")
    deals: list[DealRead]
    leads: list[LeadRead] = Field(description="leads linked to the contact (e.g. converted into it)")
    submissions: list[SubmissionRead] = Field(description="form submissions of the contact and its leads")
    events: list[Envelope] = Field(description="the events of all of the above, oldest first")
    emails: list[EmailRead] = Field(description="mail linked to the contact or its leads (needs `mail:read`)")
    sms: list[SmsRead] = Field(description="texts linked to the contact or its leads (needs `mail:read`)")
    calls: list[CallRead] = Field(description="calls with the contact or its leads (needs `calls:read`)")
    documents: list[DocumentRead] = Field(description=(
        "letters to the contact and documents of its deals (needs `documents:read`); the PDFs are at "
        "GET /v1/documents/{id}/file"))
    files: list[FileRead] = Field(description="files attached to the contact or its leads (metadata; the "
                                               "content at GET /v1/files/{id}/content; needs `files:read`)")
    exported_at: datetime


class ErasureCounts(BaseModel):
    activities: int
    leads: int
    submissions: int
    deals: int = Field(description="deals kept (values, stages), their titles cleared of the person's name")
    events: int = Field(description="event payloads scrubbed (the changes feed and webhook history)")
    webhook_deliveries: int
    notifications: int
    emails: int = Field(0, description="emails whose subject, bodies, attachments and the person's addresses "
                                      "were erased")
    sms: int = Field(0, description="texts whose words (and the person's number) were erased")
    files: int = Field(0, description="files attached to the contact or its leads, removed with their content")
    letters: int = Field(0, description="letters to the contact: their text and PDF erased, their number kept, voided")
    documents_kept: int = Field(0, description=(
        "quotes, invoices and contracts of the contact's deals, kept as the business records the law requires "
        "(GDPR art. 17(3)(b)); the contact's erasure leaves them as issued"))
    calls: int = Field(0, description="calls whose number (the person's) and recording link were erased")


class ErasureResult(BaseModel):
    id: UUID = Field(description="the contact")
    status: Literal["erased"] = "erased"
    erased_at: datetime
    counts: ErasureCounts
