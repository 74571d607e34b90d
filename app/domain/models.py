"""Every table, imported once so that metadata (alembic, tests) sees them all."""

from app.domain.activities.models import Activity
from app.domain.audit.models import AuditEntry
from app.domain.auth.models import ApiKey, ApiKeyPrefix, LoginEmail, RefreshToken, User
from app.domain.automations.models import Automation, AutomationRun
from app.domain.base import Base
from app.domain.campaigns.models import Campaign, Recipient, Segment
from app.domain.catalog.models import Product, RefList, RefListItem
from app.domain.companies.models import Company
from app.domain.contacts.models import Contact
from app.domain.custom_fields.models import CustomField
from app.domain.deals.models import Deal, LineItem, StageMove
from app.domain.documents.models import Document, DocumentCounter, DocumentPayment, DocumentTemplate
from app.domain.events.models import Event, EventCommit, EventPosition
from app.domain.external_refs import ExternalRef
from app.domain.files.models import StoredFile
from app.domain.forms.models import Form, FormKey, FormSubmission, SlaTimer
from app.domain.imports.models import Import, ImportKey
from app.domain.leads.models import Lead
from app.domain.mail.models import Email, Mailbox, MailFolder
from app.domain.notifications.models import Notification, OnceMark
from app.domain.orgs.models import Org
from app.domain.pipelines.models import Pipeline, Stage
from app.domain.reminders.models import TimerFailure
from app.domain.sms.models import Sms, SmsGateway
from app.domain.teams.models import Team, TeamMember
from app.domain.telephony.models import Call, CallOrigination, TelephonySettings
from app.domain.templates.models import Template
from app.domain.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = ["Activity", "Automation", "AutomationRun", "ApiKey", "AuditEntry", "ApiKeyPrefix", "Base", "Campaign", "Company", "Contact", "CustomField", "Deal", "Document", "DocumentCounter", "DocumentPayment", "DocumentTemplate", "Event", "EventCommit", "EventPosition", "ExternalRef",
           "Email", "Form", "FormKey", "FormSubmission", "Import", "ImportKey", "Lead", "LineItem", "LoginEmail", "Mailbox", "MailFolder", "SlaTimer", "Notification", "OnceMark", "Org", "Pipeline", "Product", "Recipient", "RefList", "RefListItem", "RefreshToken", "Segment", "Sms", "SmsGateway", "Stage", "StageMove", "StoredFile",
           "Team", "TeamMember", "Call", "CallOrigination", "TelephonySettings", "Template", "TimerFailure", "User", "WebhookDelivery", "WebhookEndpoint"]
