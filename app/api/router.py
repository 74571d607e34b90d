"""All routers, gathered in one place (the app includes each directly: a flat list matches fastest)."""

from fastapi import APIRouter

from app.api import ops, problem_pages
from app.api.v1 import (
    activities,
    api_keys,
    audit_log,
    auth,
    automations,
    calls,
    campaigns,
    changes,
    companies,
    contacts,
    custom_fields,
    deals,
    documents,
    emails,
    files,
    forms,
    imports,
    leads,
    lists,
    mailboxes,
    me,
    notifications,
    org,
    pipelines,
    products,
    public_forms,
    public_telephony,
    public_unsubscribe,
    reports,
    schema,
    sms,
    teams,
    templates,
    tokens,
    users,
    webhooks,
)

routers: list[APIRouter] = [
    module.router
    for module in (ops, problem_pages, auth, me, tokens, org, users, teams, api_keys, audit_log, contacts, companies, leads, pipelines,
                   deals, activities, products, lists,
                   custom_fields, schema, webhooks, notifications, automations, mailboxes, emails, sms, files, templates,
                   public_unsubscribe, forms, public_forms, calls, public_telephony, changes, imports, reports)
] + [me.ping_router, campaigns.segments, campaigns.router, sms.settings_router, documents.router, documents.templates_router,
     documents.deal_router, documents.contact_router, documents.public_router, calls.settings_router]
