"""Every kind of record the API serves, listed once: its table, its names, its read model and the rules
that hold for it on every path.

- Which rows a caller may read is one rule (`RecordType.readable`): the caller's organisation and, unless
  asked otherwise, not soft-deleted. Lists, gets, sub-resources, timelines, exports and reports all take it
  from here, as SQLAlchemy (`readable`) or as SQL text for hand-written statements (`readable_sql`). It takes
  the reader (a `Principal`), so what else limits a caller's reads belongs here too, once.
- What identifies a record (`identity`): at least one of these fields holds a value, on create and after
  every update.
- Lists other modules used to keep by hand (custom-field objects, import objects, timelines, activity
  links, change-feed object types) are `names(...)` of this registry.

It sits low: it imports the areas' models and read schemas, never a service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, ColumnElement, and_, any_, bindparam, literal, literal_column, or_, select
from sqlalchemy.dialects.postgresql import UUID as PGUUID

from app.domain.activities.models import Activity
from app.domain.activities.schemas import ActivityRead
from app.domain.auth.models import Role
from app.domain.auth.principal import Principal
from app.domain.automations.models import Automation
from app.domain.automations.schemas import AutomationRead
from app.domain.campaigns.models import Campaign, Segment
from app.domain.campaigns.schemas import CampaignRead, SegmentRead
from app.domain.catalog.models import Product, RefList
from app.domain.catalog.schemas import ProductRead, RefListRead
from app.domain.companies.models import Company
from app.domain.companies.schemas import CompanyRead
from app.domain.contacts.models import Contact
from app.domain.contacts.schemas import ContactRead
from app.domain.deals.models import Deal
from app.domain.deals.schemas import DealRead
from app.domain.documents.models import Document, DocumentTemplate
from app.domain.documents.schemas import DocumentRead, DocumentTemplateRead
from app.domain.files.models import PARENTS, StoredFile
from app.domain.files.schemas import FileRead
from app.domain.forms.models import Form
from app.domain.forms.schemas import FormRead
from app.domain.imports.models import Import
from app.domain.imports.schemas import ImportRead
from app.domain.leads.models import Lead
from app.domain.leads.schemas import LeadRead
from app.domain.mail.models import Email, Mailbox
from app.domain.mail.schemas import EmailRead, MailboxRead
from app.domain.notifications.models import Notification
from app.domain.notifications.schemas import NotificationRead
from app.domain.orgs.models import Org
from app.domain.pipelines.models import Pipeline
from app.domain.pipelines.schemas import PipelineRead
from app.domain.schemas import ReadModel
from app.domain.sms.models import Sms
from app.domain.sms.schemas import SmsRead
from app.domain.teams.models import Team, TeamMember
from app.domain.teams.schemas import TeamRead
from app.domain.telephony.models import Call
from app.domain.telephony.schemas import CallRead
from app.domain.templates.models import Template
from app.domain.templates.schemas import TemplateRead
from app.domain.webhooks.models import WebhookEndpoint
from app.domain.webhooks.schemas import WebhookRead

Reader = Principal | UUID
"""Who reads: a caller (every rule applies to them) or, for the system's own work, an organisation's id."""


class _Bound:
    """Stands for the reader in statements built once: its values come as bound parameters
    (`reader_params`), so one statement serves every reader. `BOUND_UNLIMITED` serves only readers whom record
    visibility does not limit (`sees_all`): its statement carries no visibility rule (only `:org_id`), so it
    is smaller to plan."""

    def __init__(self, limited: bool = True) -> None:
        self.limited = limited

    def __repr__(self) -> str:
        return "BOUND" if self.limited else "BOUND_UNLIMITED"


BOUND = _Bound()
BOUND_UNLIMITED = _Bound(limited=False)


def org_of(who: Reader) -> UUID:
    return who.org_id if isinstance(who, Principal) else who


def sees_all(who: Reader) -> bool:
    """Whether record visibility leaves `who` unlimited: the system, org API keys, forms, admins and owners.
    Members, viewers and managers (people, through a login or a personal token) follow the org's
    `record_visibility`."""
    return not isinstance(who, Principal) or who.type != "user" or who.role.at_least(Role.admin)


def reader_params(who: Reader) -> dict[str, Any]:
    """The bound values a `BOUND` rule needs."""
    if sees_all(who):
        return {"org_id": org_of(who), "reader_id": None, "sees_all": True}
    assert isinstance(who, Principal)
    return {"org_id": org_of(who), "reader_id": who.user_id, "sees_all": False}


def _visible(owners: tuple[ColumnElement[Any], ...], org: Any, reader: Any, all_: Any) -> ColumnElement[bool]:
    """Record visibility (API.md "Security and administration"), for records owned by `owners` (any of them).

    `record_visibility` of the org: `all` → everyone sees every record; `team` → a person sees what they own
    and what the members of their teams own; `own` → what they own. Either way the manager of a team sees
    what its members own. `all_` (the reader is unlimited, see `sees_all`) short-circuits everything; the
    org's mode is read inside the statement, so the rule costs no round trip."""
    mode = select(Org.record_visibility).where(Org.id == org).scalar_subquery()
    managed = (select(TeamMember.user_id)
               .join(Team, and_(Team.org_id == TeamMember.org_id, Team.id == TeamMember.team_id))
               .where(TeamMember.org_id == org, Team.manager_id == reader, Team.deleted_at.is_(None)))
    mine = select(TeamMember.team_id).where(TeamMember.org_id == org, TeamMember.user_id == reader)
    mates = (select(TeamMember.user_id)
             .join(Team, and_(Team.org_id == TeamMember.org_id, Team.id == TeamMember.team_id))
             .where(TeamMember.org_id == org, TeamMember.team_id.in_(mine), Team.deleted_at.is_(None)))
    team, every = literal_column("'team'"), literal_column("'all'")
    per_owner = [or_(owner == reader, owner.in_(managed), and_(mode == team, owner.in_(mates))) for owner in owners]
    return or_(all_, mode == every, *per_owner)


@dataclass(frozen=True, eq=False)  # each kind is one object: compared and hashed by identity
class RecordType:
    object_type: str  # "contact": in events, custom fields, schemas and the changes feed
    plural: str  # "contacts": in URLs and import objects
    label: str  # "Contact": in messages
    model: Any
    read: type[ReadModel] | None = None  # the read model, where the area defines it beside its schemas
    identity: tuple[str, ...] = ()  # at least one of these fields holds a value
    identity_rule: str = ""
    timeline: bool = False  # GET /v1/<plural>/{id}/timeline
    importable: bool = False  # POST /v1/imports object=<plural>
    activity_ref: bool = False  # activities link to it by `<object_type>_id`
    feed: bool = True  # its events carry object_type=<object_type> in the changes feed and webhooks
    owners: tuple[str, ...] = ()  # record visibility applies: who may read depends on these user columns
    area: str = ""  # the scope area (`<area>:read`) when it is not `plural`
    lifecycle: bool = True  # its feed events include <object_type>.created/updated/deleted/restored
    # visibility of its own kind (columns, who, org, reader, sees-all): for records seen through others
    visible: Callable[[Any, Any, Any, Any, Any], ColumnElement[bool]] | None = None
    visible_always: bool = False  # `visible` holds for every reader, also those who see everything (files)

    @property
    def scope_area(self) -> str:
        return self.area or self.plural

    @property
    def soft_delete(self) -> bool:
        return hasattr(self.model, "deleted_at")

    @property
    def custom_fields(self) -> bool:
        return hasattr(self.model, "custom_fields")

    @property
    def external_ids(self) -> bool:
        return hasattr(self.model, "external_ids")

    def readable(self, who: Reader | _Bound, include_deleted: bool = False, of: Any = None) -> ColumnElement[bool]:
        """THE rule for which rows of this kind `who` may read. `of`: an alias of the table (default the
        model); `who=BOUND`: the reader's values as bound parameters (see `reader_params`)."""
        table = self.model if of is None else of
        columns = getattr(table, "c", table)
        if isinstance(who, _Bound):
            org: Any = bindparam("org_id", type_=PGUUID(as_uuid=True))
            reader: Any = bindparam("reader_id", type_=PGUUID(as_uuid=True))
            all_: Any = bindparam("sees_all", type_=Boolean)
        else:
            org = org_of(who)
            params = reader_params(who)
            reader, all_ = literal(params["reader_id"], PGUUID(as_uuid=True)), params["sees_all"]
        rule: ColumnElement[bool] = columns.org_id == org
        if self.soft_delete and not include_deleted:
            rule = rule & columns.deleted_at.is_(None)
        limited = who.limited if isinstance(who, _Bound) else not all_
        if self.owners and limited:
            rule = rule & _visible(tuple(getattr(columns, c) for c in self.owners), org, reader, all_)
        if self.visible is not None and (self.visible_always or limited):
            rule = rule & self.visible(columns, who, org, reader, all_)
        return rule

    def readable_sql(self, alias: str, include_deleted: bool = False) -> str:
        """The rule as SQL text over `<table> <alias>`, with `:org_id`, `:reader_id` and `:sees_all` (see
        `reader_params`) as named parameters: for hand-written statements."""
        return _readable_sql(self, alias, include_deleted)

    def lacks_identity(self, values: Mapping[str, Any] | Any) -> str | None:
        """The identity rule's message when none of the identity fields of a record (or of a mapping of
        its values) holds a value, else None."""
        if not self.identity:
            return None
        get = values.get if isinstance(values, Mapping) else lambda f: getattr(values, f, None)
        return None if any(get(f) for f in self.identity) else self.identity_rule


@lru_cache(maxsize=64)
def _readable_sql(kind: RecordType, alias: str, include_deleted: bool = False) -> str:
    rule = kind.readable(BOUND, include_deleted, of=kind.model.__table__.alias(alias))
    return str(rule.compile(compile_kwargs={"render_postcompile": True}))


CONTACT = RecordType("contact", "contacts", "Contact", Contact, ContactRead,
                     identity=("first_name", "last_name", "email", "phone"),
                     identity_rule="a contact needs at least a name, an email or a phone",
                     timeline=True, importable=True, activity_ref=True, owners=("owner_id",))
COMPANY = RecordType("company", "companies", "Company", Company, CompanyRead, timeline=True, importable=True,
                     activity_ref=True)
LEAD = RecordType("lead", "leads", "Lead", Lead, LeadRead,
                  identity=("title", "first_name", "last_name", "email", "phone", "company_name"),
                  identity_rule="a lead needs at least a title, a name, an email, a phone or a company name",
                  timeline=True, importable=True, activity_ref=True, owners=("owner_id",))
DEAL = RecordType("deal", "deals", "Deal", Deal, DealRead, timeline=True, importable=True, activity_ref=True,
                  owners=("owner_id",))
ACTIVITY = RecordType("activity", "activities", "Activity", Activity, ActivityRead, importable=True,
                      owners=("owner_id", "assignee_id"))
PIPELINE = RecordType("pipeline", "pipelines", "Pipeline", Pipeline, PipelineRead)
FORM = RecordType("form", "forms", "Form", Form, FormRead)
WEBHOOK = RecordType("webhook", "webhooks", "Webhook", WebhookEndpoint, WebhookRead)
NOTIFICATION = RecordType("notification", "notifications", "Notification", Notification, NotificationRead)
IMPORT = RecordType("import", "imports", "Import", Import, ImportRead)
TEAM = RecordType("team", "teams", "Team", Team, TeamRead)
MAILBOX = RecordType("mailbox", "mailboxes", "Mailbox", Mailbox, MailboxRead, feed=False, area="mail")


def _email_visible(columns: Any, who: Any, org: Any, reader: Any, all_: Any) -> ColumnElement[bool]:
    """Mail (API.md "Mail, campaigns"): a private mailbox's mail is its owner's (and admins'); other mail is
    visible to whoever may read a contact, lead or deal it is linked to, and to its mailbox's owner."""
    box = select(Mailbox.private, Mailbox.owner_id).where(Mailbox.org_id == org, Mailbox.id == columns.mailbox_id)
    mine = box.where(Mailbox.owner_id == reader).exists()
    private = box.where(Mailbox.private).exists()
    linked = [select(literal_column("1")).where(kind.readable(who), kind.model.id == any_(getattr(columns, ids))).exists()
              for kind, ids in ((CONTACT, "contact_ids"), (LEAD, "lead_ids"), (DEAL, "deal_ids"))]
    return or_(all_, mine, and_(~private, or_(*linked)))


TEMPLATE = RecordType("template", "templates", "Template", Template, TemplateRead, feed=False, area="campaigns")
SEGMENT = RecordType("segment", "segments", "Segment", Segment, SegmentRead, feed=False, area="campaigns")
CAMPAIGN = RecordType("campaign", "campaigns", "Campaign", Campaign, CampaignRead, area="campaigns", lifecycle=False)
EMAIL = RecordType("email", "emails", "Email", Email, EmailRead, area="mail", lifecycle=False, visible=_email_visible)


def _sms_visible(columns: Any, who: Any, org: Any, reader: Any, all_: Any) -> ColumnElement[bool]:
    """A text message is visible to whoever may read the contact, lead or deal it is linked to, and to whoever
    sent it."""
    linked = [select(literal(1)).where(kind.readable(who), kind.model.id == getattr(columns, column)).exists()
              for kind, column in ((CONTACT, "contact_id"), (LEAD, "lead_id"), (DEAL, "deal_id"))]
    return or_(all_, columns.created_by == reader, *linked)


AUTOMATION = RecordType("automation", "automations", "Automation", Automation, AutomationRead, feed=False)

# SMS share the `mail` scopes: messages to clients, whatever the channel
SMS = RecordType("sms", "sms", "SMS", Sms, SmsRead, area="mail", lifecycle=False, visible=_sms_visible)



def _document_visible(columns: Any, who: Any, org: Any, reader: Any, all_: Any) -> ColumnElement[bool]:
    """A document follows its deal (whoever may read the deal may read its documents); a contact's letter
    follows the contact."""
    deal = select(literal(1)).where(DEAL.readable(who), Deal.id == columns.deal_id).exists()
    contact = select(literal(1)).where(CONTACT.readable(who), Contact.id == columns.contact_id).exists()
    return or_(all_, and_(columns.deal_id.isnot(None), deal), and_(columns.deal_id.is_(None), contact))


DOCUMENT_TEMPLATE = RecordType("document_template", "document-templates", "Document template", DocumentTemplate,
                               DocumentTemplateRead, feed=False, area="documents")
DOCUMENT = RecordType("document", "documents", "Document", Document, DocumentRead, area="documents", lifecycle=False,
                      visible=_document_visible)


def _file_visible(columns: Any, who: Any, org: Any, reader: Any, all_: Any) -> ColumnElement[bool]:
    """A file follows the record it is attached to: readable while that record is (its org, not deleted, record
    visibility), for every reader; a deleted record's files come back with it."""
    parents = {k.object_type: k for k in (CONTACT, COMPANY, LEAD, DEAL, ACTIVITY)}
    assert tuple(parents) == PARENTS
    return or_(*[and_(columns.object_type == literal_column(f"'{name}'"), select(literal(1)).where(
        kind.readable(who), kind.model.id == columns.object_id).exists()) for name, kind in parents.items()])


# files share their own scopes (`files:read`, `files:write`); their events are file.created, .deleted, .restored
FILE = RecordType("file", "files", "File", StoredFile, FileRead, lifecycle=False, visible=_file_visible,
                  visible_always=True)


# The catalogue: products are read by everyone and written by admins; reference lists are settings (the
# `custom_fields` scopes: they say which values some fields take), in the audit log but not in the feed.
PRODUCT = RecordType("product", "products", "Product", Product, ProductRead)
LIST = RecordType("list", "lists", "List", RefList, RefListRead, feed=False, area="custom_fields")



def _call_visible(columns: Any, who: Any, org: Any, reader: Any, all_: Any) -> ColumnElement[bool]:
    """A call is visible as the `call` activity logging it is (its owner and assignee: whoever took the call,
    else the owner of the record it belongs to), even after that activity was deleted."""
    logged = select(literal(1)).where(ACTIVITY.readable(who, include_deleted=True),
                                      Activity.id == columns.activity_id).exists()
    return or_(all_, logged)


# calls: only created (`call.created`); never edited or deleted through the API
CALL = RecordType("call", "calls", "Call", Call, CallRead, lifecycle=False, visible=_call_visible)

ALL: tuple[RecordType, ...] = (CONTACT, COMPANY, LEAD, DEAL, ACTIVITY, PIPELINE, FORM, WEBHOOK, NOTIFICATION, IMPORT,
                               TEAM, MAILBOX, EMAIL, TEMPLATE, SEGMENT, CAMPAIGN, SMS, AUTOMATION, DOCUMENT_TEMPLATE,
                               DOCUMENT, FILE, PRODUCT, LIST, CALL)
BY_TYPE: dict[str, RecordType] = {k.object_type: k for k in ALL}
BY_PLURAL: dict[str, RecordType] = {k.plural: k for k in ALL}


def named(object_type: str) -> RecordType:
    return BY_TYPE[object_type]


def having(flag: str) -> tuple[RecordType, ...]:
    """The kinds for which `flag` (an attribute: "custom_fields", "timeline", "importable", ...) holds, in
    registry order."""
    return tuple(k for k in ALL if getattr(k, flag))


def names(flag: str) -> tuple[str, ...]:
    """Their object types, e.g. `names("custom_fields")` → ("contact", "company", "lead", "deal", "activity")."""
    return tuple(k.object_type for k in having(flag))


__all__ = ["ALL", "BOUND", "BOUND_UNLIMITED", "sees_all", "BY_PLURAL", "BY_TYPE", "Reader", "RecordType", "having", "named", "names", "org_of",
           "reader_params"]
