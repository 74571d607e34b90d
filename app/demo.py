"""The demo organisation `crm dev` creates once and reuses: an owner, a ready API key and a small sales team's
data (companies, contacts, leads, deals over every stage, today's tasks, a web form), so that the first request
of a newcomer already shows a working CRM."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, set_org
from app.domain.activities import service as activities
from app.domain.activities.schemas import ActivityCreate
from app.domain.auth import api_keys
from app.domain.auth import service as auth_service
from app.domain.auth.models import LoginEmail, Role
from app.domain.auth.principal import Principal
from app.domain.auth.schemas import ApiKeyCreate
from app.domain.companies import service as companies
from app.domain.companies.schemas import CompanyCreate
from app.domain.contacts import service as contacts
from app.domain.contacts.schemas import ContactCreate
from app.domain.deals import service as deals
from app.domain.deals.schemas import DealCreate
from app.domain.errors import Unauthorized
from app.domain.forms import service as forms
from app.domain.forms.schemas import FormCreate
from app.domain.leads import service as leads
from app.domain.leads.schemas import LeadCreate
from app.domain.orgs import service as orgs
from app.domain.orgs.schemas import OrgUpdate
from app.domain.pipelines import service as pipelines
from app.settings import Settings

DEMO_EMAIL = "owner@demo.example.com"


@dataclass
class DemoCredentials:
    org_id: str
    email: str
    password: str
    api_key: str


Seed = Callable[[AsyncSession, Principal], Awaitable[None]]


async def create_org_with_key(db: Database, settings: Settings, org_name: str, email: str, name: str,
                              password: str | None, key_name: str = "default",
                              seed: Seed | None = None) -> tuple[str, str, str]:
    """-> (org id, owner id, API key with every scope). `seed` fills the org in the same transaction."""
    async with db.sessions.begin() as session:
        org, owner = await auth_service.provision_org(session, settings, org_name, email, name, password)
        who = Principal.for_user(org.id, owner.id, owner.role)
        _, secret = await api_keys.create(session, who, ApiKeyCreate(name=key_name, scopes=["*"]))
        if seed is not None:
            await seed(session, who)
        return str(org.id), str(owner.id), secret


DEMO_REGION, DEMO_TIMEZONE = "DE", "Europe/Berlin"


async def seed_demo_data(session: AsyncSession, who: Principal, now: datetime | None = None) -> None:
    """A small German sales team's week, written through the services (events, history and audit as for any
    write). Phone numbers are typed as locals do: the org's `default_phone_region` makes them E.164."""
    now = now or datetime.now(UTC)
    await orgs.update(session, who.org_id, OrgUpdate(timezone=DEMO_TIMEZONE, default_phone_region=DEMO_REGION),
                      None, who)
    firms = {}
    for name, domain, phone, industry in (("Acme GmbH", "acme.example", "030 1234567", "Manufacturing"),
                                          ("Globex AG", "globex.example", "089 9876543", "Logistics"),
                                          ("Initech KG", "initech.example", "040 5550123", "Software")):
        firms[name] = (await companies.create(session, who, CompanyCreate(
            name=name, domain=domain, phone=phone, industry=industry))).id
    people = {}
    for first, last, firm, phone in (("Anna", "Schmidt", "Acme GmbH", "0151 23456789"),
                                     ("Jonas", "Weber", "Acme GmbH", "030 1234568"),
                                     ("Lea", "Fischer", "Globex AG", "0170 9876543"),
                                     ("Paul", "Wagner", "Initech KG", "040 5550124"),
                                     ("Mia", "Becker", None, "0160 1122334")):
        domain = f"{firm.split()[0].lower()}.example" if firm else "example.com"
        people[first] = (await contacts.create(session, who, ContactCreate(
            first_name=first, last_name=last, email=f"{first.lower()}.{last.lower()}@{domain}", phone=phone,
            company_id=firms.get(firm or ""), source="demo"))).id
    for first, last, company, status in (("Tom", "Richter", "Umbrella GmbH", "new"),
                                         ("Sara", "Klein", "Hooli AG", "working"),
                                         ("Ben", "Wolf", None, "new")):
        await leads.create(session, who, LeadCreate(
            first_name=first, last_name=last, email=f"{first.lower()}@{(company or 'mail').split()[0].lower()}.example",
            phone="0176 5544332" if first == "Tom" else None, company_name=company, source="website",
            status=status))
    pipeline = await pipelines.default_pipeline(session, who.org_id)
    assert pipeline is not None
    stage = {s.name: s.id for s in pipeline.stages}
    today = now.astimezone(ZoneInfo(DEMO_TIMEZONE)).date()
    deal_ids = {}
    for title, stage_name, amount, person, firm, days in (
            ("Acme: 50 seats", "Qualification", "12000", "Anna", "Acme GmbH", 60),
            ("Acme: onboarding", "Proposal", "4500", "Jonas", "Acme GmbH", 30),
            ("Globex: fleet rollout", "Negotiation", "38000", "Lea", "Globex AG", 14),
            ("Initech: renewal", "Negotiation", "9600", "Paul", "Initech KG", 7),
            ("Globex: pilot", "Won", "3000", "Lea", "Globex AG", -10),
            ("Initech: add-on", "Lost", "2500", "Paul", "Initech KG", -20)):
        deal_ids[title] = (await deals.create(session, who, DealCreate(
            title=title, stage_id=stage[stage_name], value={"amount": Decimal(amount), "currency": pipeline.currency},
            contact_id=people[person], company_id=firms[firm], expected_close_date=today + timedelta(days=days),
            lost_reason="price" if stage_name == "Lost" else None))).id
    midnight = datetime.combine(today + timedelta(days=1), time(), ZoneInfo(DEMO_TIMEZONE))
    left = midnight - now  # today's tasks fall between now and midnight, whenever the demo is made
    for i, (type_, subject, person, deal) in enumerate((
            ("call", "Call Anna about the seat count", "Anna", "Acme: 50 seats"),
            ("task", "Send Globex the revised quote", "Lea", "Globex: fleet rollout"),
            ("meeting", "Renewal review with Paul", "Paul", "Initech: renewal")), start=1):
        await activities.create(session, who, ActivityCreate(
            type=type_, subject=subject, due_at=now + left * i / 4, contact_id=people[person],
            deal_id=deal_ids[deal], priority="high" if i == 1 else "normal"))
    await activities.create(session, who, ActivityCreate(
        type="task", subject="Follow up with Jonas on onboarding", due_at=now - timedelta(days=1),
        contact_id=people["Jonas"], deal_id=deal_ids["Acme: onboarding"]))
    await activities.create(session, who, ActivityCreate(
        type="note", subject="Globex signed the pilot", body="Fleet rollout next if the pilot goes well.",
        done_at=now - timedelta(days=10), deal_id=deal_ids["Globex: pilot"]))
    await forms.create(session, who, FormCreate(name="Website contact form", sla_minutes=30))


async def ensure_demo(db: Database, settings: Settings) -> DemoCredentials:
    path = settings.data_dir / "demo-credentials.json"
    if path.exists():
        saved = DemoCredentials(**json.loads(path.read_text()))
        async with db.sessions.begin() as session:
            try:
                await auth_service.resolve_bearer(session, settings, saved.api_key)
                return saved
            except Unauthorized:
                pass  # revoked since: make a new key below
            org_id = await session.scalar(select(LoginEmail.org_id).where(LoginEmail.email == saved.email))
            owner_id = await session.scalar(select(LoginEmail.user_id).where(LoginEmail.email == saved.email))
            if org_id is not None:
                await set_org(session, org_id)
                who = Principal.for_user(org_id, owner_id, Role.owner)
                _, saved.api_key = await api_keys.create(session, who, ApiKeyCreate(name="demo", scopes=["*"]))
                _write(path, saved)
                return saved
    password = secrets.token_urlsafe(12)
    org_id, _, key = await create_org_with_key(db, settings, "Demo Sales", DEMO_EMAIL, "Demo Owner", password, "demo",
                                               seed=seed_demo_data)
    creds = DemoCredentials(org_id=org_id, email=DEMO_EMAIL, password=password, api_key=key)
    _write(path, creds)
    return creds


def _write(path: Path, creds: DemoCredentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(creds), f, indent=2)
