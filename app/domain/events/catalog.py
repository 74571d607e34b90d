"""The event catalogue: every event type the changes feed, webhooks and automations carry (API.md "Events").

`<object>.created / .updated / .deleted / .restored` exist for each kind in `app.domain.kinds` whose events
reach the feed; the others are listed here by name."""

from __future__ import annotations

from app.domain import kinds

LIFECYCLE = ("created", "updated", "deleted", "restored")

OTHER: dict[str, str] = {
    "deal.stage_changed": "a deal moved to another stage (`previous.stage_id`), beside that write's deal.updated",
    "deal.won": "a deal entered a won stage",
    "deal.lost": "a deal entered a lost stage",
    "lead.converted": "a lead became a contact (and maybe a company and a deal): data = {lead, contact, company, deal}",
    "lead.sla_breached": "the call-back task of a form's lead was not done in time (once per lead)",
    "form.submitted": "an accepted form submission (data.object = the submission)",
    "activity.completed": "done_at was set",
    "activity.due": "remind_at (or due_at when there is no remind_at) was reached, once",
    "activity.overdue": "due_at passed while not done, once",
    "contact.birthday": "the contact's birthday, at the configured hour in the org's time zone",
    "contact.erased": "the contact's personal data was removed (GDPR erasure): data.object is the anonymised "
                      "tombstone; sync clients drop what they hold about the person",
    "webhook.disabled": "an endpoint was switched off (410 or lasting failure)",
    "notification.created": "a notification for a user",
    "import.finished": "an import ended",
    "email.received": "mail synced from a mailbox (INBOX, or Sent for mail sent from another client)",
    "email.sent": "an email sent through POST /v1/emails was accepted by the mailbox's SMTP server",
    "campaign.started": "a campaign began sending: its recipients are written (data.object.stats)",
    "campaign.sent": "no recipient of the campaign is queued any more",
    "campaign.cancelled": "a campaign was cancelled; its queued recipients were skipped",
    "contact.unsubscribed": "the contact unsubscribed through a campaign's link (data.channel, data.campaign_id)",
    "email.failed": "an email could not be sent (the SMTP server refused it, or every retry failed): data.object.error",
    "sms.sent": "a text sent through POST /v1/sms was accepted by the org's SMS gateway",
    "call.created": "a call was logged (POST /v1/calls or the telephony provider's event), matched to a contact or "
                    "lead, with its `call` activity (data.object.activity_id)",
    "sms.failed": "a text could not be sent (the gateway refused it, or every retry failed): data.object.error",
    "document.created": "a document was requested for a deal or a contact: its number is taken, it is `pending`",
    "document.ready": "a document's PDF was rendered (GET /v1/documents/{id}/file)",
    "document.failed": "a document could not be rendered (data.object.error); it keeps its number",
    "document.payment_recorded": "a payment was recorded against a document (data.payment; data.object has the new "
                                 "paid_amount and payment_status)",
    "document.paid": "a document's payments reached its total (once)",
    "document.voided": "a document was voided (payment_status `void`); it keeps its number",
    "file.created": "a file was attached to a record (data.object = its metadata: object_type, object_id, name, "
                    "type, size, sha256)",
    "file.deleted": "a file was deleted (it can be restored for 30 days)",
    "file.restored": "a deleted file was restored",
}


def types() -> tuple[str, ...]:
    """Every event type, lifecycle ones first."""
    lifecycle = tuple(f"{k.object_type}.{action}" for k in kinds.having("feed") if k.lifecycle for action in LIFECYCLE)
    return lifecycle + tuple(OTHER)


def known(event_type: str) -> bool:
    return event_type in types()
